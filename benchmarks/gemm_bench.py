"""pydl gemm against torch.matmul in the same process, on the same CuPy arrays
(shared with PyTorch zero-copy through DLPack), timed with CUDA events:
warm-up first, then the median of many runs. Prints TFLOP/s and the
pydl/torch throughput ratio per variant and writes a JSON report.

    python benchmarks/gemm_bench.py --out benchmarks/results/gemm.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics

import cupy
import numpy as np
import torch

from pydl import _C

# (dtype, allow_tf32, sizes)
DEFAULT_CASES = [
    ("float16", False, [4096, 8192]),
    ("bfloat16", False, [4096, 8192]),
    ("float32", False, [4096]),
    ("float32", True, [4096]),
]


def _to_torch(x):
    if x.dtype.itemsize == 2 and x.dtype.name == "bfloat16":
        return torch.from_dlpack(x.view(cupy.int16)).view(torch.bfloat16)
    return torch.from_dlpack(x)


def _cupy_array(n_rows, n_cols, dtype, rng):
    x = cupy.asarray(rng.standard_normal((n_rows, n_cols), dtype=np.float32))
    if dtype == "float32":
        return x
    t = torch.from_dlpack(x).to(getattr(torch, dtype))
    if dtype == "bfloat16":  # through int16, which every CuPy version exchanges
        import ml_dtypes
        return cupy.from_dlpack(t.view(torch.int16)).view(ml_dtypes.bfloat16)
    return cupy.from_dlpack(t)


def _median_ms(fn, warmup, iters, flush):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(iters):
        flush.zero_()  # evict the operands from L2 between runs
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop))
    return statistics.median(times)


def bench(cases, warmup, iters):
    rng = np.random.default_rng(0)
    flush = torch.empty(256 * 1024 * 1024 // 4, dtype=torch.float32, device="cuda")
    stream = torch.cuda.current_stream()
    results = []
    for dtype, tf32, sizes in cases:
        for n in sizes:
            a = _cupy_array(n, n, dtype, rng)
            b = _cupy_array(n, n, dtype, rng)
            out = cupy.empty_like(a)
            ta, tb = _to_torch(a), _to_torch(b)
            tout = torch.empty_like(ta)
            flops = 2.0 * n * n * n
            torch.backends.cuda.matmul.allow_tf32 = tf32
            with cupy.cuda.ExternalStream(stream.cuda_stream):
                sptr = cupy.cuda.get_current_stream().ptr
                t_ms = _median_ms(lambda: torch.matmul(ta, tb, out=tout), warmup, iters, flush)
                variants = [v for v in _C.cuda.gemm_variants()]
                default = _C.cuda.gemm_variant(a, b, out, allow_tf32=tf32)
                for v in variants:
                    try:
                        _C.cuda.gemm(a, b, out, allow_tf32=tf32, stream=sptr, variant=v)
                    except ValueError:
                        continue  # this variant cannot run this dtype
                    p_ms = _median_ms(lambda: _C.cuda.gemm(a, b, out, allow_tf32=tf32, stream=sptr, variant=v),
                                      warmup, iters, flush)
                    # agreement with torch on the same inputs, as a sanity check of what was timed
                    torch.matmul(ta, tb, out=tout)
                    got = _to_torch(out).float()
                    rel = (torch.linalg.norm(got - tout.float()) / torch.linalg.norm(tout.float())).item()
                    r = {
                        "dtype": dtype, "allow_tf32": tf32, "m": n, "n": n, "k": n, "variant": v,
                        "default": v == default, "pydl_ms": p_ms, "torch_ms": t_ms,
                        "pydl_tflops": flops / p_ms / 1e9, "torch_tflops": flops / t_ms / 1e9,
                        "ratio": t_ms / p_ms, "rel_diff_vs_torch": rel,
                    }
                    results.append(r)
                    print(f"{dtype:9s} tf32={int(tf32)} {n:5d}^3 {v:9s}{'*' if r['default'] else ' '} "
                          f"pydl {r['pydl_tflops']:7.1f} TFLOP/s  torch {r['torch_tflops']:7.1f} TFLOP/s  "
                          f"ratio {r['ratio']:.3f}  rel diff {rel:.1e}", flush=True)
            del a, b, out, ta, tb, tout
    torch.backends.cuda.matmul.allow_tf32 = False
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="JSON file to write")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--iters", type=int, default=25)
    p.add_argument("--quick", action="store_true", help="4096^3 only")
    args = p.parse_args()
    cases = DEFAULT_CASES
    if args.quick:
        cases = [(d, t, [4096]) for d, t, _ in DEFAULT_CASES]
    results = bench(cases, args.warmup, args.iters)
    report = {
        "device": torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "cupy": cupy.__version__,
        "python": platform.python_version(),
        "warmup": args.warmup,
        "iters": args.iters,
        "note": "ratio = torch_ms / pydl_ms (above 1: pydl faster); '*' marks the variant gemm() picks",
        "results": results,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
