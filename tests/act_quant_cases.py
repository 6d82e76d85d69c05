"""Inputs and the comparison shared by test_act_quant.py (CPU) and test_cuda_act_quant.py:
random rows of every kind the quantizer rules single out (zeros of both signs, NaN, +-Inf,
amax below the 1e-12 floor, huge and tiny magnitudes), rows whose x * inv lands exactly on
e4m3 / integer rounding midpoints, and many blocks of different magnitudes (each block's scale
is a division: a division not correctly rounded shows up there)."""
import re

import torch
from torch import nn

from lowbit_ext import LowBitLinear, act_quant, ops

BF16, FP16, FP32 = torch.bfloat16, torch.float16, torch.float32

# name -> (act_quant function, the op that is its spec)
QUANTIZERS = {
    "fp8_per_token": (act_quant.fp8_per_token, ops.quantize_fp8_per_token),
    "int8_per_token": (act_quant.int8_per_token, ops.quantize_int8_per_token),
    "fp8_1x128": (act_quant.fp8_1x128, ops.quantize_fp8_1x128),
}

# the 127 non-negative finite e4m3 values in order, and the 126 midpoints between neighbours
# (subnormal ones included); exact in bf16 (5 significant bits, exponents 2^-10 .. 2^8)
E4M3_VALUES = torch.arange(0, 127, dtype=torch.uint8).view(torch.float8_e4m3fn).float()
E4M3_MIDPOINTS = ((E4M3_VALUES[:-1] + E4M3_VALUES[1:]) / 2).tolist()


def all_quantizers(x):
    """Every act_quant quantizer of x (K % 128 == 0), in one function: one graph to compile."""
    return tuple(fn(x) for fn, _ in QUANTIZERS.values())


def assert_all_match_ops(results, x, what=""):
    """results = all_quantizers(x) (possibly compiled) against the ops on x's device."""
    for (name, (_, op)), got in zip(QUANTIZERS.items(), results):
        assert_same_quantization(got, op(x), f"{what} {name} {x.dtype} {tuple(x.shape)}")


def assert_same_quantization(got, want, what=""):
    """Codes equal as bytes; scales of equal dtype and shape, equal bit for bit (NaN at the
    same places, and the same NaN)."""
    (q, s), (q0, s0) = got, want
    assert q.dtype == q0.dtype and q.shape == q0.shape, (what, q.dtype, q0.dtype, q.shape, q0.shape)
    assert s.dtype == s0.dtype == torch.float32 and s.shape == s0.shape, (what, s.dtype, s.shape, s0.shape)
    qb = q.view(torch.uint8) if q.dtype == torch.float8_e4m3fn else q
    qb0 = q0.view(torch.uint8) if q0.dtype == torch.float8_e4m3fn else q0
    bad = (qb != qb0).nonzero()
    assert bad.numel() == 0, f"{what}: {bad.shape[0]} codes differ, first at {bad[0].tolist()}: " \
                             f"{qb[tuple(bad[0])].item()} vs {qb0[tuple(bad[0])].item()}"
    assert torch.equal(torch.isnan(s), torch.isnan(s0)), f"{what}: NaN scales at other places"
    ok = ~torch.isnan(s0)
    assert torch.equal(s[ok], s0[ok]), f"{what}: scales differ at {(s != s0).logical_and(ok).nonzero()[:4].tolist()}"
    assert torch.equal(s.view(torch.int32), s0.view(torch.int32)), f"{what}: scale bits differ (NaN payload)"


def _exp_range(dtype):
    # powers of two a row may be scaled by without overflow (randn < 2^3) in this dtype
    return (-24, 12) if dtype == FP16 else (-120, 120)


