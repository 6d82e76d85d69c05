"""A small hand-written Llama-style decoder (gpt-fast style): RMSNorm, rotary attention with
grouped-query KV heads, SwiGLU MLP, an optional static KV cache for decode.

Used by the tests (``CONFIGS["tiny"]``) and by bench/model.py (the real Llama-3 layer shapes,
with fewer layers so that a model fits and builds quickly). Every projection is a plain
``nn.Linear`` without bias, so ``lowbit_ext.quantize_`` converts all of them;
``fuse_projections(model)`` merges q / k / v and gate / up into one linear each (as serving
stacks run them).

    from bench.llama import Transformer, CONFIGS
    model = Transformer(CONFIGS["tiny"]).to(torch.bfloat16)
    logits = model(tokens)                       # tokens (B, T) int64 -> (B, T, vocab)

    model.setup_caches(max_batch=1, max_seq=256) # decode: static KV cache
    logits = model(tokens, input_pos=torch.arange(T))
"""
import math
import os
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# The configurations (shapes) live in the package, shared with the advisor.
from lowbit_ext.model_shapes import CONFIGS, LlamaConfig  # noqa: E402,F401

# A quantized down projection takes gate and up (LowBitLinear.forward_silu_mul: w8a8_int8 /
# w8a8_fp8 fuse silu(gate) * up into their activation quantizer), and the fused projections after
# the two norms of a block (qkv, gate-up) take the block's input and the norm
# (LowBitLinear.forward_rms_norm: the norm inside their quantizer); other formats fall back to
# torch's ops. On by default since s15-call3 (Llama-3-8B, H100, regional compile, 2048-token
# prefill, off -> both: w8a8_fp8 kernels 36.7 -> 35.5 ms, wall 37.66 -> 37.11 ms; w8a8_int8
# kernels 31.0 -> 30.5, wall 31.41 -> 31.84, within the runs' ~1% noise; decode unchanged).
# LOWBIT_SILU_MUL_QUANT=0 / LOWBIT_RMS_NORM_QUANT=0 turn them off (A/B runs).
SILU_MUL_QUANT = os.environ.get("LOWBIT_SILU_MUL_QUANT", "1") != "0"
RMS_NORM_QUANT = os.environ.get("LOWBIT_RMS_NORM_QUANT", "1") != "0"
# With RMS_NORM_QUANT, the residual stream one add behind (ADD_RMS_NORM_QUANT): a block returns
# (h, mlp_out) and the next block's first norm adds them (and the attention's output to h before
# its second norm) inside the projection's quantizer (LowBitLinear.forward_add_rms_norm:
# ops.add_rms_norm_quantize_*_per_token for w8a8_int8 / w8a8_fp8), so no add kernel runs between
# the blocks' GEMMs; other formats add with torch. Default since s16-call5 (Llama-3-8B, H100,
# 2048-token prefill: the add kernels and norm quantizers 2367 -> 1848 us of kernels, 452 -> 389
# kernels; wall w8a8_fp8 38.30 -> 37.16 ms, w8a8_int8 30.89 -> 30.87 ms; decode B = 1 4.42 -> 4.29 /
# 4.30 -> 4.24 ms). LOWBIT_ADD_RMS_NORM_QUANT=0 adds with torch (A/B runs).
ADD_RMS_NORM_QUANT = os.environ.get("LOWBIT_ADD_RMS_NORM_QUANT", "1") != "0"


def _adds_in_norms() -> bool:
    """ADD_RMS_NORM_QUANT (read at call time, so tests can switch it): it takes RMS_NORM_QUANT."""
    return ADD_RMS_NORM_QUANT and RMS_NORM_QUANT


def normed_projection(proj: nn.Module, x: Tensor, norm: Optional[nn.Module]) -> Tensor:
    """proj(norm(x)), or with RMS_NORM_QUANT the projection's fused path (norm given)."""
    if norm is None:
        return proj(x)
    if hasattr(proj, "forward_rms_norm"):
        return proj.forward_rms_norm(x, norm.weight, norm.eps)
    return proj(norm(x))


def add_normed_projection(proj: nn.Module, x: Tensor, residual: Optional[Tensor], norm: Optional[nn.Module]):
    """(proj(norm(h)), h) for h = x + residual (h = x where residual is None; no norm where norm
    is None), with the projection's fused add + norm + quantizer where it has one
    (ADD_RMS_NORM_QUANT)."""
    if residual is None:
        return normed_projection(proj, x, norm), x
    if norm is not None and hasattr(proj, "forward_add_rms_norm"):
        return proj.forward_add_rms_norm(x, residual, norm.weight, norm.eps)
    h = x + residual
    return normed_projection(proj, h, norm), h


