"""Quantized checkpoints: state_dict / load_state_dict and safetensors (save_quantized /
load_quantized) round trips, bitwise, for every format; the metadata; and the errors for a
checkpoint of another format, a truncated or corrupt file, a file that is not ours."""
import copy
import json
import os

import pytest
import torch
from torch import nn

import lowbit_ext as L
from lowbit_ext import formats

from tiny_models import CONFIGS, FORMAT_CONFIG, build_tiny, quantized, reference, tokens

pytest.importorskip("safetensors")
from safetensors import safe_open  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

BF16 = torch.bfloat16


def _out(model, tok=None):
    with torch.no_grad():
        return model(tokens() if tok is None else tok)


def _fresh(name, seed=1):
    """The tiny model with other random weights, quantized with CONFIGS[name]."""
    m = build_tiny(seed=seed)
    L.quantize_(m, CONFIGS[name])
    return m


def _aligned(model):
    return all(b.data_ptr() % 16 == 0 for b in model.buffers())


# ---------------------------------------------------------------- state_dict
@pytest.mark.parametrize("fmt", formats.names())
def test_state_dict_round_trip_bitwise(fmt):
    name = FORMAT_CONFIG[fmt]
    src, _ = quantized(name)
    sd = src.state_dict()
    extra = sd["lm_head._extra_state"]
    assert extra["format"] == fmt and extra["in_features"] == 128 and extra["out_features"] == 256
    dst = _fresh(name)
    assert not torch.equal(_out(dst), _out(src))
    dst.load_state_dict(sd)
    assert torch.equal(_out(dst), _out(src))
    assert _aligned(dst)


def _misaligned(v):
    """A copy of v starting one element past a 16-byte boundary (as a tensor mapped from a
    file may start)."""
    e, raw = v.element_size(), v.contiguous().view(torch.uint8).reshape(-1)
    buf = torch.empty(raw.numel() + 32, dtype=torch.uint8)
    start = (-buf.data_ptr()) % 16 + e
    buf[start:start + raw.numel()] = raw
    out = buf[start:start + raw.numel()].view(v.dtype).reshape(v.shape)
    assert out.data_ptr() % 16 and torch.equal(out, v)
    return out


def test_state_dict_assign_keeps_alignment():
    src, _ = quantized("a16w4")
    sd = {k: (_misaligned(v) if isinstance(v, torch.Tensor) else v) for k, v in src.state_dict().items()}
    dst = _fresh("a16w4")
    dst.load_state_dict(sd, assign=True)
    assert _aligned(dst) and torch.equal(_out(dst), _out(src))


@pytest.mark.parametrize("src_name,dst_name,words", [
    ("a16w4", "w8a8_fp8", ["format 'a16w4'", "'w8a8_fp8'"]),
    ("a16w8", "w8a8_int8", ["format 'a16w8'", "'w8a8_int8'"]),        # identical tensors: metadata decides
    ("a16w4", "a16w4-g32", ["options", "'group_size': 128", "'group_size': 32"]),
    ("w8a8_fp8", "w8a8_fp8-tensor", ["options", "granularity"]),
])
def test_load_state_dict_of_another_format_says_so(src_name, dst_name, words):
    src, _ = quantized(src_name)
    dst = copy.deepcopy(quantized(dst_name)[0])
    before = _out(dst)
    with pytest.raises(RuntimeError) as e:
        dst.load_state_dict(src.state_dict())
    for w in words:
        assert w in str(e.value), (w, str(e.value)[:500])
    assert "layers.0.attn.q_proj" in str(e.value)
    assert torch.equal(_out(dst), before)   # nothing was copied into a mismatched layer


def test_load_state_dict_dtype_mismatch_is_an_error():
    src, _ = quantized("a16w4")
    sd = src.state_dict()
    sd["lm_head.scales"] = sd["lm_head.scales"].to(torch.float16)    # no silent conversion
    sd["lm_head._extra_state"] = dict(sd["lm_head._extra_state"])
    dst = _fresh("a16w4")
    with pytest.raises(RuntimeError, match="lm_head.scales is float16 in the checkpoint but bfloat16"):
        dst.load_state_dict(sd)


# ---------------------------------------------------------------- safetensors
@pytest.mark.parametrize("fmt", formats.names())
def test_safetensors_round_trip_bitwise(fmt, tmp_path):
    name = FORMAT_CONFIG[fmt]
    src, _ = quantized(name)
    path = str(tmp_path / "m.safetensors")
    L.save_quantized(src, path, metadata={"model": "tiny"})
    want = _out(src)

    # into the unquantized model: each layer rebuilt from the file, nothing quantized again
    plain = build_tiny(seed=2)
    L.load_quantized(plain, path)
    assert all(isinstance(plain.get_submodule(n), L.LowBitLinear) for n in ("lm_head", "layers.1.mlp.up_proj"))
    assert torch.equal(_out(plain), want) and _aligned(plain)

    # into a model quantized alike: copied in
    same = _fresh(name, seed=3)
    L.load_quantized(same, path)
    assert torch.equal(_out(same), want) and _aligned(same)

    meta = L.read_metadata(path)
    assert meta["user"] == {"model": "tiny"}
    assert meta["layers"]["lm_head"] == src.lm_head.layer_metadata()


