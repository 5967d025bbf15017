"""The `pydl` command: `pydl info`, `pydl train <family>`, `pydl zoo`."""
from __future__ import annotations

import argparse
import sys
import time

# The registry: family -> recipe module. A recipe module has `run(epochs=None, seed=0,
# device="cpu", out=..., progress=True, resume=False) -> metrics` and `BAR = (metric,
# threshold, higher_is_better)`, or a tuple of such bars when all of them must hold.
RECIPES = {
    "mlp": "pydl.recipes.mlp",
    "gnn": "pydl.recipes.gnn",
    "dqn": "pydl.recipes.dqn",
    "lstm": "pydl.recipes.lstm",
    "word2vec": "pydl.recipes.word2vec",
    "transformer": "pydl.recipes.transformer",
    "cnn": "pydl.recipes.cnn",
    "resnet": "pydl.recipes.resnet",
    "gan": "pydl.recipes.gan",
    "diffusion": "pydl.recipes.diffusion",
}


def _recipe(family: str):
    import importlib

    return importlib.import_module(RECIPES[family])


def bars(bar) -> list:
    """A recipe's BAR as a list of (metric, threshold, higher_is_better)."""
    return [bar] if isinstance(bar[0], str) else list(bar)


def passes(bar, value) -> bool:
    """Whether `value` clears `bar`. For one bar, value is the metric's value or the
    metrics dict; for a tuple of bars it is the metrics dict, and every bar must hold.
    A metric the run did not report (a recipe on the user's own data) does not pass."""
    if isinstance(bar[0], str) and not isinstance(value, dict):
        _, threshold, higher = bar
        return value >= threshold if higher else value <= threshold
    return all(b[0] in value and passes(b, value[b[0]]) for b in bars(bar))