def add_norm(x: Tensor, residual: Optional[Tensor], norm: Optional[nn.Module]):
    """(norm(h), h) for h = x + residual, as add_normed_projection has them, for separate projections."""
    h = x if residual is None else x + residual
    return (h if norm is None else norm(h)), h


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        # F.rms_norm with the weight, on x as it comes: one fused kernel on CUDA that sums the
        # squares in fp32 (the small activations are not lost in bf16 sums) and scales in fp32;
        # on the CPU torch's composite upcasts the same way. Session 12's profile of the decode
        # step: the fp32 copy, the rounding back and the weight multiply around the norm were
        # three more kernels, twice a block (~0.5 ms of a 7.6 ms bf16 step in a graph).
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


def rope_tables(cfg: LlamaConfig, device=None):
    """cos, sin (max_seq, head_dim / 2) in fp32."""
    hd = cfg.head_dim
    inv = 1.0 / (cfg.rope_base ** (torch.arange(0, hd, 2, dtype=torch.float32, device=device) / hd))
    t = torch.arange(cfg.max_seq, dtype=torch.float32, device=device)
    f = torch.outer(t, inv)
    return f.cos(), f.sin()


def apply_rope(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """x (B, T, H, hd), rotating pairs (first half, second half) as Llama's HF checkpoints do;
    cos / sin (T, hd / 2)."""
    c, s = cos[None, :, None, :], sin[None, :, None, :]
    # compiled: inductor fuses this into one kernel (and dynamo takes no strided out=); autograd takes no out=
    if torch.compiler.is_compiling() or x.requires_grad:
        x1, x2 = x.float().chunk(2, dim=-1)
        return torch.cat((x1 * c - x2 * s, x2 * c + x1 * s), dim=-1).to(x.dtype)
    # Eager: in fp32 (the tables are fp32; x promotes on the fly), written into the halves of one
    # output: four arithmetic kernels and the rounding back, where the fp32 copy of x, six binary
    # ops and a concatenation were nine (session 12's decode profile: ~0.3 ms of a step in a graph).
    x1, x2 = x.chunk(2, dim=-1)
    out = torch.empty(x.shape, dtype=torch.float32, device=x.device)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(x1, c, out=o1)
    o1.addcmul_(x2, s, value=-1.0)
    torch.mul(x2, c, out=o2)
    o2.addcmul_(x1, s)
    return out.to(x.dtype)


def cache_mask(input_pos: Tensor, cache_len: int, dtype: Optional[torch.dtype] = None) -> Tensor:
    """Causal over a static cache: the query at position p sees keys 0..p. (T, cache_len) bool,
    or with `dtype` the additive form (0 where seen, -inf elsewhere): SDPA turns a bool mask into
    that form itself, in every layer (two kernels a block in session 12's decode profile), so the
    model builds it once per step."""
    seen = torch.arange(cache_len, device=input_pos.device)[None, :] <= input_pos[:, None]
    if dtype is None:
        return seen
    return torch.zeros(seen.shape, dtype=dtype, device=seen.device).masked_fill_(~seen, float("-inf"))


class KVCache(nn.Module):
    def __init__(self, max_batch, max_seq, n_kv_heads, head_dim, dtype, device=None):
        super().__init__()
        shape = (max_batch, n_kv_heads, max_seq, head_dim)
        self.register_buffer("k", torch.zeros(shape, dtype=dtype, device=device), persistent=False)
        self.register_buffer("v", torch.zeros(shape, dtype=dtype, device=device), persistent=False)

    def update(self, input_pos: Tensor, k: Tensor, v: Tensor):
        """k, v (B, Hkv, T, hd) written at input_pos; returns the whole cache (B rows)."""
        B = k.shape[0]
        self.k[:B, :, input_pos] = k
        self.v[:B, :, input_pos] = v
        return self.k[:B], self.v[:B]


class Attention(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        hd = cfg.head_dim
        self.q_proj = nn.Linear(cfg.dim, cfg.n_heads * hd, bias=False)
        self.k_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.v_proj = nn.Linear(cfg.dim, cfg.n_kv_heads * hd, bias=False)
        self.o_proj = nn.Linear(cfg.n_heads * hd, cfg.dim, bias=False)
        self.kv_cache: Optional[KVCache] = None
        self.fused = False  # fuse_projections: q, k, v from one qkv_proj

    def project(self, x: Tensor, norm: Optional[nn.Module] = None, residual: Optional[Tensor] = None):
        """qk (B, T, (n_heads + n_kv_heads) * hd), v (B, T, n_kv_heads * hd) and the block's input
        h = x + residual (x where residual is None): q and k side by side so the rotary runs once
        over both (half its kernels per layer); the fused projection gives them as one slice, the
        separate ones by a concatenation."""
        cfg, hd = self.cfg, self.cfg.head_dim
        if not self.fused:
            x, h = add_norm(x, residual, norm)
            return torch.cat([self.q_proj(x), self.k_proj(x)], dim=-1), self.v_proj(x), h
        qkv, h = add_normed_projection(self.qkv_proj, x, residual, norm)
        qk, v = qkv.split([(cfg.n_heads + cfg.n_kv_heads) * hd, cfg.n_kv_heads * hd], dim=-1)
        return qk, v, h

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor, input_pos: Optional[Tensor],
                mask: Optional[Tensor] = None, norm: Optional[nn.Module] = None, residual: Optional[Tensor] = None):
        """norm: x is the block's input and the projection applies the norm (RMS_NORM_QUANT).
        residual (ADD_RMS_NORM_QUANT): the block's input is x + residual, and the result is the
        pair (attention output, x + residual)."""
        cfg = self.cfg
        B, T, _ = x.shape
        hd = cfg.head_dim
        qk, v, h = self.project(x, norm, residual)
        qk = apply_rope(qk.unflatten(-1, (cfg.n_heads + cfg.n_kv_heads, hd)), cos, sin)
        q, k = (t.transpose(1, 2) for t in qk.split([cfg.n_heads, cfg.n_kv_heads], dim=2))
        v = v.unflatten(-1, (cfg.n_kv_heads, hd)).transpose(1, 2)
        if self.kv_cache is not None and input_pos is not None:
            k, v = self.kv_cache.update(input_pos, k, v)
            if mask is None:
                mask = cache_mask(input_pos, k.shape[2])
            attn_kw = dict(attn_mask=mask[None, None])
        else:
            attn_kw = dict(is_causal=True)
        # grouped-query heads read their KV head in place (query head h -> KV head h // (n_heads /
        # n_kv_heads), repeat_interleave's mapping) instead of copying the cache 4x per layer
        y = F.scaled_dot_product_attention(q, k, v, enable_gqa=cfg.n_heads != cfg.n_kv_heads, **attn_kw)
        y = self.o_proj(y.transpose(1, 2).reshape(B, T, cfg.n_heads * hd))
        return y if residual is None else (y, h)


class MLP(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.gate_proj = nn.Linear(cfg.dim, cfg.intermediate_size, bias=False)
        self.up_proj = nn.Linear(cfg.dim, cfg.intermediate_size, bias=False)
        self.down_proj = nn.Linear(cfg.intermediate_size, cfg.dim, bias=False)
        self.fused = False  # fuse_projections: gate and up from one gate_up_proj

    def forward(self, x: Tensor, norm: Optional[nn.Module] = None, residual: Optional[Tensor] = None):
        """residual (ADD_RMS_NORM_QUANT): the input is x + residual, and the result is the pair
        (MLP output, x + residual)."""
        if self.fused:
            gate_up, h = add_normed_projection(self.gate_up_proj, x, residual, norm)
            gate, up = gate_up.chunk(2, dim=-1)
        else:
            xn, h = add_norm(x, residual, norm)
            gate, up = self.gate_proj(xn), self.up_proj(xn)
        if SILU_MUL_QUANT and hasattr(self.down_proj, "forward_silu_mul"):
            y = self.down_proj.forward_silu_mul(gate, up)
        else:
            y = self.down_proj(F.silu(gate) * up)
        return y if residual is None else (y, h)


class Block(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.input_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.attn = Attention(cfg)
        self.post_attn_norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.mlp = MLP(cfg)

    def forward(self, x, cos, sin, input_pos, mask=None, delta=None):
        if _adds_in_norms():
            # the residual stream one add behind: the block's input is x + delta (delta: the previous
            # block's MLP output, None in the first block), and it returns (h, its MLP output)
            if delta is None:
                attn_out, h = self.attn(x, cos, sin, input_pos, mask, norm=self.input_norm), x
            else:
                attn_out, h = self.attn(x, cos, sin, input_pos, mask, norm=self.input_norm, residual=delta)
            mlp_out, h = self.mlp(attn_out, norm=self.post_attn_norm, residual=h)
            return h, mlp_out
        if RMS_NORM_QUANT:  # the projections apply the norms (fused into their quantizers where they can)
            h = x + self.attn(x, cos, sin, input_pos, mask, norm=self.input_norm)
            return h + self.mlp(h, norm=self.post_attn_norm)
        h = x + self.attn(self.input_norm(x), cos, sin, input_pos, mask)
        return h + self.mlp(self.post_attn_norm(h))


class Transformer(nn.Module):
    def __init__(self, cfg: LlamaConfig):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.dim)
        self.layers = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layers))
        self.norm = RMSNorm(cfg.dim, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.dim, cfg.vocab_size, bias=False)
        cos, sin = rope_tables(cfg)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def _apply(self, fn, recurse=True):
        # The rotary tables stay fp32 under model.to(bfloat16) (bf16 cannot even hold the
        # positions above 256): recomputed on whatever device the tables moved to.
        out = super()._apply(fn, recurse)
        self.rope_cos, self.rope_sin = rope_tables(self.cfg, device=self.rope_cos.device)
        return out

    def setup_caches(self, max_batch: int, max_seq: int):
        """Static KV caches (gpt-fast): the decode step writes at input_pos in place, so it
        can be captured in a CUDA graph."""
        dtype = self.embed.weight.dtype
        device = self.embed.weight.device
        for b in self.layers:
            b.attn.kv_cache = KVCache(max_batch, max_seq, self.cfg.n_kv_heads, self.cfg.head_dim, dtype, device)

    def forward(self, tokens: Tensor, input_pos: Optional[Tensor] = None) -> Tensor:
        T = tokens.shape[1]
        if input_pos is None:
            cos, sin = self.rope_cos[:T], self.rope_sin[:T]
        else:
            cos, sin = self.rope_cos[input_pos], self.rope_sin[input_pos]
        x = self.embed(tokens)
        # the decode mask once per step, not once per layer (every layer's cache has one length)
        cache = self.layers[0].attn.kv_cache if len(self.layers) else None
        mask = (cache_mask(input_pos, cache.k.shape[2], x.dtype) if cache is not None and input_pos is not None
                else None)
        if _adds_in_norms():
            delta = None
            for b in self.layers:
                x, delta = b(x, cos, sin, input_pos, mask, delta)
            x = x if delta is None else x + delta
        else:
            for b in self.layers:
                x = b(x, cos, sin, input_pos, mask)
        return self.lm_head(self.norm(x))


