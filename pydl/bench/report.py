"""Reports of `pydl bench`: a terminal table, report.md, PNG charts, and the
comparison of two results folders."""
from __future__ import annotations

import json
import os


def _fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


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
                  _fmt(r.get("torch_ms")), _fmt(ratio, ".2f"),
                  f"{r['pydl_rate']:.3g} {r['unit']}" if ok else "-",
                  _fmt(100 * r["fraction_of_ceiling"], ".0f") if ok and r.get("fraction_of_ceiling") else "-",
                  "ok" if ok else f"WRONG (rel err {r['rel_error']:.2e})", style=style)
    return t


def markdown(results: dict) -> str:
    env = results["environment"]
    lines = [f"# pydl bench {results['kind']}: {env['device']}", "",
             f"- command: `{results['command']}`", f"- commit: `{env['commit']}`",
             f"- time: {results['time']}; pydl {env['pydl']}, PyTorch {env['torch']}, "
             f"Python {env['python']}, threads {env['threads']}"]
    for k in ("driver", "cuda_runtime", "cupy"):
        if k in env:
            lines.append(f"- {k}: {env[k]}")
    lines.append("- ceilings: " + ", ".join(f"{k} {v:.3g}" for k, v in results["ceilings"].items()))
    lines += ["", "Ratio is pydl's median time over PyTorch's (under 1.0: pydl is faster). Rows are "
              "checked against PyTorch's output before timing.", "",
              "| suite | op | dtype | shape | pydl ms | torch ms | ratio | pydl rate | % of ceiling | status |",
              "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        ok = r["status"] == "ok"
        lines.append(f"| {r['suite']} | {r['op']} | {r['dtype']} | {r['shape']} | {_fmt(r.get('pydl_ms'))} | "
                     f"{_fmt(r.get('torch_ms'))} | {_fmt(r.get('ratio'), '.2f')} | "
                     + (f"{r['pydl_rate']:.3g} {r['unit']}" if ok else "-") + " | "
                     + (_fmt(100 * r['fraction_of_ceiling'], '.0f') if ok and r.get('fraction_of_ceiling') else "-")
                     + f" | {'ok' if ok else 'wrong (rel err %.2e)' % r['rel_error']} |")
    ok = [r for r in results["rows"] if r["status"] == "ok"]
    if ok:
        faster = sum(r["ratio"] <= 1.0 for r in ok)
        lines += ["", f"{faster} of {len(ok)} timed rows at or under PyTorch's time; "
                  f"{len(results['rows']) - len(ok)} rows wrong."]
    return "\n".join(lines) + "\n"


def charts(results: dict, out: str):
    """ratio.png (pydl/torch per row) and roofline.png (fraction of the ceiling per row)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no charts written")
        return
    ok = [r for r in results["rows"] if r["status"] == "ok"]
    if not ok:
        return
    labels = [f"{r['op']} {r['dtype']} {r['shape']}" for r in ok]
    for name, key, ref, xlabel in (("ratio.png", "ratio", 1.0, "pydl time / PyTorch time"),
                                   ("roofline.png", "fraction_of_ceiling", 1.0,
                                    "fraction of the ceiling (copy bandwidth or PyTorch's matmul rate)")):
        vals = [r.get(key) or 0.0 for r in ok]
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
