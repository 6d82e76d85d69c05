"""CPU emulation of the a16w4 / mxfp4 GEMV v7 (csrc/gemm/w4/w4_gemv_regs.cuh): its data
mapping, written out lane by lane, against the CPU reference op. Not a test of the CUDA code
(that is tests/test_cuda_variants.py on a GPU): a check, before device time is spent, that the
kernel's addressing (layout v3 fast path, partial tiles, partial last blocks, split slices),
its K order for x, its mma.sync fragment roles, the all-ones sum of x and the per-group
promotion compute y. Mirrors the kernel's index expressions one for one.

    python tools/emulate_gemv_v7.py        # small shapes with every kind of tail
"""
import itertools

import numpy as np
import torch

from lowbit_ext import ops
from lowbit_ext.formats._base import e2m1_to_float, e8m0_to_float

ROWS_PER_CTA, TILE, BLOCK_W, BLOCK_E = 128, 16, 16, 128


def codes_pair(v):
    """codes_to_pair / e2m1_to_pair: the codes in bits 0-3 and 16-19 -> (lo, hi)."""
    return (v & 0xF, (v >> 16) & 0xF)


def emulate(x, w, scales, zeros, group, M, N, K, k_slice, mx):
    """y (M, N) in float64 as the v7 kernel computes it (fp64 instead of fp32 sums)."""
    wf = w.view(-1).numpy().astype(np.int64) & 0xFFFFFFFF
    xf = x.double().numpy()
    words = K // 8
    full_blocks = words // BLOCK_W
    splits = -(-K // k_slice)
    groups = 1 if group == K else K // group
    chunks = 0 if group == K else group // 32
    sc = scales.numpy()
    zf = None if zeros is None else zeros.double().numpy()
    value = (lambda c: e2m1_to_float(torch.tensor(c, dtype=torch.uint8)).double().item()) if mx else float
    y = np.zeros((M, N))
    for row_cta, split in itertools.product(range(-(-N // ROWS_PER_CTA)), range(splits)):
        k_begin = split * k_slice
        k_len = min(K, k_begin + k_slice) - k_begin
        nb = -(-k_len // BLOCK_E)
        block0 = k_begin // BLOCK_E
        for warp in range(8):
            tile_row0 = row_cta * ROWS_PER_CTA + warp * 16
            full_tile = tile_row0 + TILE <= N
            total = np.zeros((16, M))  # [row in tile][token]
            acc = np.zeros((16, M))
            sum_x = np.zeros(M)
            for b in range(nb):
                blk = block0 + b
                # load_block: per lane (grp, tig) the 4 words of rows r0 = grp, r1 = grp + 8
                W = np.zeros((32, 2, 4), dtype=np.int64)
                for lane in range(32):
                    grp, tig = lane // 4, lane % 4
                    r0c = min(tile_row0 + grp, N - 1)
                    r1c = min(tile_row0 + grp + 8, N - 1)
                    if full_tile and blk < full_blocks:
                        base = min(tile_row0, N - 1) * words + blk * 256 + 16 * grp + 4 * tig
                        W[lane, 0] = wf[base:base + 4]
                        W[lane, 1] = wf[base + 128:base + 132]
                    else:
                        pw = words - full_blocks * BLOCK_W
                        for h, (row, i_in) in enumerate(((r0c, grp), (r1c, grp + 8))):
                            for j in range(4):
                                l = blk * BLOCK_W + 4 * j + tig
                                if l >= words:
                                    continue
                                if not full_tile:
                                    idx = row * words + (blk * BLOCK_W + 4 * tig + j if blk < full_blocks else l)
                                else:
                                    idx = tile_row0 * words + full_blocks * 256 + pw * i_in + (l - full_blocks * BLOCK_W)
                                W[lane, h, j] = wf[idx]
                for j in range(4):
                    k_local = b * BLOCK_E + 32 * j
                    if k_local >= k_len:
                        break
                    for hh in range(2):
                        # A (16 x 16) and B (16 x tokens) of this k16 step, from the lanes' registers
                        A = np.zeros((16, 16))
                        Bm = np.zeros((16, M))
                        for lane in range(32):
                            grp, tig = lane // 4, lane % 4
                            regs = [W[lane, 0, j] >> (8 * hh), W[lane, 1, j] >> (8 * hh),
                                    W[lane, 0, j] >> (8 * hh + 4), W[lane, 1, j] >> (8 * hh + 4)]
                            for r, (row, kk) in enumerate(((grp, 2 * tig), (grp + 8, 2 * tig),
                                                           (grp, 2 * tig + 8), (grp + 8, 2 * tig + 8))):
                                lo, hi = codes_pair(regs[r])
                                A[row, kk], A[row, kk + 1] = value(lo), value(hi)
                            for tok in range(M):
                                if tok % 8 != grp:
                                    continue  # B column g of tile tok // 8 comes from the lanes with grp == tok % 8
                                xs = xf[tok, k_begin + k_local + 8 * tig: k_begin + k_local + 8 * tig + 8]
                                b0, b1 = (xs[4:6], xs[6:8]) if hh else (xs[0:2], xs[2:4])
                                Bm[2 * tig:2 * tig + 2, tok] = b0
                                Bm[2 * tig + 8:2 * tig + 10, tok] = b1
                        acc += A @ Bm
                        sum_x += Bm.sum(axis=0)  # the all-ones MMA
                    if chunks and j % chunks == chunks - 1:
                        g = (k_begin + k_local) // group
                        _promote(total, acc, sum_x, g, tile_row0, N, sc, zf, groups, mx)
            if not chunks:
                _promote(total, acc, sum_x, 0, tile_row0, N, sc, zf, groups, mx)
            for i in range(16):
                if tile_row0 + i < N:
                    y[:, tile_row0 + i] += total[i]
    return y


def _promote(total, acc, sum_x, g, tile_row0, N, sc, zf, groups, mx):
    for i in range(16):
        row = min(tile_row0 + i, N - 1)
        if mx:
            s = e8m0_to_float(torch.tensor(sc.reshape(-1)[row * groups + g], dtype=torch.uint8)).double().item()
            total[i] += s * acc[i]
        else:
            s = float(sc.reshape(-1)[row * groups + g])
            z = 8.0 if zf is None else float(zf.reshape(-1)[row * groups + g])
            total[i] += s * (acc[i] - z * sum_x)
    acc[:] = 0
    sum_x[:] = 0


def main():
    gen = torch.Generator().manual_seed(0)
    cases = [  # (M, N, K, group, symmetric, k_slice): tails of N (partial tiles), of K (blocks), splits
        (3, 40, 416, 32, False, 128), (9, 24, 256, 64, True, 256), (17, 136, 384, 128, False, 128),
        (1, 16, 160, 32, False, 160), (5, 48, 512, 512, False, 256), (2, 40, 416, 32, True, 416)]
    for M, N, K, g, sym, k_slice in cases:
        x = torch.randn(M, K, generator=gen).to(torch.bfloat16)
        plain = torch.randint(0, 256, (N, K // 2), generator=gen, dtype=torch.uint8)
        w = ops.prepack_w4(plain)
        groups = K // g
        s = ((torch.rand(N, groups, generator=gen) + 0.5) * 0.01).to(torch.bfloat16)
        z = None if sym else (torch.rand(N, groups, generator=gen) * 15).to(torch.bfloat16)
        ref = ops.a16w4_linear(x, w, s, z, -1 if g == K else g).double().numpy()
        y = emulate(x, w, s.float(), z, g, M, N, K, k_slice, mx=False)
        err = np.abs(y - ref).max() / np.abs(ref).max()
        print(f"a16w4 M={M} N={N} K={K} g={g} sym={sym} slice={k_slice}: max err / max |y| = {err:.2e}")
        assert err < 2e-2, "mapping error"
    for M, N, K, k_slice in [(3, 40, 416, 128), (17, 24, 256, 256)]:
        x = torch.randn(M, K, generator=gen).to(torch.bfloat16)
        codes, sc = ops.quantize_mxfp4(torch.randn(N, K, generator=gen))
        w = ops.prepack_w4(codes)
        ref = ops.mxfp4_linear(x, w, sc).double().numpy()
        y = emulate(x, w, sc, None, 32, M, N, K, k_slice, mx=True)
        err = np.abs(y - ref).max() / np.abs(ref).max()
        print(f"mxfp4 M={M} N={N} K={K} slice={k_slice}: max err / max |y| = {err:.2e}")
        assert err < 2e-2, "mapping error"
    print("v7 data mapping reproduces the reference")


if __name__ == "__main__":
    main()
