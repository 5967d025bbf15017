"""The `pydl bench` subcommands."""
from __future__ import annotations


def add_parser(sub):
    bench = sub.add_parser("bench", help="benchmark pydl against PyTorch")
    bsub = bench.add_subparsers(dest="bench_command", required=True)
    ops = bsub.add_parser("ops", help="kernels against PyTorch's, checked then timed")
    ops.add_argument("--dtype", default=None, help="comma-separated, e.g. float16,bfloat16")
    ops.add_argument("--suites", default=None, help="comma-separated: gemm,rowops,attention,conv")
    ops.add_argument("--max-minutes", type=float, default=None,
                     help="start no case after this many minutes; the rows so far are written "
                          "and the report says where the run stopped")
    models = bsub.add_parser("models", help="model families' training steps against their PyTorch "
                                            "twins, checked then timed")
    models.add_argument("--families", default=None,
                        help="comma-separated, e.g. mlp,gnn (default: all ten)")
    models.add_argument("--twins", default=None,
                        help="folder of the PyTorch twins (default: benchmarks/twins of this checkout)")
    for p in (ops, models):
        p.add_argument("--device", default=None, choices=["cuda", "cpu"])
        p.add_argument("--quick", action="store_true", help="small sizes, fewer runs")
        p.add_argument("--out", default=None,
                       help="results folder (default benchmarks/results/<device>-<time>); a run on "
                            "the same device already there is kept beside the new rows")
    cmp_ = bsub.add_parser("compare", help="what changed between two results folders")
    cmp_.add_argument("a")
    cmp_.add_argument("b")


def run(args) -> int:
    import time

    from rich.console import Console

    from . import report, run_models, run_ops, write
    from .models import TwinsNotFound

    console = Console()
    if args.bench_command == "compare":
        console.print(report.compare(args.a, args.b))
        return 0
    import pydl

    device = args.device or ("cuda" if pydl.cuda.is_available() else "cpu")
    command = "pydl " + " ".join(args.argv)
    try:
        if args.bench_command == "models":
            results = run_models(device, families=args.families.split(",") if args.families else None,
                                 quick=args.quick, command=command, twins_dir=args.twins)
        else:
            results = run_ops(device, dtypes=args.dtype.split(",") if args.dtype else None,
                              quick=args.quick, suites=args.suites.split(",") if args.suites else None,
                              command=command,
                              max_seconds=None if args.max_minutes is None else args.max_minutes * 60)
    except (TwinsNotFound, ValueError) as e:
        console.print(f"[red]error:[/red] {e}")
        return 2
    out = args.out or f"benchmarks/results/{device}-{time.strftime('%Y%m%d-%H%M%S')}"
    write(results, out)
    console.print(report.table(results))
    if results.get("stopped"):
        console.print(f"[yellow]{results['stopped']}[/yellow]")
    console.print(f"results in {out}/ (results.json, report.md, ratio.png, roofline.png)")
    return 1 if any(r["status"] in ("wrong", "error") for r in results["rows"]) else 0
