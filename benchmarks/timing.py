"""GPU timing shared by the benchmarks: CUDA events around the region, warm-up,
L2 flushed before each timed run, the median and spread of many runs, and the
machine's two ceilings (copy bandwidth, best library matrix rate)."""
from __future__ import annotations

import statistics
import subprocess


def _flush_buffer():
    import cupy

    global _FLUSH
    try:
        return _FLUSH
    except NameError:
        # Twice the H100's 50 MB L2: writing it evicts everything the last run left there.
        _FLUSH = cupy.empty(128 * 2**20 // 4, cupy.float32)
        return _FLUSH


def time_gpu(fn, warmup: int = 5, reps: int = 30, flush: bool = True) -> dict:
    """Milliseconds per call of fn() on CuPy's current stream: median, min and p90."""
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
    times.sort()
    return {"median_ms": statistics.median(times), "min_ms": times[0],
            "p90_ms": times[int(0.9 * (len(times) - 1))], "runs": reps}


def copy_bandwidth_gbs(nbytes: int = 2**30) -> float:
    """Device-to-device copy rate counting bytes read plus bytes written."""
    import cupy

    a = cupy.ones(nbytes // 4, cupy.float32)
    b = cupy.empty_like(a)
    t = time_gpu(lambda: cupy.copyto(b, a), warmup=3, reps=10, flush=False)["median_ms"]
    return 2 * nbytes / (t * 1e-3) / 1e9


def matmul_tflops(dtype: str, n: int = 8192) -> float:
    """PyTorch's (cuBLAS) matrix rate for dtype at n^3, on random data."""
    import torch

    dt = getattr(torch, dtype)
    a = torch.randn(n, n, device="cuda", dtype=dt)
    b = torch.randn(n, n, device="cuda", dtype=dt)
    t = time_gpu(lambda: torch.matmul(a, b), warmup=3, reps=10, flush=False)["median_ms"]
    return 2 * n**3 / (t * 1e-3) / 1e12


def device_facts() -> dict:
    import cupy
    import torch

    props = cupy.cuda.runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    try:
        driver = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                capture_output=True, text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        driver = "unknown"
    return {"device": name, "driver": driver, "cuda_runtime": cupy.cuda.runtime.runtimeGetVersion(),
            "torch": torch.__version__, "cupy": cupy.__version__}


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10).stdout.strip() or "unknown"
    except OSError:
        return "unknown"
