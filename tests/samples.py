"""Valid sample arguments for every lowbit op, on any device: shared by the opcheck,
torch.compile, bad-input and CUDA tests. Inputs are random (never zeros), and shapes are
not multiples of the kernels' tiles (M = 3, N = 40 by default)."""
import collections
import itertools
import re

import pytest
import torch

from lowbit_ext import ops

BF16, FP16 = torch.bfloat16, torch.float16

# K for the 4-bit GEMV v8's ring tails (the a16w4 and mxfp4 ring-tail tests): K = 128 x {9, 11, 15,
# 67} gives K splits whose warps stream blocks in every count mod 4 (1 .. 34 blocks; the last split
# shorter), so a warp's last bulk copy is short when blocks come 2 or 4 a copy.
GEMV_RING_TAIL_KS = [128 * 9, 128 * 11, 128 * 15, 128 * 67]


def rand_x(M, K, dtype=BF16, device="cpu", gen=None):
    return torch.randn(M, K, generator=gen, dtype=torch.float32).to(device=device, dtype=dtype)


def weight(N, K, device="cpu", gen=None):
    return (torch.randn(N, K, generator=gen) * 0.02).to(device)


def w4_plain(N, K, device="cpu", gen=None):
    return torch.randint(0, 256, (N, K // 2), generator=gen, dtype=torch.uint8).to(device)


def op_samples(device="cpu", M=3, N=40, K=256, dtype=BF16, seed=0):
    """{op_name: (args tuple, kwargs dict)} with one valid call of each op."""
    g = torch.Generator().manual_seed(seed)
    x = rand_x(M, K, dtype, device, g)
    W = weight(N, K, device, g)
    bias = torch.randn(N, generator=g).to(device=device, dtype=dtype)

    xi8, xs8 = ops.quantize_int8_per_token(x)
    wi8, ws8 = ops.quantize_int8_per_token(W)
    xf8, xsf8 = ops.quantize_fp8_per_token(x)
    wf8, wsf8 = ops.quantize_fp8_per_token(W)
    xb, xbs = ops.quantize_fp8_1x128(x)
    wb = W.clamp(-448, 448).to(torch.float8_e4m3fn)
    wbs = torch.rand((N + 127) // 128, K // 128, generator=g).to(device) + 0.5
    xm, xms = ops.quantize_mxfp8(x)
    wm, wms = ops.quantize_mxfp8(W)
    w4c, w4s = ops.quantize_mxfp4(W)
    w4 = ops.prepack_w4(w4c)
    int4 = ops.prepack_w4(w4_plain(N, K, device, g))
    groups = K // 128
    scales = (torch.rand(N, groups, generator=g) * 0.01 + 0.001).to(device=device, dtype=dtype)
    zeros = (torch.rand(N, groups, generator=g) * 15).to(device=device, dtype=dtype)
    gate_up = rand_x(M, 2 * K, dtype, device, g)  # a fused gate-up output: its halves are row-strided views
    norm_w = (torch.rand(K, generator=g) + 0.5).to(device=device, dtype=dtype)
    residual = rand_x(M, K, dtype, device, g)  # a decoder block's residual stream
    return {
        "quantize_int8_per_token": ((x,), {}),
        "quantize_fp8_per_token": ((x,), {}),
        "quantize_fp8_per_tensor": ((x,), {}),
        "quantize_fp8_1x128": ((x,), {}),
        "quantize_mxfp8": ((x,), {}),
        "quantize_mxfp4": ((x,), {}),
        "silu_mul_quantize_int8_per_token": ((gate_up[:, :K], gate_up[:, K:]), {}),
        "silu_mul_quantize_fp8_per_token": ((gate_up[:, :K], gate_up[:, K:]), {}),
        "rms_norm_quantize_int8_per_token": ((x, norm_w, 1e-5), {}),
        "rms_norm_quantize_fp8_per_token": ((x, norm_w, 1e-5), {}),
        "add_rms_norm_quantize_int8_per_token": ((x, residual, norm_w, 1e-5), {}),
        "add_rms_norm_quantize_fp8_per_token": ((x, residual, norm_w, 1e-5), {}),
        "prepack_w4": ((w4_plain(N, K, device, g),), {}),
        "unpack_w4": ((int4,), {}),
        "w8a8_int8_mm": ((xi8, xs8, wi8, ws8, bias, dtype), {}),
        "w8a8_fp8_mm": ((xf8, xsf8, wf8, wsf8, bias, dtype), {}),
        "fp8_block_mm": ((xb, xbs, wb, wbs, bias, dtype), {}),
        "mxfp8_mm": ((xm, xms, wm, wms, bias, dtype), {}),
        "a8w4_mx_mm": ((xm, xms, w4, w4s, bias, dtype), {}),
        "a16w4_linear": ((x, int4, scales, zeros, 128, bias), {}),
        "a16w8_linear": ((x, wi8, ws8, bias), {}),
        "mxfp4_linear": ((x, w4, w4s, bias), {}),
        "w8a8_int8_linear": ((x, wi8, ws8, bias), {}),
        "w8a8_fp8_linear": ((x, wf8, wsf8, bias, True), {}),
        "fp8_block_linear": ((x, wb, wbs, bias), {}),
        "mxfp8_linear": ((x, wm, wms, bias), {}),
        "a8w4_mx_linear": ((x, w4, w4s, bias), {}),
    }


def call(name, args, kwargs=None):
    return getattr(torch.ops.lowbit, name)(*args, **(kwargs or {}))


# ---------------------------------------------------------------- CUDA test helpers
def poison_allocator(*nbytes):
    """Empty the cache so no stale block of the right size is left, then hand the next
    allocations of these sizes blocks full of 0xFF bytes (NaN as bf16 and as fp16, and a
    NaN pattern as fp32): any output element a kernel does not write shows up."""
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    junk = [torch.full((n,), 0xFF, dtype=torch.uint8, device="cuda") for n in nbytes if n > 0]
    del junk


def to_cuda(*ts):
    return tuple(t.cuda() if isinstance(t, torch.Tensor) else t for t in ts)


def assert_graph_replays_match_eager(layer, new_x, ms):
    """A manual capture on a side stream (torch.cuda.graph's), replayed on new inputs, must
    equal eager bitwise: the kernels launch on the current stream and allocate nothing
    outside the graph's pool. new_x(M) makes a fresh CUDA input of M rows."""
    for M in ms:
        static_x = new_x(M)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            layer(static_x)  # warm-up outside the capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_y = layer(static_x)
        for _ in range(2):
            static_x.copy_(new_x(M))
            graph.replay()
            torch.testing.assert_close(static_y, layer(static_x), rtol=0, atol=0)


def assert_compiled_matches_eager(layer, new_x, ms=(8, 8, 8, 40, 40, 40)):
    """torch.compile(fullgraph=True, mode="reduce-overhead") around `layer` equals eager
    bitwise; the default Ms warm up, capture and replay, then do it again at a new shape."""
    compiled = torch.compile(layer, fullgraph=True, mode="reduce-overhead")
    for M in ms:
        x = new_x(M)
        torch.testing.assert_close(compiled(x).clone(), layer(x), rtol=0, atol=0)


def bitwise_repeatable(call, runs=3):
    """call() `runs` times; every result must equal the first bit for bit (a result that moves
    between runs is a race, e.g. split-K partials combined out of order). Returns the first."""
    ys = [call() for _ in range(runs)]
    assert all(torch.equal(ys[0], y) for y in ys[1:])
    return ys[0]


def assert_linear_compiles_and_replays(linear, K, dtype, gen, graph_ms=(8, 64)):
    """`linear(x)` (an op with its weights bound) inside a module: torch.compile(fullgraph=True,
    mode="reduce-overhead") and a manual CUDA-graph capture both equal eager bitwise, at
    assert_compiled_matches_eager's Ms and at graph_ms; x: fresh random (M, K) of dtype."""
    torch._dynamo.reset()

    class Layer(torch.nn.Module):
        def forward(self, x):
            return linear(x)

    def new_x(M):
        return rand_x(M, K, dtype, gen=gen).cuda()

    layer = Layer()
    assert_compiled_matches_eager(layer, new_x)
    assert_graph_replays_match_eager(layer, new_x, graph_ms)


def assert_close_elementwise(y, ref, x, w64, coef, what="", mask=None):
    """|y - ref| <= 2^-7 |ref| + coef * (|x| @ |w|^T), elementwise, in float64 (where mask;
    everywhere by default), and no NaN there (an unwritten, poisoned element)."""
    y, ref = y.cpu().double(), ref.double()
    A = x.cpu().double().abs() @ w64.abs().t()
    if mask is None:
        mask = torch.ones_like(ref, dtype=torch.bool)
    assert not torch.isnan(y[mask]).any(), f"{what}: {int(torch.isnan(y[mask]).sum())} NaN outputs (unwritten?)"
    tol = 2.0 ** -7 * ref.abs() + coef * A
    err = (y - ref).abs()
    bad = (err > tol) & mask
    if bad.any():
        i = int(torch.where(bad, (err - tol) / A.clamp_min(1e-300), torch.zeros_like(err)).argmax())
        m, n = divmod(i, y.shape[1])
        raise AssertionError(f"{what}: {int(bad.sum())} of {int(mask.sum())} elements off; worst at ({m}, {n}): "
                             f"y {y[m, n].item()}, ref {ref[m, n].item()}, |x|@|w| {A[m, n].item()}, "
                             f"tol {tol[m, n].item()}")


def pairwise_cases(valid, describe, factors, combos, per_m_shape):
    """A deterministic, greedy cover of a parametrization too large to run whole. Cases are
    tuples starting (M, (N, K), ...); describe(case) maps factor names (and derived ones, such
    as the kernel path) to values. Chosen: every (M, shape) pair per_m_shape times, every pair
    of values of any two `factors` at least once, and every combination named in `combos`."""
    def items(case):
        f = describe(case)
        out = {((a, f[a]), (b, f[b])) for a, b in itertools.combinations(factors, 2)}
        out |= {tuple((k, f[k]) for k in t) for t in combos}
        return frozenset(out)

    covered = {c: items(c) for c in valid}
    want = frozenset().union(*covered.values())
    seen, chosen = collections.Counter(), []

    def pick(pool):
        # Most items not yet covered; among those, the least repeated ones (keeps the values
        # balanced); then the first: deterministic.
        best = max(pool, key=lambda c: (sum(seen[i] == 0 for i in covered[c]), -sum(seen[i] for i in covered[c])))
        chosen.append(best)
        seen.update(covered[best])

    for M, NK in dict.fromkeys((c[0], c[1]) for c in valid):
        for _ in range(per_m_shape):
            pick([c for c in valid if c[0] == M and c[1] == NK and c not in chosen])
    while want - set(seen):
        pick([c for c in valid if not covered[c] <= set(seen)])
    return chosen


def raises_with(fn, text):
    """fn() raises a RuntimeError whose message contains `text` (matched literally)."""
    with pytest.raises(RuntimeError, match=re.escape(text)):
        fn()
