"""Quantized checkpoints in safetensors (no pickle): the whole model's tensors, and per
quantized layer its format, options and shape in the file's metadata.

    lowbit_ext.quantize_(model, Int4WeightOnly())
    lowbit_ext.save_quantized(model, "model.lowbit.safetensors")

    fresh = build_model().to(torch.bfloat16)      # unquantized (or on any device)
    lowbit_ext.load_quantized(fresh, "model.lowbit.safetensors")   # layers rebuilt as saved

File layout. Tensors: ``model.state_dict()``'s, under their state_dict names (a LowBitLinear
at ``layers.0.mlp.up_proj`` stores ``layers.0.mlp.up_proj.w``, ``.scales``, ...; bias and
every unquantized parameter and buffer as they are). Metadata (strings, as safetensors
wants them):

    lowbit_ext.format_version   "3" (version 3: w4 kernel layout version 3, see
                                csrc/include/lowbit/w4_layout.h; format 1 and 2 files hold
                                4-bit weights in older layouts and are refused)
    lowbit_ext.version          the package version that wrote the file
    lowbit_ext.layer.<name>     JSON {"format", "options", "in_features", "out_features", "bias"}
                                for each LowBitLinear
    lowbit_ext.aliases          JSON {name: name it shares storage with} (tied weights are
                                stored once; safetensors refuses shared tensors)
    lowbit_ext.crc32            JSON {name: CRC-32 of the tensor's bytes}: a flipped byte in
                                the data (which safetensors cannot notice) fails the load

Loading (:func:`load_quantized`) rebuilds each listed layer from the file's tensors where the
model still has a plain ``nn.Linear`` (nothing is quantized again), checks the layers that
are already LowBitLinear against the metadata (another format or other options: a
CheckpointError naming the layer and both formats), and loads everything else with
``load_state_dict``. A truncated or corrupt file, or one not written by save_quantized, is a
CheckpointError saying so. Tensors read from a file may start at any address, and the ops
need 16-byte aligned operands: every tensor is copied into the module (``copy_``, or an
aligned copy for rebuilt layers).
"""
import json
import os
import zlib
from typing import Any, Dict, Optional, Tuple

import torch
from torch import Tensor
from torch import nn as _nn

from .nn import LowBitLinear

FORMAT_VERSION = "3"
# What changed at each format version, for the error a file of another version gets.
_FORMAT_CHANGES = {"2": "the w4 kernel layout of 4-bit weights changed (version 2: words of each "
                        "128-element block stored transposed)",
                   "3": "the w4 kernel layout of 4-bit weights changed (version 3: each tile of 16 "
                        "rows stored contiguously, block by block)"}
_PREFIX = "lowbit_ext."
_LAYER = _PREFIX + "layer."


class CheckpointError(ValueError):
    """A quantized checkpoint that cannot be loaded into this model, and why."""


def _crc(t: Tensor) -> int:
    b = t.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
    return zlib.crc32(memoryview(b.numpy())) if b.numel() else 0


def _storage_key(t: Tensor):
    return (t.device, t.untyped_storage().data_ptr())


def save_quantized(model: _nn.Module, path: str, metadata: Optional[Dict[str, str]] = None) -> None:
    """Writes ``model.state_dict()`` and the layers' formats to `path` (safetensors). The
    file is written next to `path` and renamed over it, so a crash never leaves half a file
    under the name. `metadata`: extra str -> str entries to store (keys must not start with
    'lowbit_ext.')."""
    from safetensors.torch import save_file

    meta: Dict[str, str] = {}
    for k, v in (metadata or {}).items():
        if not isinstance(k, str) or not isinstance(v, str) or k.startswith(_PREFIX):
            raise ValueError(f"save_quantized: metadata must map str to str, keys not starting with "
                             f"{_PREFIX!r}; got {k!r}: {v!r}")
        meta[k] = v
    layers = {name: m.layer_metadata() for name, m in model.named_modules() if isinstance(m, LowBitLinear)}
    extra_keys = {f"{name}._extra_state" if name else "_extra_state" for name in layers}

    tensors: Dict[str, Tensor] = {}
    aliases: Dict[str, str] = {}
    first_of: Dict[Any, Tuple[str, Tensor]] = {}
    for k, v in model.state_dict().items():
        if k in extra_keys:
            continue
        if not isinstance(v, Tensor):
            raise ValueError(f"save_quantized: state_dict entry {k!r} is a {type(v).__name__}, not a tensor; "
                             f"safetensors stores tensors only")
        v = v.detach()
        if v.numel() and v.device.type != "meta":
            key = _storage_key(v)
            if key in first_of:
                name0, t0 = first_of[key]
                if (t0.shape, t0.stride(), t0.storage_offset(), t0.dtype) == \
                        (v.shape, v.stride(), v.storage_offset(), v.dtype):
                    aliases[k] = name0  # the same tensor under two names (tied weights)
                    continue
                v = v.clone()  # another view of a shared storage: stored on its own
            else:
                first_of[key] = (k, v)
        tensors[k] = v.to("cpu").contiguous()

    meta[_PREFIX + "format_version"] = FORMAT_VERSION
    from . import __version__
    meta[_PREFIX + "version"] = __version__
    for name, info in layers.items():
        meta[_LAYER + name] = json.dumps(info, sort_keys=True)
    meta[_PREFIX + "aliases"] = json.dumps(aliases, sort_keys=True)
    meta[_PREFIX + "crc32"] = json.dumps({k: _crc(t) for k, t in tensors.items()}, sort_keys=True)

    tmp = f"{path}.tmp{os.getpid()}"
    try:
        save_file(tensors, tmp, metadata=meta)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def read_metadata(path: str) -> Dict[str, Any]:
    """The lowbit metadata of a checkpoint, parsed: {"format_version", "version", "layers":
    {name: {...}}, "aliases": {...}, "crc32": {...}, "user": {other entries}}."""
    return _parse_metadata(path, _open(path)[1])


