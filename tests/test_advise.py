"""python -m lowbit_ext advise (CPU): accuracy table, recommendation lines, --json."""
import json
import subprocess
import sys

import pytest
import torch

from lowbit_ext import advise
from lowbit_ext.__main__ import main as cli_main

FORMATS = ["a16w8", "w8a8_fp8"]


def _run(tmp_path, capsys, *extra):
    out_json = tmp_path / "advise.json"
    result = advise.main(["--shapes", "256x512,512x256", "--formats", ",".join(FORMATS),
                          "--batch-sizes", "1,8", "--prompt-len", "64", "--json", str(out_json), *extra])
    return result, capsys.readouterr().out, out_json


def test_advise_cpu_table_json_and_recommendation(tmp_path, capsys):
    result, out, out_json = _run(tmp_path, capsys)
    if not torch.cuda.is_available():
        assert advise.NO_GPU_LINE in out
        assert not result["speed_measured"]
    lines = out.splitlines()
    head = [i for i, l in enumerate(lines) if l.startswith("format ")]
    assert len(head) == 1
    table = lines[head[0] + 1:]
    for f in ["bf16", *FORMATS]:
        assert sum(1 for l in table if l.split() and l.split()[0] == f) == 1, f
    assert any(l.startswith("recommendation decode") for l in lines)
    assert any(l.startswith("recommendation prefill") for l in lines)

    data = json.loads(out_json.read_text())
    assert set(data["formats"]) == {"bf16", *FORMATS}
    for f in FORMATS:
        s = data["formats"][f]
        assert 0 < s["rel_err"] < 1
        assert set(s["per_shape"]) == {"256x512", "512x256"}
        for r in s["per_shape"].values():
            assert 0 < r["rel_err"] < 1
            assert 7.9 < r["bits"] < 8.5       # int8 / e4m3 codes + per-row scales
    assert data["formats"]["a16w8"]["rel_err"] < data["formats"]["w8a8_fp8"]["rel_err"]
    assert set(data["recommendation"]) == {"decode", "prefill"}


def test_advise_threshold_changes_the_advice(tmp_path, capsys):
    # a threshold nothing meets: bf16, with the reason; a generous one: a quantized format
    result, out, _ = _run(tmp_path, capsys, "--max-error", "1e-6")
    assert result["recommendation"]["decode"]["format"] == "bf16"
    assert "no format" in out
    result, _, _ = _run(tmp_path, capsys, "--max-error", "0.5")
    if not result["speed_measured"]:
        assert result["recommendation"]["decode"]["format"] in FORMATS


def test_advise_bad_arguments():
    with pytest.raises(SystemExit):
        advise.main(["--shapes", "256by512"])
    with pytest.raises(SystemExit):
        advise.main(["--formats", "nope"])


def test_cli_dispatch(capsys):
    assert cli_main([]) == 0
    assert "advise" in capsys.readouterr().out
    assert cli_main(["frobnicate"]) == 2


def test_python_dash_m(tmp_path):
    r = subprocess.run([sys.executable, "-m", "lowbit_ext", "advise", "--shapes", "128x256", "--formats", "a16w8",
                        "--batch-sizes", "1", "--prompt-len", "16"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "recommendation decode" in r.stdout
