"""`pydl bench`: pydl against PyTorch on the same inputs in the same process.

    pydl bench ops [--device cuda|cpu] [--dtype float16,...] [--quick] [--out DIR]
    pydl bench compare A B

Every row is checked against PyTorch's output before it is timed; a row whose
output disagrees is reported as wrong and not timed.
"""
from __future__ import annotations

import json
import os
import sys
import time

from . import report, timing
from .ops import SUITES, TOLERANCE, rel_error

DEFAULT_DTYPES = {"cuda": ["float32", "float16", "bfloat16"], "cpu": ["float32"]}


def _rate(case, ms):
    if case.flops:
        return case.flops / (ms * 1e-3) / 1e12, "TFLOP/s"
    return case.nbytes / (ms * 1e-3) / 1e9, "GB/s"


def run_ops(device: str = "cuda", dtypes=None, quick: bool = False, suites=None, progress: bool = True,
            command: str | None = None) -> dict:
    import torch

    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    dtypes = dtypes or DEFAULT_DTYPES[device]
    suites = suites or list(SUITES)
    ceilings = {"copy_gbs": timing.copy_bandwidth_gbs(device)}
    for dt in dtypes:
        ceilings[f"matmul_tflops_{dt}"] = timing.matmul_tflops(device, dt)
    reps = {"reps": 10 if quick else 30} if device == "cuda" else {"reps": 3 if quick else 10}
    rows = []
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("bench", total=None)
        for suite in suites:
            for dt in dtypes:
                for case in SUITES[suite](device, dt, quick):
                    bar.update(task, description=f"{suite} {case.op} {dt} {case.shape}")
                    row = {"suite": suite, "op": case.op, "dtype": dt, "shape": case.shape}
                    got, want = case.outputs()
                    err = rel_error(got, want)
                    row["rel_error"] = err
                    if not err <= TOLERANCE[dt]:
                        row["status"] = "wrong"
                        rows.append(row)
                        continue
                    row["status"] = "ok"
                    tp = timing.time_fn(device, case.pydl_fn, **reps)
                    tt = timing.time_fn(device, case.torch_fn, **reps)
                    rate, unit = _rate(case, tp["median_ms"])
                    trate, _ = _rate(case, tt["median_ms"])
                    ceiling = ceilings[f"matmul_tflops_{dt}"] if unit == "TFLOP/s" else ceilings["copy_gbs"]
                    row.update({"pydl_ms": tp["median_ms"], "pydl_p90_ms": tp["p90_ms"],
                                "torch_ms": tt["median_ms"], "torch_p90_ms": tt["p90_ms"],
                                "ratio": tp["median_ms"] / tt["median_ms"], "unit": unit,
                                "pydl_rate": rate, "torch_rate": trate,
                                "fraction_of_ceiling": rate / ceiling if ceiling else None})
                    rows.append(row)
    return {"kind": "ops", "device_type": device, "dtypes": dtypes, "quick": quick,
            "command": command or " ".join(sys.argv), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
            "environment": timing.environment(device), "ceilings": ceilings, "rows": rows}


def write(results: dict, out: str):
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report.markdown(results))
    report.charts(results, out)