def test_safetensors_metadata_layout(tmp_path):
    src, _ = quantized("a16w4-g32")
    path = str(tmp_path / "m.safetensors")
    L.save_quantized(src, path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
        keys = set(f.keys())
    layer = json.loads(meta["lowbit_ext.layer.layers.0.mlp.down_proj"])
    assert layer["format"] == "a16w4" and layer["options"]["group_size"] == 32
    assert layer["options"]["dtype"] == "bfloat16"
    assert (layer["in_features"], layer["out_features"], layer["bias"]) == (256, 128, False)
    assert meta["lowbit_ext.format_version"] == "3" and meta["lowbit_ext.version"] == L.__version__
    assert {"layers.0.mlp.down_proj.w", "layers.0.mlp.down_proj.scales", "layers.0.mlp.down_proj.zeros",
            "embed.weight", "norm.weight"} <= keys
    assert not any("_extra_state" in k for k in keys)
    assert set(json.loads(meta["lowbit_ext.crc32"])) == keys


def test_bias_and_tied_weights(tmp_path):
    # A model with biases and an lm_head tied to the embedding (left unquantized): the tied
    # tensor is stored once and both names get it back.
    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = nn.Embedding(64, 128)
            self.proj = nn.Linear(128, 128)
            self.head = nn.Linear(128, 64, bias=False)
            self.head.weight = self.embed.weight

        def forward(self, t):
            return self.head(self.proj(self.embed(t)))

    torch.manual_seed(0)
    src = Tied().to(BF16)
    L.quantize_(src, L.Int8Dynamic(), lambda m, n: n == "proj")
    path = str(tmp_path / "tied.safetensors")
    L.save_quantized(src, path)
    assert L.read_metadata(path)["aliases"] == {"head.weight": "embed.weight"}
    torch.manual_seed(1)
    dst = Tied().to(BF16)
    L.load_quantized(dst, path)
    tok = torch.arange(10).reshape(2, 5)
    assert torch.equal(dst(tok), src(tok)) and dst.proj.bias is not None
    assert dst.head.weight is dst.embed.weight   # still tied: copied into the shared tensor


@pytest.mark.parametrize("other", ["w8a8_fp8", "a16w4-sym", "a16w8"])
def test_load_into_model_of_another_format(other, tmp_path):
    src, _ = quantized("a16w4") if other != "a16w8" else quantized("w8a8_int8")
    path = str(tmp_path / "m.safetensors")
    L.save_quantized(src, path)
    dst = _fresh(other)
    before = _out(dst)
    with pytest.raises(L.CheckpointError, match="was quantized as") as e:
        L.load_quantized(dst, path)
    assert "layers.0.attn.q_proj" in str(e.value) and "load_quantized" in str(e.value)
    assert torch.equal(_out(dst), before)


def test_load_into_partly_quantized_or_other_model(tmp_path):
    src, _ = quantized("mxfp8")
    path = str(tmp_path / "m.safetensors")
    L.save_quantized(src, path)
    # a model whose lm_head is quantized while the file's is not
    part = build_tiny()
    L.quantize_(part, L.MXFP8(), lambda m, n: n != "lm_head")
    ppath = str(tmp_path / "part.safetensors")
    L.save_quantized(part, ppath)
    with pytest.raises(L.CheckpointError, match=r"\['lm_head'\] are quantized"):
        L.load_quantized(copy.deepcopy(src), ppath)
    # another architecture
    with pytest.raises(L.CheckpointError, match="out x in"):
        L.load_quantized(build_tiny(intermediate_size=384), path)
    with pytest.raises(L.CheckpointError, match="does not have"):
        L.load_quantized(nn.Sequential(nn.Linear(128, 128)), path)


def test_strict_false_tolerates_extra_model_tensors(tmp_path):
    src, _ = quantized("w8a8_int8")
    path = str(tmp_path / "m.safetensors")
    L.save_quantized(src, path)
    dst = build_tiny()
    dst.register_buffer("extra", torch.ones(3))
    with pytest.raises(L.CheckpointError, match=r"missing \['extra'\]"):
        L.load_quantized(dst, path)
    L.load_quantized(dst, path, strict=False)
    assert torch.equal(_out(dst), _out(src))


# ---------------------------------------------------------------- corrupt files
@pytest.fixture
def saved(tmp_path):
    src, _ = quantized("a16w4")
    path = str(tmp_path / "m.safetensors")
    L.save_quantized(src, path)
    with open(path, "rb") as f:
        return path, f.read()


def _write(path, data):
    with open(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("cut", [0.5, 0.999])
def test_truncated_file(saved, cut):
    path, data = saved
    _write(path, data[:int(len(data) * cut)])
    with pytest.raises(L.CheckpointError, match="truncated or corrupt"):
        L.load_quantized(build_tiny(), path)


def test_corrupt_header(saved):
    path, data = saved
    n = int.from_bytes(data[:8], "little")
    bad = bytearray(data)
    bad[8 + n // 2] = ord("\x01")    # a control byte inside the JSON header
    _write(path, bytes(bad))
    with pytest.raises(L.CheckpointError, match="truncated or corrupt"):
        L.load_quantized(build_tiny(), path)
    _write(path, b"not a safetensors file at all")
    with pytest.raises(L.CheckpointError, match="not a readable safetensors file"):
        L.load_quantized(build_tiny(), path)


def test_corrupt_data_fails_its_checksum(saved):
    path, data = saved
    bad = bytearray(data)
    bad[-100] ^= 0x10      # one bit in the last tensor's bytes: safetensors cannot tell
    _write(path, bytes(bad))
    with pytest.raises(L.CheckpointError, match="fails its CRC-32 check"):
        L.load_quantized(build_tiny(), path)
    L.load_quantized(build_tiny(), path, verify=False)   # the caller may skip the check


def test_file_not_written_by_save_quantized(tmp_path):
    path = str(tmp_path / "plain.safetensors")
    save_file({k: v.contiguous() for k, v in reference().state_dict().items()}, path)
    with pytest.raises(L.CheckpointError, match="not written by lowbit_ext.save_quantized"):
        L.load_quantized(build_tiny(), path)
    with pytest.raises(FileNotFoundError):
        L.load_quantized(build_tiny(), str(tmp_path / "missing.safetensors"))


@pytest.mark.parametrize("version", ["1", "2", "4"])
def test_other_format_version_is_refused(tmp_path, version):
    # formats 1 and 2 stored 4-bit weights in the w4 kernel layouts version 1 (no word
    # transpose) and 2 (no row tiles): the same shapes and dtypes, other meaning, so the
    # version alone must refuse the file
    src, _ = quantized("a16w4")
    path = str(tmp_path / "m.safetensors")
    L.save_quantized(src, path)
    with safe_open(path, framework="pt") as f:
        meta, tensors = f.metadata(), {k: f.get_tensor(k) for k in f.keys()}
    save_file(tensors, path, metadata=dict(meta, **{"lowbit_ext.format_version": version}))
    want = {"1": r"format 1, this lowbit_ext .* reads format 3: since format 2: the w4 kernel layout of "
                 r"4-bit weights changed.*; since format 3: the w4 kernel layout of 4-bit weights "
                 r"changed.*re-quantize.*re-save",
            "2": r"format 2, this lowbit_ext .* reads format 3: since format 3: the w4 kernel layout of "
                 r"4-bit weights changed.*re-quantize.*re-save",
            "4": r"format 4, this lowbit_ext .* reads format 3: .*newer lowbit_ext"}[version]
    with pytest.raises(L.CheckpointError, match=want):
        L.load_quantized(build_tiny(), path)
    with pytest.raises(L.CheckpointError, match=want):
        L.read_metadata(path)


def test_save_is_atomic_and_rejects_bad_metadata(tmp_path):
    src, _ = quantized("a16w8")
    path = str(tmp_path / "m.safetensors")
    with pytest.raises(ValueError, match="metadata"):
        L.save_quantized(src, path, metadata={"lowbit_ext.layer.x": "{}"})
    assert os.listdir(tmp_path) == []
    L.save_quantized(src, path)
    assert os.listdir(tmp_path) == ["m.safetensors"]


def test_options_left_out_take_their_defaults():
    # A checkpoint written before a format grew an option (its metadata lacks it) matches a
    # layer that has that option at its default value.
    src, _ = quantized("a16w4")
    sd = src.state_dict()
    for k in [k for k in sd if k.endswith("_extra_state")]:
        sd[k] = dict(sd[k], options={"group_size": 128})
    dst = _fresh("a16w4")
    dst.load_state_dict(sd)
    assert torch.equal(_out(dst), _out(src))
    sd["lm_head._extra_state"] = dict(sd["lm_head._extra_state"], options={"group_size": 64})
    with pytest.raises(RuntimeError, match="lm_head"):
        dst.load_state_dict(sd)
