"""CPU conv2d benchmark: pydl's kernels (forward, input grad, weight grad) against
PyTorch (2 threads) and im2col + np.matmul, on the ResNet-18 conv layer shapes at
batch 8, float32. Median of --reps runs after a warm-up; prints a markdown table.

    python benchmarks/conv_cpu_bench.py [--batch 8] [--reps 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def median_ms(fn, reps):
    fn()
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times) * 1e3


def im2col_conv(x, w, s, p):
    """The NumPy baseline: one im2col of the whole batch and one np.matmul."""
    n, c, h, _ = x.shape
    oc, _, k, _ = w.shape
    oh = (h + 2 * p - k) // s + 1
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    cols = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(2, 3))[:, :, ::s, ::s]
    cols = cols.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * oh, c * k * k)
    return np.matmul(cols, w.reshape(oc, -1).T).reshape(n, oh, oh, oc).transpose(0, 3, 1, 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", str(a.threads))
    import torch
    from pydl.backend import cpu as B
    from pydl.bench.conv import RESNET18  # (C_in, H, C_out, k, stride, pad), 224 x 224 input
    torch.set_num_threads(a.threads)
    rng = np.random.default_rng(0)
    print("| layer (Cin,H,Cout,k,s) | pass | pydl ms | GFLOP/s | torch ms | numpy im2col ms | "
          "pydl/torch speed | pydl/numpy speed |")
    print("|---|---|---|---|---|---|---|---|")
    totals = {"fwd": [0, 0, 0], "dgrad": [0, 0, 0], "wgrad": [0, 0, 0]}
    for c, h, oc, k, s, p in RESNET18:
        x = rng.standard_normal((a.batch, c, h, h), dtype=np.float32)
        w = rng.standard_normal((oc, c, k, k), dtype=np.float32)
        oh = (h + 2 * p - k) // s + 1
        dy = rng.standard_normal((a.batch, oc, oh, oh), dtype=np.float32)
        flops = 2.0 * a.batch * oc * oh * oh * c * k * k
        tx, tw, tdy = torch.tensor(x), torch.tensor(w), torch.tensor(dy)
        st, pa, di = (s, s), (p, p), (1, 1)
        cases = {
            "fwd": (lambda: B.conv2d_forward(x, w, None, st, pa, di, 1, (oh, oh)),
                    lambda: torch.nn.functional.conv2d(tx, tw, None, s, p),
                    lambda: im2col_conv(x, w, s, p)),
            "dgrad": (lambda: B.conv2d_backward_input(dy, w, x.shape, st, pa, di, 1),
                      lambda: torch.nn.grad.conv2d_input(tx.shape, tw, tdy, s, p), None),
            "wgrad": (lambda: B.conv2d_backward_weight(x, dy, w.shape, st, pa, di, 1),
                      lambda: torch.nn.grad.conv2d_weight(tx, tw.shape, tdy, s, p), None),
        }
        for name, (ours, theirs, base) in cases.items():
            with torch.no_grad():
                t_ours, t_torch = median_ms(ours, a.reps), median_ms(theirs, a.reps)
            t_np = median_ms(base, a.reps) if base else float("nan")
            tot = totals[name]
            tot[0] += t_ours
            tot[1] += t_torch
            tot[2] += t_np if base else 0
            print(f"| {c},{h},{oc},{k},{s} | {name} | {t_ours:.2f} | {flops / t_ours / 1e6:.1f} | "
                  f"{t_torch:.2f} | {t_np:.2f} | {t_torch / t_ours:.2f} | "
                  f"{t_np / t_ours:.2f} |")
    for name, (o, t, n) in totals.items():
        extra = f", numpy {n:.1f} ms ({n / o:.2f}x)" if n else ""
        print(f"\n{name} total: pydl {o:.1f} ms, torch {t:.1f} ms (pydl speed = {t / o:.2f}x torch)"
              f"{extra}")


if __name__ == "__main__":
    main()