def _open(path: str):
    from safetensors import safe_open
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_quantized: no such file: {path}")
    try:
        f = safe_open(path, framework="pt", device="cpu")
        meta = f.metadata() or {}
        keys = list(f.keys())
    except Exception as e:  # safetensors raises its own SafetensorError for bad headers and sizes
        raise CheckpointError(f"load_quantized: {path} is not a readable safetensors file (truncated or "
                              f"corrupt?): {type(e).__name__}: {e}") from e
    return f, meta, keys


def _parse_metadata(path: str, meta: Dict[str, str]) -> Dict[str, Any]:
    version = meta.get(_PREFIX + "format_version")
    if version is None:
        raise CheckpointError(f"load_quantized: {path} has no lowbit_ext metadata: it was not written by "
                              f"lowbit_ext.save_quantized (a plain checkpoint loads with load_state_dict)")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"load_quantized: {path} is lowbit_ext checkpoint format {version}, this "
                              f"lowbit_ext {_version()} reads format {FORMAT_VERSION}: {_format_change(version)}")
    try:
        layers = {k[len(_LAYER):]: json.loads(v) for k, v in meta.items() if k.startswith(_LAYER)}
        aliases = json.loads(meta.get(_PREFIX + "aliases", "{}"))
        crcs = json.loads(meta.get(_PREFIX + "crc32", "{}"))
    except json.JSONDecodeError as e:
        raise CheckpointError(f"load_quantized: {path} has corrupt lowbit_ext metadata: {e}") from e
    for name, info in layers.items():
        if not isinstance(info, dict) or not {"format", "options", "in_features", "out_features"} <= set(info):
            raise CheckpointError(f"load_quantized: {path}: corrupt metadata for layer {name!r}: {info!r}")
    return {"format_version": version, "version": meta.get(_PREFIX + "version"), "layers": layers,
            "aliases": aliases, "crc32": crcs,
            "user": {k: v for k, v in meta.items() if not k.startswith(_PREFIX)}}


def _format_change(version: str) -> str:
    """Why a file of format `version` cannot be read, and what to do."""
    try:
        old, now = int(version), int(FORMAT_VERSION)
    except ValueError:
        return "unknown format version"
    if old > now:
        return "the file was written by a newer lowbit_ext; upgrade lowbit_ext to read it"
    changes = "; ".join(f"since format {v}: {_FORMAT_CHANGES[str(v)]}"
                        for v in range(old + 1, now + 1) if str(v) in _FORMAT_CHANGES)
    return (f"{changes or 'the stored layout changed'}, so its tensors no longer mean what they did; "
            f"re-quantize the model from its original weights and re-save it with save_quantized")


def _version():
    from . import __version__
    return __version__


