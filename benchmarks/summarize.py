"""Print a short table of a GPU suite folder: per benchmark, the pydl/torch
time ratios (under 1 means pydl is faster) and the achieved rates."""
from __future__ import annotations

import json
import os
import sys


def _load(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, json.JSONDecodeError):
        return None


def main(folder):
    lines = []
    gemm = _load(os.path.join(folder, "gemm.json"))
    if gemm:
        lines.append("| gemm case | pydl TFLOP/s | torch TFLOP/s | time ratio pydl/torch |")
        lines.append("|---|---|---|---|")
        for r in gemm.get("results", []):
            lines.append(f"| {r.get('name', r.get('case', '?'))} | {r.get('pydl_tflops', 0):.0f} | "
                         f"{r.get('torch_tflops', 0):.0f} | {r.get('ratio', float('nan')):.2f} |")
    rows = _load(os.path.join(folder, "rowops.json"))
    if rows:
        lines.append("")
        lines.append(f"copy bandwidth {rows['copy_bandwidth_gbs']:.0f} GB/s")
        lines.append("| op | dtype | width | pydl GB/s | % of copy | torch GB/s | time ratio |")
        lines.append("|---|---|---|---|---|---|---|")
        for r in rows["results"]:
            lines.append(f"| {r['op']} | {r['dtype']} | {r['width']} | {r['pydl_gbs']:.0f} | "
                         f"{r['pydl_frac_bw']:.0%} | {r['torch_gbs']:.0f} | {r['ratio']:.2f} |")
    print("\n".join(lines) if lines else "no benchmark results found")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
