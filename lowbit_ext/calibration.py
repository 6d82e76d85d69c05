"""Calibration data for activation-aware quantizers (AWQ): the inputs each linear layer
of a model sees on sample inputs, recorded with forward pre-hooks.

    acts = record_linear_inputs(model, batch)            # {module name: (rows, K)}
    qw = formats.get("a16w4").quantize(lin.weight, method="awq", act=acts[name])

Rows are tokens (every leading dimension of the layer input flattened). When a layer sees
more than ``max_rows`` rows over all the batches, a uniform random subset of ``max_rows``
of them is kept (bottom-k of random keys, seeded: the same inputs give the same rows), so
memory stays bounded and late batches count as much as early ones.
"""
from typing import Any, Callable, Dict, Optional, Union

import torch
from torch import Tensor, nn

__all__ = ["record_linear_inputs"]


def _call(model: nn.Module, batch: Any):
    if isinstance(batch, dict):
        return model(**batch)
    if isinstance(batch, tuple):
        return model(*batch)
    return model(batch)


class _Reservoir:
    """Keeps a uniform random subset of at most max_rows rows of everything added."""

    def __init__(self, max_rows: int, gen: torch.Generator, device):
        self.max_rows, self.gen, self.device = max_rows, gen, device
        self.rows: Optional[Tensor] = None
        self.keys: Optional[Tensor] = None

    def add(self, x: Tensor) -> None:
        x = x.detach().reshape(-1, x.shape[-1])
        if self.device is not None:
            x = x.to(self.device)
        keys = torch.rand(x.shape[0], generator=self.gen)
        if self.rows is not None:
            if x.shape[-1] != self.rows.shape[-1] or x.dtype != self.rows.dtype:
                raise ValueError(f"record_linear_inputs: a module saw inputs of last dimension / dtype "
                                 f"{x.shape[-1]} / {x.dtype} after {self.rows.shape[-1]} / {self.rows.dtype}")
            x = torch.cat([self.rows, x])
            keys = torch.cat([self.keys, keys])
        if x.shape[0] > self.max_rows:
            keep = torch.topk(keys, self.max_rows, largest=False).indices.sort().values
            x, keys = x[keep.to(x.device)], keys[keep]
        self.rows, self.keys = x, keys


@torch.no_grad()
def record_linear_inputs(model: nn.Module, inputs: Union[Tensor, tuple, dict, list],
                         filter_fn: Optional[Callable[[nn.Module, str], bool]] = None, max_rows: int = 4096,
                         *, device: Union[str, torch.device, None] = None, seed: int = 0) -> Dict[str, Tensor]:
    """Runs `model` on `inputs` and returns {module name: its input activations (rows, K)}
    for every ``nn.Linear`` that ``filter_fn(module, name)`` accepts (all of them without
    one: the convention of ``quantize_``'s filter_fn) and that was called.

    inputs: one batch (a Tensor: ``model(t)``; a tuple: ``model(*t)``; a dict:
    ``model(**t)``) or a list of such batches. The model runs under no_grad in its
    current mode (put it in eval() first if it has dropout). Activations keep their dtype;
    ``device`` (default: where they were produced) is where they are stored, e.g. "cpu"
    to spare GPU memory. Hooks are removed on return, also after an error.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"record_linear_inputs: model must be a torch.nn.Module, got {type(model).__name__}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"record_linear_inputs: max_rows must be a positive integer, got {max_rows!r}")
    gen = torch.Generator().manual_seed(seed)
    store: Dict[str, _Reservoir] = {}
    handles = []

    def hook_for(name):
        def hook(module, args, kwargs):
            x = args[0] if args else next(iter(kwargs.values()), None)
            if isinstance(x, Tensor) and x.is_floating_point() and x.dim() >= 1:
                store.setdefault(name, _Reservoir(max_rows, gen, device)).add(x)
        return hook

    try:
        for name, module in model.named_modules():
            if isinstance(module, nn.Linear) and (filter_fn is None or filter_fn(module, name)):
                handles.append(module.register_forward_pre_hook(hook_for(name), with_kwargs=True))
        batches = inputs if isinstance(inputs, list) else [inputs]
        for batch in batches:
            _call(model, batch)
    finally:
        for h in handles:
            h.remove()
    return {name: r.rows for name, r in store.items()}