def load_quantized(model: _nn.Module, path: str, *, strict: bool = True, verify: bool = True,
                   device=None) -> _nn.Module:
    """Loads a save_quantized checkpoint into `model` (in place; also returned).

    Each layer the file lists must be, in `model`, either a plain ``nn.Linear`` of the same
    shape (it is replaced by a LowBitLinear built from the file's tensors, on `device` or
    that Linear's device) or a LowBitLinear of the same format, options and shape (its
    tensors are copied in). Everything else loads with ``model.load_state_dict``; `strict`:
    the file and the model must hold the same names. `verify`: check each tensor's CRC-32.
    """
    f, meta, keys = _open(path)
    info = _parse_metadata(path, meta)
    layers, aliases, crcs = info["layers"], info["aliases"], info["crc32"]

    def get(name: str) -> Tensor:
        try:
            t = f.get_tensor(name)
        except Exception as e:
            raise CheckpointError(f"load_quantized: {path}: cannot read tensor {name!r} (truncated or corrupt "
                                  f"file?): {type(e).__name__}: {e}") from e
        if verify:
            want = crcs.get(name)
            if want is None:
                raise CheckpointError(f"load_quantized: {path}: tensor {name!r} has no checksum in the metadata: "
                                      f"the file was altered after it was written")
            if _crc(t) != want:
                raise CheckpointError(f"load_quantized: {path}: tensor {name!r} fails its CRC-32 check: the file "
                                      f"is corrupt")
        return t

    file_keys = set(keys)
    missing_alias = sorted(a for a, src in aliases.items() if src not in file_keys)
    if missing_alias:
        raise CheckpointError(f"load_quantized: {path}: aliases point at tensors the file lacks: {missing_alias}")
    all_names = file_keys | set(aliases)

    # 1. the quantized layers, in the model's order: checked, or rebuilt from the file. The
    # model is changed only once every check has passed.
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    absent = sorted(n for n in layers if n not in order)
    if absent:
        raise CheckpointError(f"load_quantized: {path} holds quantized layers this model does not have: "
                              f"{absent[:10]}{' ...' if len(absent) > 10 else ''}")
    mismatches = []
    rebuilt: Dict[str, LowBitLinear] = {}
    done = set()   # tensor names the rebuilt layers already hold
    for name in sorted(layers, key=order.get):
        layer, mod = layers[name], model.get_submodule(name)
        prefix = f"{name}." if name else ""
        if isinstance(mod, LowBitLinear):
            why = mod.metadata_mismatch(layer, name)
            if why:
                mismatches.append(why)
        elif isinstance(mod, _nn.Linear):
            if (mod.in_features, mod.out_features) != (layer["in_features"], layer["out_features"]):
                raise CheckpointError(
                    f"load_quantized: {path}: layer {name!r} is {layer['out_features']} x {layer['in_features']} "
                    f"(out x in) in the file but {mod.out_features} x {mod.in_features} in this model")
            if not name:
                raise CheckpointError("load_quantized: the model itself is the quantized nn.Linear; wrap it "
                                      "(nn.Sequential(linear))")
            names = [k for k in all_names if k.startswith(prefix) and "." not in k[len(prefix):]]
            tensors = {k[len(prefix):]: get(aliases.get(k, k)) for k in names}
            bias = tensors.pop("bias", None)
            if bias is not None and mod.bias is not None:
                bias = bias.to(mod.bias.dtype)
            try:
                new = LowBitLinear.from_tensors(layer["format"], tensors, layer["options"], bias)
            except (ValueError, KeyError) as e:
                raise CheckpointError(f"load_quantized: {path}: layer {name!r} cannot be rebuilt as "
                                      f"{layer['format']} {layer['options']}: {e}") from e
            dev = device or mod.weight.device
            if torch.device(dev).type == "meta":
                dev = "cpu"
            new = new.to(dev)
            new.train(mod.training)
            rebuilt[name] = new
            done |= set(names)
        else:
            raise CheckpointError(f"load_quantized: {path} holds quantized layer {name!r}, but this model's "
                                  f"{name!r} is a {type(mod).__name__}, not an nn.Linear")
    if mismatches:
        more = f" (and {len(mismatches) - 1} more layers)" if len(mismatches) > 1 else ""
        raise CheckpointError(mismatches[0] + more)

    not_in_file = [n for n, m in model.named_modules() if isinstance(m, LowBitLinear) and n not in layers]
    if not_in_file:
        m = model.get_submodule(not_in_file[0])
        raise CheckpointError(f"load_quantized: this model's layers {not_in_file[:10]} are quantized (the first "
                              f"as {m.format}), but {path} does not store them quantized")

    # 2. the names the model will hold once the layers are rebuilt, against the file's
    expected = {k for k in model.state_dict() if not k.endswith("_extra_state")}
    for name, new in rebuilt.items():
        expected -= {f"{name}.weight", f"{name}.bias"}
        expected |= {f"{name}.{k}" for k in new.state_dict() if k != "_extra_state"}
    missing = sorted(expected - all_names)
    unexpected = sorted(all_names - expected)
    if strict and (missing or unexpected):
        raise CheckpointError(f"load_quantized: {path} does not match this model: missing {missing[:20]}"
                              f"{' ...' if len(missing) > 20 else ''}, unexpected {unexpected[:20]}"
                              f"{' ...' if len(unexpected) > 20 else ''}")

    # 3. read (and verify) every other tensor, then change the model: install the rebuilt
    # layers, and copy the rest in through load_state_dict (copy_ into the model's own
    # tensors, which are aligned)
    sd: Dict[str, Any] = {}
    for k in sorted(expected & all_names):
        if k not in done:
            sd[k] = get(aliases.get(k, k))
    for name, layer in layers.items():
        sd[f"{name}._extra_state" if name else "_extra_state"] = layer
    for name, new in rebuilt.items():
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name) if parent_name else model, child, new)
    try:
        model.load_state_dict(sd, strict=False)
    except RuntimeError as e:
        raise CheckpointError(f"load_quantized: {path}: {e}") from e
    return model
