"""Shared pieces of the lowbit_ext benches: timing, byte accounting, run metadata.

Kept apart from gemm.py so that a model bench can time and describe its runs the
same way (same timer, same metadata keys) and numbers stay comparable.
Everything here imports and runs without a GPU: the CUDA paths are only taken
when the caller asks for them.
"""
import dataclasses
import datetime
import json
import os
import statistics
import subprocess
import sys
import time

import torch

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
L2_BYTES = 60 * 1024**2  # the largest Hopper L2 (H200: 60 MB; H100 SXM: 50 MB); rotations must overflow it
# Rated HBM bandwidth by card name, for floor columns (vendor datasheets); unknown cards: the H100's.
HBM_BYTES_PER_S = {"H200": 4.8e12, "H100": 3.35e12}


def hbm_bytes_per_s():
    """The current CUDA card's rated HBM bandwidth (bytes/s) by its name; the H100's otherwise."""
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else ""
    return next((v for k, v in HBM_BYTES_PER_S.items() if k in name), HBM_BYTES_PER_S["H100"])


def log(*a):
    """Print and flush: device runs are read from a tail, and a killed run must keep its lines."""
    print(*a, flush=True)


# ---------------------------------------------------------------- timing
def _load_timing():
    """lowbit_ext/_timing.py by path: the benches time peers even when the lowbit_ext library
    cannot be imported (not built, or stale), so the package itself is not imported here."""
    import importlib.util
    spec = importlib.util.spec_from_file_location("lowbit_ext_timing", os.path.join(REPO, "lowbit_ext", "_timing.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


_TIMING = _load_timing()
graph_time = _TIMING.graph_time


def eager_time(calls, reps=20, warmup=3):
    """Median ms per call without a graph: the fallback for ops that cannot be captured yet.

    Rows timed this way are tagged timing="eager" because launch overhead inflates them.
    """
    for _ in range(warmup):
        for c in calls:
            c()
    torch.cuda.synchronize()

    def run():
        for c in calls:
            c()
    return _TIMING.event_median(run, reps, len(calls))


def cpu_time(calls, reps=2, warmup=1):
    """Wall-clock ms per call on the CPU: only so that --dry-run exercises the whole pipeline."""
    for _ in range(warmup):
        for c in calls:
            c()
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        for c in calls:
            c()
        ts.append((time.perf_counter() - t) * 1e3 / len(calls))
    return statistics.median(ts)


def rotation_count(weight_bytes_bf16, total_mem_bytes=None, target_bytes=1024**3, lo=2, hi=8):
    """How many distinct weights (L) one graph cycles through.

    L * bf16 weight bytes >= 1 GiB gives 8 for 8192x8192 and 3 for 28672x8192 (the peers'
    choices); then even an int4 copy (1/4 of bf16) spans >= 4x a 60 MB L2 (H200; 5x the H100's
    50 MB), so no method reads its weights from L2. Capped at `hi` and at a fifth of device memory.
    """
    L = max(lo, min(hi, -(-target_bytes // weight_bytes_bf16)))
    if total_mem_bytes:
        L = max(1, min(L, int(0.2 * total_mem_bytes // weight_bytes_bf16)))
    return int(L)


# ---------------------------------------------------------------- bytes
def stored_bytes(obj):
    """Bytes of all distinct tensors reachable from `obj`: the weight as the method stores it.

    Why generic: peers keep their weights in closures, nn.Modules (gemlite) or our
    QuantizedWeight; walking them counts packed weights + scales + zeros as stored,
    which is what a small-M call must stream. Prefers the object's own count, an `nbytes`
    method or attribute (lowbit_ext's QuantizedWeight.nbytes()), over walking.
    """
    nb = None if isinstance(obj, torch.Tensor) else getattr(obj, "nbytes", None)
    if callable(nb):
        nb = nb()
    if isinstance(nb, int):
        return nb
    seen = {}
    _walk(obj, seen, depth=0)
    return sum(seen.values())


def _walk(obj, seen, depth):
    if depth > 6 or obj is None:
        return
    if isinstance(obj, torch.Tensor):
        if obj.device.type == "meta":
            return
        try:
            st = obj.untyped_storage()
            key = (st.data_ptr(), obj.device.type)
            seen[key] = max(seen.get(key, 0), st.nbytes())
        except Exception:
            seen[id(obj)] = obj.numel() * obj.element_size()
        return
    if isinstance(obj, torch.nn.Module):
        for t in list(obj.parameters(recurse=True)) + list(obj.buffers(recurse=True)):
            _walk(t, seen, depth + 1)
        for v in vars(obj).values():
            if isinstance(v, torch.Tensor):
                _walk(v, seen, depth + 1)
        return
    if isinstance(obj, (list, tuple, set)):
        for v in obj:
            _walk(v, seen, depth + 1)
        return
    if isinstance(obj, dict):
        for v in obj.values():
            _walk(v, seen, depth + 1)
        return
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _walk(getattr(obj, f.name, None), seen, depth + 1)
        return
    if hasattr(obj, "__dict__") and not callable(obj):
        for v in vars(obj).values():
            _walk(v, seen, depth + 1)


# ---------------------------------------------------------------- metadata
def _run(cmd):
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=10, cwd=REPO)
        return (r.stdout.strip() or None) if r.returncode == 0 else None
    except Exception:
        return None


def git_info():
    """Commit of the tree being measured; the device copy may lack .git, hence the env override."""
    commit = os.environ.get("LOWBIT_GIT_COMMIT") or _run(["git", "rev-parse", "HEAD"])
    status = _run(["git", "status", "--porcelain", "--untracked-files=no"])
    return dict(git_commit=commit, git_dirty=bool(status) if commit else None)


def run_meta(device):
    """Card, versions and date: BRIEF section 6 wants every number reported with them."""
    m = dict(
        date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        torch=torch.__version__,
        cuda=torch.version.cuda,
        python=sys.version.split()[0],
        argv=sys.argv,
        **git_info(),
    )
    try:
        import triton
        m["triton"] = triton.__version__
    except Exception:
        m["triton"] = None
    if device == "cuda" and torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        m.update(card=torch.cuda.get_device_name(0), sm_count=p.multi_processor_count,
                 capability=f"{p.major}.{p.minor}", memory_GiB=round(p.total_memory / 1024**3, 1))
        smi = _run(["nvidia-smi", "--query-gpu=driver_version,clocks.max.sm,clocks.max.mem,power.limit",
                    "--format=csv,noheader"])
        m["nvidia_smi"] = smi.splitlines()[0] if smi else None
    else:
        m.update(card="cpu (dry run)")
    return m


def write_json(path, obj):
    """Write atomically, so a run killed mid-write still leaves the previous complete file."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, default=str)
    os.replace(tmp, path)