def special_rows(M, K, dtype, seed=0, device="cpu"):
    """(M, K) random rows; row r is of kind r % 10: 0 plain, 1 scaled by a random power of two
    (wide range across rows), 2 zeros of both signs, 3 one NaN, 4 one +Inf, 5 one -Inf (at a
    random column, so in 1x128 blocks only one block of the row is non-finite), 6 amax below
    1e-12 (fp16: its subnormals), 7 huge (1e30; fp16 1e4), 8 tiny (1e-30; fp16 2^-14), 9 a
    random power of two per element (wide range inside the row)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(M, K, generator=g, dtype=torch.float64)
    lo, hi = _exp_range(dtype)
    f16 = dtype == FP16
    for r in range(M):
        kind, col = r % 10, int(torch.randint(0, K, (1,), generator=g))
        if kind == 1:
            x[r] *= 2.0 ** int(torch.randint(max(lo, -60), min(hi, 60), (1,), generator=g))
        elif kind == 2:
            x[r] = torch.where(torch.rand(K, generator=g) < 0.5, 0.0, -0.0)
        elif kind in (3, 4, 5):
            x[r, col] = (float("nan"), float("inf"), -float("inf"))[kind - 3]
        elif kind == 6:
            x[r] *= 1e-7 if f16 else 1e-14
        elif kind == 7:
            x[r] *= 1e4 if f16 else 1e30
        elif kind == 8:
            x[r] *= 2.0 ** -14 if f16 else 1e-30
        elif kind == 9:
            x[r] *= torch.pow(2.0, torch.randint(lo, hi, (K,), generator=g).double())
    return x.to(dtype).to(device)


def _saturating_amax(dtype, qmax=448.0):
    """A value v of the dtype with v * RN(qmax / v) > qmax in fp32: its code must saturate."""
    v = (torch.rand(4096, generator=torch.Generator().manual_seed(0)) + 1).to(dtype).float()
    inv = (qmax / v.double()).float()
    hits = v[v * inv > qmax]
    assert hits.numel() > 0
    return hits[0].item()


def fp8_tie_rows(dtype, device="cpu"):
    """(R, 256): each 128-block holds +-448 * 2^j (so inv = 2^-j exactly, scale 2^j) and every
    e4m3 midpoint times 2^j with that block's sign: x * inv is a tie for every element but
    the first. Last row: a block whose amax v has v * RN(448 / v) > 448 (saturation)."""
    mid = torch.tensor(E4M3_MIDPOINTS, dtype=torch.float64)
    block = torch.cat([torch.tensor([448.0], dtype=torch.float64), mid, torch.zeros(1, dtype=torch.float64)])
    row = torch.cat([block, -block])
    shifts = [0, -3, 5] if dtype == FP16 else [0, -3, 5, -20, 40]
    rows = [row * 2.0 ** j for j in shifts]
    v = _saturating_amax(dtype)
    sat = torch.randn(256, generator=torch.Generator().manual_seed(1), dtype=torch.float64).clamp(-2, 2) * v / 2
    sat[0], sat[128] = v, -v
    rows.append(sat)
    return torch.stack(rows).to(dtype).to(device)


def int8_tie_rows(dtype, device="cpu"):
    """(3, 256): 127 * 2^j, -127 * 2^j and (k + 1/2) * 2^j for k = -127 .. 126: inv = 2^-j
    exactly, x * inv a half-integer tie everywhere but the first two (half to even)."""
    half = torch.arange(-127, 127, dtype=torch.float64) + 0.5
    row = torch.cat([torch.tensor([127.0, -127.0], dtype=torch.float64), half])
    return torch.stack([row * 2.0 ** j for j in (0, -4, 6)]).to(dtype).to(device)


def many_magnitudes(dtype, device="cpu", M=4096, K=128):
    """(M, K): each row scaled by a random power of two and a uniform factor (its own scale
    and inverse)."""
    g = torch.Generator().manual_seed(123)
    lo, hi = _exp_range(dtype)
    lo, hi = max(lo, -40), min(hi, 40)
    e = torch.randint(lo, hi, (M, 1), generator=g).double()
    x = torch.randn(M, K, generator=g, dtype=torch.float64) * torch.rand(M, 1, generator=g, dtype=torch.float64)
    return (x * torch.pow(2.0, e)).to(dtype).to(device)


def mixed_rows(dtype, K, device="cpu", seed=0):
    """All of the above at one K (a multiple of 256) in one tensor: special rows, tie rows
    (repeated along K: the same amax per row and per 128-block), many magnitudes."""
    reps = K // 256
    return torch.cat([special_rows(100, K, dtype, seed=seed), fp8_tie_rows(dtype).repeat(1, reps),
                      int8_tie_rows(dtype).repeat(1, reps), many_magnitudes(dtype, M=1024, K=K)]).to(device)


def materialized_16bit(code, shape):
    """Whether inductor's wrapper code (run_and_get_code's strings) allocates a bf16 / fp16
    buffer of this shape: the producer's output written out instead of fused."""
    dims = ", ".join(str(int(d)) for d in shape)
    pat = re.compile(r"empty_strided_\w+\(\(" + re.escape(dims) + r",?\), \([^)]*\), torch\.(bfloat16|float16)")
    return any(pat.search(c) for c in code)


# ---------------------------------------------------------------- the formats that use act_quant
# format -> (the GEMM op it calls under torch.compile, the fused op it calls eagerly)
FORMATS = {"w8a8_fp8": ("w8a8_fp8_mm", "w8a8_fp8_linear"), "w8a8_int8": ("w8a8_int8_mm", "w8a8_int8_linear"),
           "fp8_block": ("fp8_block_mm", "fp8_block_linear")}


def make_layer(fmt, N=200, K=256, dtype=BF16, device="cpu", **options):
    g = torch.Generator().manual_seed(1)
    lin = nn.Linear(K, N)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(N, K, generator=g) * 0.02)
        lin.bias.copy_(torch.randn(N, generator=g))
    return LowBitLinear.from_linear(lin.to(dtype), fmt, **options).to(device)


class GraphRecorder:
    """A torch.compile backend: notes the lowbit ops in each graph dynamo hands over, then
    compiles it with inductor."""

    def __init__(self):
        self.ops = []

    def __call__(self, gm, example_inputs):
        for node in gm.graph.nodes:
            name = str(node.target)                                  # lowbit.<op>[.default]
            if node.op == "call_function" and name.startswith("lowbit."):
                self.ops.append(name.split(".")[1])
        from torch._inductor.compile_fx import compile_fx
        return compile_fx(gm, example_inputs)


def compiled_lowbit_ops(layer, xs):
    """Compiles layer (fullgraph, inductor), checks it equals eager bit for bit on each x,
    and returns the set of lowbit ops in its graphs."""
    torch._dynamo.reset()
    rec = GraphRecorder()
    compiled = torch.compile(layer, backend=rec, fullgraph=True)
    with torch.no_grad():
        for x in xs:
            y, y0 = compiled(x), layer(x)    # bitwise (the special rows give NaN outputs)
            assert torch.equal(y.view(torch.int16), y0.view(torch.int16)), "compiled != eager"
    return set(rec.ops)
