"""Reports of `pydl bench`: a terminal table, report.md, PNG charts, and the
comparison of two results folders."""
from __future__ import annotations

import json
import os


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def status(r) -> str:
    """ok, wrong (with the error), unsupported or error (with the reason)."""
    if r["status"] == "wrong":
        return f"wrong (rel err {r['rel_error']:.2e})"
    if r["status"] in ("unsupported", "error"):
        return f"{r['status']}: {r.get('reason', '')}"
    return r["status"]


def notes(r) -> str:
    """The row's notes worth a column (which kernel PyTorch ran, which layers a shape is of)."""
    extra = r.get("extra") or {}
    return ", ".join(str(extra[k]) for k in ("torch_kernel", "layer_of") if k in extra)


def _rate_text(r) -> str:
    return f"{r['pydl_rate']:.3g} {r['unit']}" if r["status"] == "ok" else "-"


def _ceiling_text(r) -> str:
    return _fmt(100 * r["fraction_of_ceiling"], ".0f") if r["status"] == "ok" and r.get("fraction_of_ceiling") else "-"


def table(results: dict):
    from rich.table import Table

    t = Table(title=f"pydl vs PyTorch on {results['environment']['device']} "
                    "(ratio = pydl time / torch time; under 1 is faster)")
    for col in ("suite", "op", "dtype", "shape", "pydl ms", "torch ms", "ratio", "pydl rate",
                "% of ceiling", "status"):
        t.add_column(col, justify="right" if col not in ("suite", "op", "dtype", "shape") else "left")
    for r in results["rows"]:
        ok = r["status"] == "ok"
        ratio = r.get("ratio")
        style = "" if not ok else ("green" if ratio <= 1.0 else "red")
        t.add_row(r["suite"], r["op"], r["dtype"], r["shape"], _fmt(r.get("pydl_ms")),
                  _fmt(r.get("torch_ms")), _fmt(ratio, ".2f"), _rate_text(r), _ceiling_text(r),
                  status(r), style=style)
    return t


