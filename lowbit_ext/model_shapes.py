"""Layer shapes of Llama-style decoders: the configurations the advisor
(``python -m lowbit_ext advise``) and the benches (bench/llama.py builds its model from them)
share, so the shapes are written once."""
import dataclasses
from typing import Dict, List, Tuple


@dataclasses.dataclass
class LlamaConfig:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int = 8
    intermediate_size: int = 14336
    vocab_size: int = 128256
    norm_eps: float = 1e-5
    rope_base: float = 500000.0
    max_seq: int = 8192

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads

    def replace(self, **kw) -> "LlamaConfig":
        return dataclasses.replace(self, **kw)


CONFIGS: Dict[str, LlamaConfig] = {
    # Llama-3-8B: every linear shape of the real model (q 4096x4096, k/v 1024x4096,
    # o 4096x4096, gate/up 14336x4096, down 4096x14336, lm_head 128256x4096).
    "llama3-8b": LlamaConfig(),
    # Llama-3-70B's layer shapes (8192 wide, 28672 intermediate), for shape sweeps.
    "llama3-70b": LlamaConfig(dim=8192, n_layers=80, n_heads=64, n_kv_heads=8, intermediate_size=28672),
    # For tests: every dimension a multiple of 128, so that every format takes every layer.
    # Small enough that the CPU reference ops run a forward in well under a second.
    "tiny": LlamaConfig(dim=128, n_layers=2, n_heads=2, n_kv_heads=1, intermediate_size=256,
                        vocab_size=256, max_seq=256, rope_base=10000.0),
}


def block_linears(c: LlamaConfig) -> List[Tuple[str, int, int]]:
    """(name, N, K) of one transformer block's linear layers (out_features N, in_features K)."""
    hd = c.head_dim
    return [("q_proj", c.n_heads * hd, c.dim), ("k_proj", c.n_kv_heads * hd, c.dim),
            ("v_proj", c.n_kv_heads * hd, c.dim), ("o_proj", c.dim, c.n_heads * hd),
            ("gate_proj", c.intermediate_size, c.dim), ("up_proj", c.intermediate_size, c.dim),
            ("down_proj", c.dim, c.intermediate_size)]
