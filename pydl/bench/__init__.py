"""`pydl bench`: pydl against PyTorch on the same inputs in the same process.

    pydl bench ops [--device cuda|cpu] [--dtype float16,...] [--suites gemm,...] [--quick] [--out DIR]
    pydl bench models [--device cuda|cpu] [--families mlp,...] [--quick] [--out DIR]
    pydl bench compare A B

Every row is checked against PyTorch's output (for models, the loss on the same batch)
before it is timed; a row whose output disagrees is reported as wrong and not timed. A
kernel the device's backend lacks is reported as unsupported.
"""
from __future__ import annotations

import json
import os
import sys
import time

from . import report, timing
from .models import run_models
from .ops import SUITES, TOLERANCE, rel_error

__all__ = ["run_ops", "run_models", "write"]

DEFAULT_DTYPES = {"cuda": ["float32", "float16", "bfloat16"], "cpu": ["float32"]}


def _rate(case, ms):
    if case.flops:
        return case.flops / (ms * 1e-3) / 1e12, "TFLOP/s"
    return case.nbytes / (ms * 1e-3) / 1e9, "GB/s"


def run_ops(device: str = "cuda", dtypes=None, quick: bool = False, suites=None, progress: bool = True,
            command: str | None = None, max_seconds: float | None = None) -> dict:
    """Check then time each case of the suites in each dtype. max_seconds: no case starts after
    that many seconds; the result then says where the run stopped ("stopped")."""
    import torch

    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    dtypes = dtypes or DEFAULT_DTYPES[device]
    suites = suites or list(SUITES)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"pydl bench ops: unknown suites {unknown}; known: {', '.join(SUITES)}")
    ceilings = {"copy_gbs": timing.copy_bandwidth_gbs(device)}
    for dt in dtypes:
        ceilings[f"matmul_tflops_{dt}"] = timing.matmul_tflops(device, dt)
    # On the CPU, a case stops after 5 s of runs (at least 3): the large attention and
    # convolution rows take seconds per call.
    reps = {"reps": 10 if quick else 30} if device == "cuda" else \
        {"reps": 3 if quick else 10, "max_seconds": 5.0}
    rows = []
    stopped = None
    start = time.monotonic()
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("bench", total=None)
        for suite, dt in ((s, d) for s in suites for d in dtypes):
            if stopped:
                break
            for case in SUITES[suite](device, dt, quick):
                if max_seconds is not None and time.monotonic() - start > max_seconds:
                    stopped = (f"time budget of {max_seconds:g} s spent: stopped before "
                               f"{suite} {case.op} {dt} {case.shape}")
                    break
                bar.update(task, description=f"{suite} {case.op} {dt} {case.shape}")
                row = {"suite": suite, "op": case.op, "dtype": dt, "shape": case.shape}
                if case.extra:
                    row["extra"] = case.extra
                rows.append(row)
                if case.unsupported:
                    row.update(status="unsupported", reason=case.unsupported)
                    continue
                try:
                    got, want = case.outputs()
                except Exception as e:  # a kernel that refuses these inputs: report, go on
                    row.update(status="error", reason=f"{type(e).__name__}: {e}")
                    continue
                err = rel_error(got, want)
                row["rel_error"] = err
                if not err <= TOLERANCE[dt]:
                    row["status"] = "wrong"
                    continue
                row["status"] = "ok"
                if device == "cpu":  # alternately: load from other processes hits both
                    tp, tt = timing.time_pair(case.pydl_fn, case.torch_fn, **reps)
                else:
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
    res = {"kind": "ops", "device_type": device, "dtypes": dtypes, "quick": quick,
           "command": command or " ".join(sys.argv), "time": time.strftime("%Y-%m-%d %H:%M:%S"),
           "environment": timing.environment(device), "ceilings": ceilings, "rows": rows}
    if stopped:
        res["stopped"] = stopped
    return res


def write(results: dict, out: str) -> dict:
    """results.json, report.md and the charts in out. A folder that holds a run on the same
    device keeps it: the new rows replace those of the suites run again, the rest stay (so
    `pydl bench ops` and `pydl bench models` can share one folder)."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "results.json")
    run = {"kind": results["kind"], "command": results["command"], "time": results["time"],
           "commit": results["environment"]["commit"]}
    if results.get("stopped"):
        run["stopped"] = results["stopped"]
    merged = dict(results, runs=[run])
    if os.path.exists(path):
        with open(path) as f:
            old = json.load(f)
        if old.get("environment", {}).get("device") == results["environment"]["device"]:
            # A suite rerun in a dtype replaces that suite's rows in that dtype alone, so one
            # folder can gather a suite run a dtype at a time.
            again = {(r["suite"], r.get("dtype")) for r in results["rows"]}
            merged["rows"] = [r for r in old["rows"] if (r["suite"], r.get("dtype")) not in again] \
                + results["rows"]
            merged["ceilings"] = dict(old.get("ceilings") or {}, **(results.get("ceilings") or {}))
            merged["runs"] = (old.get("runs") or [{"kind": old["kind"], "command": old["command"],
                                                   "time": old["time"],
                                                   "commit": old["environment"]["commit"]}]) + [run]
            merged["kind"] = "+".join(sorted({r["kind"] for r in merged["runs"]}))
    with open(path, "w") as f:
        json.dump(merged, f, indent=1)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report.markdown(merged))
    report.charts(merged, out)
    return merged