def build(name_or_cfg="tiny", dtype=torch.bfloat16, device=None, seed=0, **overrides) -> Transformer:
    """A model with random weights, N(0, 0.02) as Llama is initialized, norms at 1 (the
    activations then keep Llama-like scales layer after layer). Built on the meta device and
    materialized directly in `dtype` on `device` (an 8B model never exists in fp32)."""
    cfg = CONFIGS[name_or_cfg] if isinstance(name_or_cfg, str) else name_or_cfg
    cfg = cfg.replace(**overrides) if overrides else cfg
    device = torch.device(device or "cpu")
    with torch.device("meta"):
        model = Transformer(cfg).to(dtype=dtype)
    model = model.to_empty(device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    with torch.no_grad():
        for mod in model.modules():
            if isinstance(mod, RMSNorm):
                mod.weight.fill_(1.0)
            elif isinstance(mod, (nn.Linear, nn.Embedding)):
                mod.weight.normal_(0.0, 0.02, generator=g)
    return model.eval()


def _cat_linear(linears) -> nn.Linear:
    """One bias-free nn.Linear whose output rows are the given layers' rows, in order."""
    w = torch.cat([m.weight.detach() for m in linears], dim=0)
    fused = nn.Linear(w.shape[1], w.shape[0], bias=False, device=w.device, dtype=w.dtype)
    with torch.no_grad():
        fused.weight.copy_(w)
    return fused


def fuse_projections(model: Transformer) -> Transformer:
    """In place: each block's q / k / v projections become one qkv_proj (N = (heads + 2 kv
    heads) * head_dim) and gate / up one gate_up_proj (N = 2 * intermediate), as serving stacks
    run them: one launch instead of three / two, and longer weight streams per launch (what the
    memory-bound decode kernels want). The same rows, so the same outputs up to summation order,
    and every row-wise quantizer gives the same codes. Call before quantize_."""
    for b in model.layers:
        a, m = b.attn, b.mlp
        if not a.fused:
            a.qkv_proj = _cat_linear([a.q_proj, a.k_proj, a.v_proj])
            del a.q_proj, a.k_proj, a.v_proj
            a.fused = True
        if not m.fused:
            m.gate_up_proj = _cat_linear([m.gate_proj, m.up_proj])
            del m.gate_proj, m.up_proj
            m.fused = True
    return model


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


if __name__ == "__main__":
    m = build("tiny", dtype=torch.float32)
    tok = torch.randint(0, m.cfg.vocab_size, (2, 16))
    print(m(tok).shape, f"{param_count(m) / 1e6:.2f} M params, head_dim {m.cfg.head_dim}, "
          f"{math.prod(tok.shape)} tokens")
