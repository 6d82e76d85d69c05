"""Emulates the int4 GEMV idea of bench/NOTES.md session 24 "Next" 5 (not implemented): x staged
as fp16 with a per-CTA power-of-two scale 2^-c, the codes decoded by fp16's magic number without
shifts at two nibble positions (1024 + q at bits 0-3, 1024 + 16 q at bits 4-7), so the K elements
of the second kind (k16 positions 8..15 of an MMA, the pairs at s = 4 / 12) take x / 16, and the
per-group correction uses two sums of the converted x. Checks the algebra against float64 and
compares the error with today's bf16 path (base 128), on random and wide-range x.

    python tools/emulate_fp16_xstage.py
"""
import numpy as np

rng = np.random.default_rng(0)
K, G = 4096, 128  # one row, groups of 128


def fp32_dot(a, b):
    # the MMA's fp32 accumulation, 16 products a step (the order within a step aside)
    acc = np.float32(0)
    for k in range(0, len(a), 16):
        acc = np.float32(acc + np.float32(np.dot(a[k:k + 16].astype(np.float64), b[k:k + 16].astype(np.float64))))
    return acc


def bf16(v):
    v = np.asarray(v, np.float32)
    u = v.view(np.uint32).astype(np.uint64)
    u = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16) << 16  # round to nearest even
    return u.astype(np.uint32).view(np.float32)


def run(x):
    q = rng.integers(0, 16, K).astype(np.float32)
    s = rng.uniform(0.5, 2, K // G).astype(np.float32) * 2.0 ** -4
    z = rng.integers(0, 16, K // G).astype(np.float32)
    ref = sum(float(s[g]) * np.dot(q[g * G:(g + 1) * G] - z[g], x[g * G:(g + 1) * G].astype(np.float64))
              for g in range(K // G))
    bound = sum(float(s[g]) * np.abs(q[g * G:(g + 1) * G] - z[g]) @ np.abs(x[g * G:(g + 1) * G].astype(np.float64))
                for g in range(K // G))
    # today: bf16 x, codes as 128 + q, minus (z + 128) sum x per group
    y_bf = np.float32(0)
    for g in range(K // G):
        sl = slice(g * G, (g + 1) * G)
        acc = fp32_dot(128 + q[sl], x[sl])
        sx = np.float32(np.sum(x[sl], dtype=np.float32))
        y_bf = np.float32(y_bf + s[g] * (acc - (z[g] + 128) * sx))
    # the idea: c so that max |x| 2^-c < 2^15; x' = fp16(x 2^-c (/ 16 at positions 8..15 of 16))
    c = max(0, int(np.ceil(np.log2(np.max(np.abs(x)) + 1e-30))) - 14)
    kind_b = (np.arange(K) % 16) >= 8
    xp = (x.astype(np.float64) * 2.0 ** -c / np.where(kind_b, 16.0, 1.0)).astype(np.float16)
    a = np.where(kind_b, 1024 + 16 * q, 1024 + q).astype(np.float16)  # exact in fp16
    y16 = np.float32(0)
    for g in range(K // G):
        sl = slice(g * G, (g + 1) * G)
        acc = fp32_dot(a[sl].astype(np.float32), xp[sl].astype(np.float32))
        sa = np.float32(np.sum(xp[sl][~kind_b[sl]], dtype=np.float32))
        sb = np.float32(np.sum(xp[sl][kind_b[sl]], dtype=np.float32))
        # sum (1024 + q) x'_A + sum (1024 + 16 q) x'_B = 1024 (sa + sb) + sum q x 2^-c
        # z sum x 2^-c = z (sa + 16 sb)
        y16 = np.float32(y16 + s[g] * (acc - 1024 * (sa + sb) - z[g] * (sa + 16 * sb)))
    y16 = np.float32(y16 * 2.0 ** c)
    return abs(y_bf - ref) / bound, abs(y16 - ref) / bound


for name, x in [("normal", bf16(rng.standard_normal(K))),
                ("outliers 1e4", bf16(rng.standard_normal(K) * np.where(rng.random(K) < 0.01, 1e4, 1))),
                ("wide 1e-30..1e30", bf16(rng.standard_normal(K) * 10.0 ** rng.uniform(-30, 30, K)))]:
    e_bf, e16 = run(x)
    print(f"{name:18s} error / sum |w x|: bf16 path {e_bf:.2e}, fp16 idea {e16:.2e}")