def _positive_int(text: str) -> int:
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid int value: {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {v}")
    return v


def _train(args):
    from rich.console import Console

    recipe = _recipe(args.family)
    out = args.out if args.out is not None else f"runs/{args.family}"
    own = {}
    if args.data is not None:
        if args.family == "dqn":
            raise SystemExit("pydl train dqn: takes --env ID (a gymnasium environment), not --data")
        own["text" if args.family in ("lstm", "word2vec") else "data"] = args.data
    if args.env is not None:
        if args.family != "dqn":
            raise SystemExit(f"pydl train {args.family}: --env is for dqn; use --data FILE")
        own["env"] = args.env
    try:
        m = recipe.run(epochs=args.epochs, seed=args.seed, device=args.device, out=out or None,
                       progress=True, resume=args.resume, **own)
    except (ValueError, FileNotFoundError) as e:
        raise SystemExit(f"pydl train {args.family}: {e}") from None
    results = []
    for metric, threshold, higher in bars(recipe.BAR):
        if metric not in m:
            results.append(f"{metric} not measured on this data")
            continue
        verdict = ("[green]pass[/green]" if passes((metric, threshold, higher), m[metric])
                   else "[red]below the bar[/red]")
        results.append(f"{metric} {m[metric]:.4f} ({verdict}, bar {threshold})")
    Console().print(f"[bold]{args.family}[/bold] on {args.device}: {'; '.join(results)} "
                    f"in {m['seconds']:.1f} s"
                    + (f"; metrics, loss curve and checkpoint in {out}/" if out else ""))
    return 0


def zoo(families=None, device="cpu", epochs=None, quick=False, seed=0, out=None, console=None):
    """Run the registered recipes; returns one row per family: (family, metric, value,
    threshold, higher_is_better, passed, seconds). For a family with several bars, metric,
    value, threshold and higher_is_better are tuples (one entry per bar) and passed says
    whether all of them hold."""
    import os

    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    rows = []
    for family in families or list(RECIPES):
        if family not in RECIPES:
            raise SystemExit(f"pydl zoo: unknown family {family!r}; known: {', '.join(RECIPES)}")
        recipe = _recipe(family)
        kwargs = dict(getattr(recipe, "QUICK", {})) if quick else {}
        if epochs is not None:
            kwargs["epochs"] = epochs
        start = time.perf_counter()
        m = recipe.run(seed=seed, device=device, out=os.path.join(out, family) if out else None,
                       progress=console.is_terminal, **kwargs)
        secs = time.perf_counter() - start
        checks = [(metric, float(m.get(metric, float("nan"))), threshold, higher)
                  for metric, threshold, higher in bars(recipe.BAR)]
        ok = passes(recipe.BAR, m)
        if len(checks) == 1:
            rows.append((family, *checks[0], ok, secs))
        else:
            rows.append((family, *(tuple(c[i] for c in checks) for i in range(4)), ok, secs))
    table = Table(title=f"pydl zoo on {device}" + (" (quick settings: bars not expected)" if quick else ""))
    for col in ("family", "metric", "value", "bar", "pass", "time (s)"):
        table.add_column(col, justify="right" if col in ("value", "bar", "time (s)") else "left")
    for family, metric, value, threshold, higher, ok, secs in rows:
        several = not isinstance(metric, str)
        checks = list(zip(metric, value, threshold, higher)) if several else [(metric, value, threshold, higher)]
        # one line per bar; the family's name and time on its first line
        for i, (name, v, thr, hi) in enumerate(checks):
            table.add_row(family if i == 0 else "", name, f"{v:.4f}", ("≥ " if hi else "≤ ") + f"{thr:g}",
                          "[green]pass[/green]" if passes((name, thr, hi), v) else "[red]fail[/red]",
                          f"{secs:.1f}" if i == 0 else "")
    console.print(table)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pydl", description="pydl: deep learning on our own kernels")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, compiled CUDA code, visible GPU, library versions")
    tr = sub.add_parser("train", help="train one model family on its bundled data")
    tr.add_argument("family", choices=sorted(RECIPES))
    tr.add_argument("--epochs", type=_positive_int, default=None, help="default: the recipe's")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    tr.add_argument("--out", default=None,
                    help="folder for metrics.json, loss.png and the checkpoint (default runs/<family>; "
                         "'' for none)")
    tr.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    tr.add_argument("--data", default=None, metavar="FILE",
                    help="your own data: images .npz (mlp, cnn, resnet, gan, diffusion), graph "
                         ".npz (gnn), source<TAB>target lines (transformer), text (lstm, "
                         "word2vec); formats in pydl.data.files")
    tr.add_argument("--env", default=None, metavar="ID",
                    help="dqn: a gymnasium environment with Discrete actions (default CartPole-v1)")
    zo = sub.add_parser("zoo", help="run every recipe and check it against its quality bar")
    zo.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    zo.add_argument("--families", default=None, help="comma-separated subset, e.g. mlp,gnn")
    zo.add_argument("--epochs", type=_positive_int, default=None)
    zo.add_argument("--seed", type=int, default=0)
    zo.add_argument("--out", default=None, help="folder for each family's run (default: none)")
    zo.add_argument("--quick", action="store_true", help="tiny settings: a smoke test, not the bars")
    from .bench import cli as bench_cli

    bench_cli.add_parser(sub)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command == "bench":
        return bench_cli.run(args)
    if args.command == "info":
        from .info import main as info_main

        info_main()
        return 0
    from .errors import DeviceError

    try:
        if args.device == "cuda":  # fail before loading data when no GPU is usable
            from .device import as_device

            as_device("cuda")
        if args.command == "zoo":
            fams = [f.strip() for f in args.families.split(",")] if args.families else None
            rows = zoo(fams, device=args.device, epochs=args.epochs, quick=args.quick, seed=args.seed,
                       out=args.out)
            return 0 if args.quick or all(r[5] for r in rows) else 1
        return _train(args)
    except (DeviceError, OSError) as e:  # the user's setup, not a bug: a message, no traceback
        raise SystemExit(f"pydl {args.command}: {e}") from None


if __name__ == "__main__":
    sys.exit(main())
