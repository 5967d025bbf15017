"""Timing for `pydl bench`: CUDA events around the region on the GPU (L2 flushed
before each run), wall time on the CPU; warm-up first, then the median and
spread of many runs. Also the machine's two ceilings: copy bandwidth (bytes read
plus written) and the best library's (PyTorch's) matrix rate."""
from __future__ import annotations

import os
import statistics
import subprocess
import time

_FLUSH = {}


def _flush_buffer():
    import cupy

    if "gpu" not in _FLUSH:
        # Larger than an H100's 50 MB L2: writing it evicts what the last run left there.
        _FLUSH["gpu"] = cupy.empty(128 * 2**20 // 4, cupy.float32)
    return _FLUSH["gpu"]


def _stats(times, reps) -> dict:
    times = sorted(times)
    return {"median_ms": statistics.median(times), "min_ms": times[0],
            "p90_ms": times[int(0.9 * (len(times) - 1))], "runs": reps}


def time_gpu(fn, warmup: int = 5, reps: int = 30, flush: bool = True) -> dict:
    """Milliseconds per call of fn() on CuPy's current stream."""
    import cupy

    for _ in range(warmup):
        fn()
    stream = cupy.cuda.get_current_stream()
    buf = _flush_buffer() if flush else None
    times = []
    for _ in range(reps):
        if buf is not None:
            buf.fill(1.0)
        start, end = cupy.cuda.Event(), cupy.cuda.Event()
        start.record(stream)
        fn()
        end.record(stream)
        end.synchronize()
        times.append(cupy.cuda.get_elapsed_time(start, end))
    return _stats(times, reps)


def time_cpu(fn, warmup: int = 2, reps: int = 10, min_seconds: float = 0.0,
             max_seconds: float | None = None, sync=None) -> dict:
    """Milliseconds per call of fn() by wall clock (then sync(), if given, inside the timed
    region). max_seconds: stop early once the runs took that long, after at least 3 runs,
    so that the slowest cases do not dominate a whole suite."""
    return _time_wall([fn], sync, warmup, reps, min_seconds, max_seconds)[0]


def time_pair(fa, fb, sync=None, warmup: int = 2, reps: int = 10, max_seconds: float | None = None):
    """(stats of fa, stats of fb) by wall clock, the two run alternately so that load from
    other processes on a shared machine falls on both alike; sync() (e.g. a device
    synchronize) ends each timed call. max_seconds as in time_cpu, over both."""
    return tuple(_time_wall([fa, fb], sync, warmup, reps, 0.0, max_seconds))


def _time_wall(fns, sync, warmup, reps, min_seconds, max_seconds) -> list:
    for _ in range(warmup):
        for fn in fns:
            fn()
    if sync is not None:
        sync()
    times = [[] for _ in fns]
    start = time.perf_counter()
    while len(times[0]) < reps or time.perf_counter() < start + min_seconds:
        for fn, ts in zip(fns, times):
            t0 = time.perf_counter()
            fn()
            if sync is not None:
                sync()
            ts.append((time.perf_counter() - t0) * 1e3)
        if max_seconds is not None and len(times[0]) >= 3 and time.perf_counter() - start > max_seconds:
            break
    return [_stats(ts, len(ts)) for ts in times]


def time_fn(device: str, fn, **kw) -> dict:
    return time_gpu(fn, **kw) if device == "cuda" else time_cpu(fn, **kw)


def copy_bandwidth_gbs(device: str) -> float:
    """Large device-to-device (or memory-to-memory) copy, bytes read plus written."""
    if device == "cuda":
        import cupy

        nbytes = 2**30
        a = cupy.ones(nbytes // 4, cupy.float32)
        b = cupy.empty_like(a)
        t = time_gpu(lambda: cupy.copyto(b, a), warmup=3, reps=10, flush=False)["median_ms"]
    else:
        import numpy as np

        nbytes = 2**28
        a = np.ones(nbytes // 4, np.float32)
        b = np.empty_like(a)
        t = time_cpu(lambda: np.copyto(b, a), warmup=2, reps=10)["median_ms"]
    return 2 * nbytes / (t * 1e-3) / 1e9


def matmul_tflops(device: str, dtype: str) -> float:
    """PyTorch's matrix rate for dtype (cuBLAS on the GPU, its CPU BLAS on the CPU)."""
    import torch

    n = 8192 if device == "cuda" else 1024
    dt = getattr(torch, dtype)
    a = torch.randn(n, n, device=device, dtype=dt)
    b = torch.randn(n, n, device=device, dtype=dt)
    if device == "cuda":
        import cupy

        with cupy.cuda.ExternalStream(torch.cuda.current_stream().cuda_stream):
            t = time_gpu(lambda: torch.matmul(a, b), warmup=3, reps=10, flush=False)["median_ms"]
    else:
        t = time_cpu(lambda: torch.matmul(a, b), warmup=1, reps=5)["median_ms"]
    return 2 * n**3 / (t * 1e-3) / 1e12


def environment(device: str) -> dict:
    import platform

    import torch

    import pydl

    env = {"pydl": pydl.__version__, "torch": torch.__version__, "python": platform.python_version(),
           "commit": git_commit(), "threads": torch.get_num_threads(),
           "cpu_kernels": pydl._C.build_info()["cpu_kernels"]}
    if device == "cuda":
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"]
        env["device"] = name.decode() if isinstance(name, bytes) else name
        env["cuda_runtime"] = cupy.cuda.runtime.runtimeGetVersion()
        env["cupy"] = cupy.__version__
        try:
            env["driver"] = subprocess.run(
                ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.TimeoutExpired):
            env["driver"] = "unknown"
    else:
        env["device"] = _cpu_name()
    return env


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "cpu"


def git_commit() -> str:
    try:
        # The checkout pydl runs from, whatever the current folder.
        here = os.path.dirname(os.path.abspath(__file__))
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=here)
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"
