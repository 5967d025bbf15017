"""softmax, log_softmax, layer_norm and cross-entropy, forward and backward:
pydl's CUDA kernels against PyTorch on the same CuPy/torch memory, in one
process. Reports achieved GB/s (bytes each op must move), its fraction of the
measured copy bandwidth, and the time ratio pydl/torch (under 1 is faster).

    python benchmarks/rowops_bench.py --out results.json [--quick]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np


def cases(quick: bool):
    widths = [1024, 8192, 32768, 131072] if quick else [1024, 2048, 4096, 8192, 16384, 32768, 65536,
                                                        131072]
    dtypes = ["float32", "bfloat16"] if quick else ["float32", "float16", "bfloat16"]
    for dtype in dtypes:
        for w in widths:
            yield dtype, w


def run(quick: bool = False, total_elems: int = 1 << 26):
    import cupy
    import torch

    from pydl.backend import cuda as B

    sys.path.insert(0, __file__.rsplit("/", 1)[0])
    from timing import copy_bandwidth_gbs, device_facts, git_commit, time_gpu

    bw = copy_bandwidth_gbs()
    rows_out = []
    for dtype, width in cases(quick):
        rows = max(1, total_elems // width)
        tdt = getattr(torch, dtype)
        xt = torch.randn(rows, width, device="cuda", dtype=tdt)
        dyt = torch.randn_like(xt)
        x = cupy.from_dlpack(xt)
        dy = cupy.from_dlpack(dyt)
        es = xt.element_size()
        n = rows * width
        target_t = torch.randint(0, width, (rows,), device="cuda")
        target = cupy.from_dlpack(target_t)
        w_t = torch.randn(width, device="cuda", dtype=tdt)
        b_t = torch.randn(width, device="cuda", dtype=tdt)
        w, b = cupy.from_dlpack(w_t), cupy.from_dlpack(b_t)

        y = B.softmax_forward(x, False)
        yl = B.softmax_forward(x, True)
        ln_y, ln_m, ln_r = B.layer_norm_forward(x, w, b, 1e-5, False)
        ce_loss, ce_lse = B.cross_entropy_forward(x, target, -100, 0.0)
        dloss = cupy.ones(rows, ce_lse.dtype) / rows
        yt = torch.softmax(xt, -1)
        ylt = torch.log_softmax(xt, -1)
        _, tm, tr = torch.ops.aten.native_layer_norm(xt, [width], w_t, b_t, 1e-5)
        xg = xt.detach().requires_grad_(True)
        tloss = torch.nn.functional.cross_entropy(xg, target_t)

        # correctness against torch before timing
        def close(a, t, tol):
            a = torch.from_dlpack(a).float()
            return float((a - t.float()).abs().max()) <= tol * (1 + float(t.float().abs().max()))

        tol = 1e-5 if dtype == "float32" else 2e-2
        assert close(y, yt, tol), f"softmax mismatch {dtype} {width}"
        assert close(yl, ylt, tol * 10), f"log_softmax mismatch {dtype} {width}"
        assert close(ln_y, torch.nn.functional.layer_norm(xt, [width], w_t, b_t), tol * 10), "layer_norm"
        ce_tol = 1e-4 if dtype == "float32" else 1e-2  # torch rounds a half-type loss to its dtype
        assert abs(float(ce_loss.mean()) - float(tloss.detach())) <= ce_tol * (1 + abs(float(tloss.detach()))), \
            f"cross_entropy mismatch {dtype} {width}"

        ops = {
            "softmax_fwd": (lambda: B.softmax_forward(x, False), lambda: torch.softmax(xt, -1), 2 * n * es),
            "softmax_bwd": (lambda: B.softmax_backward(y, dy, False),
                            lambda: torch._softmax_backward_data(dyt, yt, -1, tdt), 3 * n * es),
            "log_softmax_fwd": (lambda: B.softmax_forward(x, True), lambda: torch.log_softmax(xt, -1),
                                2 * n * es),
            "log_softmax_bwd": (lambda: B.softmax_backward(yl, dy, True),
                                lambda: torch._log_softmax_backward_data(dyt, ylt, -1, tdt), 3 * n * es),
            "layer_norm_fwd": (lambda: B.layer_norm_forward(x, w, b, 1e-5, False),
                               lambda: torch.ops.aten.native_layer_norm(xt, [width], w_t, b_t, 1e-5),
                               2 * n * es),
            "layer_norm_bwd": (lambda: B.layer_norm_backward(x, w, ln_m, ln_r, dy, False, True, True),
                               lambda: torch.ops.aten.native_layer_norm_backward(
                                   dyt, xt, [width], tm, tr, w_t, b_t, [True, True, True]),
                               3 * n * es),
            "cross_entropy_fwd": (lambda: B.cross_entropy_forward(x, target, -100, 0.0),
                                  lambda: torch.nn.functional.cross_entropy(xt, target_t), n * es),
            "cross_entropy_bwd": (lambda: B.cross_entropy_backward(x, target, ce_lse, dloss, -100, 0.0),
                                  lambda: torch.autograd.grad(tloss, xg, retain_graph=True),
                                  2 * n * es),
        }
        for name, (fp, ft, nbytes) in ops.items():
            tp = time_gpu(fp)
            tt = time_gpu(ft)
            row = {"op": name, "dtype": dtype, "rows": rows, "width": width,
                   "pydl_ms": tp["median_ms"], "torch_ms": tt["median_ms"],
                   "pydl_p90_ms": tp["p90_ms"], "torch_p90_ms": tt["p90_ms"],
                   "pydl_gbs": nbytes / (tp["median_ms"] * 1e-3) / 1e9,
                   "torch_gbs": nbytes / (tt["median_ms"] * 1e-3) / 1e9}
            row["pydl_frac_bw"] = row["pydl_gbs"] / bw
            row["ratio"] = tp["median_ms"] / tt["median_ms"]
            rows_out.append(row)
            print(f"{name:18s} {dtype:9s} w={width:7d} pydl {tp['median_ms']:.3f} ms "
                  f"({row['pydl_gbs']:.0f} GB/s, {row['pydl_frac_bw']:.0%} of copy) torch "
                  f"{tt['median_ms']:.3f} ms ratio {row['ratio']:.2f}", flush=True)
        del xt, dyt, x, dy
    return {"suite": "rowops", "copy_bandwidth_gbs": bw, "commit": git_commit(),
            "command": " ".join(sys.argv), **device_facts(), "results": rows_out}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="rowops.json")
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    res = run(args.quick)
    with open(args.out, "w") as f:
        json.dump(res, f, indent=1)
    ratios = np.array([r["ratio"] for r in res["results"]])
    print(f"rowops: {len(ratios)} cases, median pydl/torch time ratio {np.median(ratios):.2f}, "
          f"worst {ratios.max():.2f}; copy bandwidth {res['copy_bandwidth_gbs']:.0f} GB/s")


if __name__ == "__main__":
    main()