def markdown(results: dict) -> str:
    env = results["environment"]
    runs = results.get("runs") or [{"command": results["command"], "time": results["time"],
                                    "commit": env["commit"], "stopped": results.get("stopped")}]
    lines = [f"# pydl bench: {env['device']}", ""]
    lines += [f"- command: `{run['command']}` ({run['time']}, commit `{run['commit']}`)"
              + (f"; {run['stopped']}" if run.get("stopped") else "") for run in runs]
    lines.append(f"- pydl {env['pydl']}, PyTorch {env['torch']}, Python {env['python']}, "
                 f"threads {env['threads']}"
                 + (f", pydl CPU kernels {env['cpu_kernels']}" if env.get("cpu_kernels") else ""))
    for k in ("driver", "cuda_runtime", "cupy"):
        if k in env:
            lines.append(f"- {k}: {env[k]}")
    if results.get("ceilings"):
        lines.append("- ceilings: " + ", ".join(f"{k} {v:.3g}" for k, v in results["ceilings"].items()))
    lines += ["", "Ratio is pydl's median time over PyTorch's (under 1.0: pydl is faster). Every row "
              "is checked against PyTorch's output (for models, the loss on the same batch) before "
              "it is timed."]
    ops = [r for r in results["rows"] if r["suite"] != "models"]
    models = [r for r in results["rows"] if r["suite"] == "models"]
    if ops:
        lines += ["", "## Ops", "",
                  "| suite | op | dtype | shape | pydl ms | torch ms | ratio | pydl rate | % of ceiling | "
                  "status | notes |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in ops:
            lines.append(f"| {r['suite']} | {r['op']} | {r['dtype']} | {r['shape']} | "
                         f"{_fmt(r.get('pydl_ms'))} | {_fmt(r.get('torch_ms'))} | "
                         f"{_fmt(r.get('ratio'), '.2f')} | {_rate_text(r)} | {_ceiling_text(r)} | "
                         f"{status(r)} | {notes(r)} |")
        lines.append("")
        lines.append(_summary(ops))
    if models:
        lines += ["", "## Models", "",
                  "A training step is forward, backward and the optimizer's step on one batch; "
                  "inference is the forward under no_grad in eval mode.", "",
                  "| family | pass | batch | pydl ms | torch ms | ratio | pydl samples/s | "
                  "torch samples/s | loss rel diff | status |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in models:
            ok = r["status"] == "ok"
            lines.append(f"| {r['family']} | {r['pass']} | {r['batch']} | {_fmt(r.get('pydl_ms'))} | "
                         f"{_fmt(r.get('torch_ms'))} | {_fmt(r.get('ratio'), '.2f')} | "
                         f"{_fmt(r.get('pydl_rate') if ok else None, ',.0f')} | "
                         f"{_fmt(r.get('torch_rate') if ok else None, ',.0f')} | "
                         f"{_fmt(r.get('rel_error'), '.1e')} | {status(r)} |")
        lines.append("")
        lines.append(_summary(models))
    return "\n".join(lines) + "\n"


def _summary(rows) -> str:
    ok = [r for r in rows if r["status"] == "ok"]
    counts = {s: sum(r["status"] == s for r in rows) for s in ("wrong", "unsupported", "error")}
    faster = sum(r["ratio"] <= 1.0 for r in ok)
    return (f"{faster} of {len(ok)} timed rows at or under PyTorch's time; "
            + ", ".join(f"{n} {s}" for s, n in counts.items()) + ".")


def charts(results: dict, out: str):
    """ratio.png (pydl/torch per row) and roofline.png (fraction of the ceiling per row)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no charts written")
        return
    timed = [r for r in results["rows"] if r["status"] == "ok"]
    for name, key, ref, xlabel in (("ratio.png", "ratio", 1.0, "pydl time / PyTorch time"),
                                   ("roofline.png", "fraction_of_ceiling", 1.0,
                                    "fraction of the ceiling (copy bandwidth or PyTorch's matmul rate)")):
        ok = [r for r in timed if r.get(key) is not None]
        if not ok:
            continue
        labels = [f"{r['op']} {r['dtype']} {r['shape']}" for r in ok]
        vals = [r[key] for r in ok]
        fig, ax = plt.subplots(figsize=(8, 0.25 * len(ok) + 1.5))
        ax.barh(range(len(ok)), vals, color=["tab:green" if (key != "ratio" or v <= 1) else "tab:red"
                                             for v in vals])
        ax.axvline(ref, color="k", lw=0.8)
        ax.set_yticks(range(len(ok)), labels, fontsize=6)
        ax.invert_yaxis()
        ax.set_xlabel(xlabel)
        ax.set_title(f"{results['environment']['device']}")
        fig.tight_layout()
        fig.savefig(os.path.join(out, name), dpi=120)
        plt.close(fig)


def compare(a_dir: str, b_dir: str):
    """Rows of B against A: ratio before and after, and the change."""
    from rich.table import Table

    def load(d):
        with open(os.path.join(d, "results.json")) as f:
            return json.load(f)

    a, b = load(a_dir), load(b_dir)
    key = lambda r: (r["suite"], r["op"], r["dtype"], r["shape"])  # noqa: E731
    before = {key(r): r for r in a["rows"]}
    t = Table(title=f"{a_dir} -> {b_dir} (ratio = pydl/torch)")
    for col in ("op", "dtype", "shape", "ratio A", "ratio B", "pydl ms A", "pydl ms B", "change"):
        t.add_column(col)
    for r in b["rows"]:
        old = before.get(key(r))
        if old is None or old.get("ratio") is None or r.get("ratio") is None:
            continue
        change = r["pydl_ms"] / old["pydl_ms"] - 1
        t.add_row(r["op"], r["dtype"], r["shape"], f"{old['ratio']:.2f}", f"{r['ratio']:.2f}",
                  f"{old['pydl_ms']:.3f}", f"{r['pydl_ms']:.3f}", f"{100 * change:+.0f}%",
                  style="green" if change < -0.03 else ("red" if change > 0.03 else ""))
    return t
