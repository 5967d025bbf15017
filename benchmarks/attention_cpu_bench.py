"""Fused CPU attention against PyTorch's CPU scaled_dot_product_attention, in one
process, same inputs, float32, two threads each: forward and forward+backward at
seq 1k..4k, head_dim 64, causal and not. Reports the median time of each, the
achieved GFLOP/s (4*B*H*L*S*E for the forward, halved when causal; backward 2.5x
the forward) and the time ratio pydl/torch (under 1 means pydl is faster).

    python benchmarks/attention_cpu_bench.py [--seqs 1024 2048 4096] [--heads 8] [--reps 5]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "2")
# Run from a checkout: import the pydl next to this folder (built in place).
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def paired_median_ms(fa, fb, reps: int, warmup: int = 1):
    """Median ms of fa and of fb, run alternately so that load from other processes on a
    shared machine falls on both alike."""
    for _ in range(warmup):
        fa()
        fb()
    ta, tb = [], []
    for _ in range(reps):
        for fn, times in ((fa, ta), (fb, tb)):
            t = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t) * 1e3)
    return statistics.median(ta), statistics.median(tb)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seqs", type=int, nargs="+", default=[1024, 2048, 4096])
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--heads", type=int, default=8)
    ap.add_argument("--head-dim", type=int, default=64)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)

    import numpy as np
    import torch

    import pydl
    import pydl.nn.functional as F

    torch.set_num_threads(args.threads)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True).stdout.strip()
    print(f"# CPU: {cpu_model()}, {os.cpu_count()} logical CPUs visible; threads {args.threads} "
          f"(torch.set_num_threads, OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})")
    print(f"# torch {torch.__version__}, numpy {np.__version__}, python {sys.version.split()[0]}, "
          f"pydl commit {commit}")
    print(f"# float32, batch {args.batch}, heads {args.heads}, head_dim {args.head_dim}, "
          f"median of {args.reps} runs after a warm-up, pydl and torch alternating")
    print("| seq | causal | pass | pydl ms | torch ms | pydl GFLOP/s | torch GFLOP/s | "
          "time ratio pydl/torch |")
    print("|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    b, h, e = args.batch, args.heads, args.head_dim
    for n in args.seqs:
        arrs = [rng.standard_normal((b, h, n, e), dtype=np.float32) for _ in range(3)]
        g = rng.standard_normal((b, h, n, e), dtype=np.float32)
        for causal in (False, True):
            flops = 4.0 * b * h * n * n * e * (0.5 if causal else 1.0)
            pq = [pydl.tensor(a) for a in arrs]
            tq = [torch.from_numpy(a) for a in arrs]
            fwd_p, fwd_t = paired_median_ms(
                lambda: F.scaled_dot_product_attention(*pq, is_causal=causal),
                lambda: torch.nn.functional.scaled_dot_product_attention(*tq, is_causal=causal),
                args.reps)
            pl = [pydl.tensor(a, requires_grad=True) for a in arrs]
            tl = [torch.from_numpy(a.copy()).requires_grad_() for a in arrs]
            pg, tg = pydl.tensor(g), torch.from_numpy(g)

            def step_p():
                for t in pl:
                    t.grad = None
                F.scaled_dot_product_attention(*pl, is_causal=causal).backward(pg)

            def step_t():
                for t in tl:
                    t.grad = None
                torch.nn.functional.scaled_dot_product_attention(*tl, is_causal=causal).backward(tg)

            both_p, both_t = paired_median_ms(step_p, step_t, args.reps)
            for name, tp, tt, fl in (("forward", fwd_p, fwd_t, flops),
                                     ("forward+backward", both_p, both_t, 3.5 * flops)):
                print(f"| {n} | {causal} | {name} | {tp:.1f} | {tt:.1f} | {fl / tp / 1e6:.1f} | "
                      f"{fl / tt / 1e6:.1f} | {tp / tt:.2f} |", flush=True)


if __name__ == "__main__":
    main()
