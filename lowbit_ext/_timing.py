"""Timing of CUDA calls with CUDA events over CUDA-graph replays: the one implementation
used by the benches (bench/common.py loads this file directly, without importing the
package) and by ``python -m lowbit_ext advise``. Imports only torch."""
import statistics

import torch


def graph_time(calls, reps=20, warmup=3):
    """Median ms per call of `calls` (zero-arg callables) captured in one CUDA graph.

    Why a graph: small-M calls last ~10-50 us, where launch overhead and Python would
    dominate an eager loop. Why several calls per graph: each call should use its own
    weight so that the weights stream from HBM instead of hitting L2 (the caller passes
    L callables over L distinct weights). Same procedure as shared/peers/peers_h100.py:
    eager call (lazy init, autotuning), side-stream warm-up, capture, replays.
    """
    for c in calls:
        c()
    torch.cuda.synchronize()
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for c in calls:
            c()
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        for c in calls:
            c()
    for _ in range(warmup):
        g.replay()
    torch.cuda.synchronize()
    ms = event_median(g.replay, reps, len(calls))
    del g
    return ms


def event_median(run, reps, calls_per_run):
    """Median over reps of the CUDA-event time of run(), in ms per call."""
    ts = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        run()
        b.record()
        b.synchronize()
        ts.append(a.elapsed_time(b) / calls_per_run)
    return statistics.median(ts)
