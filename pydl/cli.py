"""The `pydl` command: `pydl info`, `pydl train <family>`."""
from __future__ import annotations

import argparse
import sys

RECIPES = {"mlp": "pydl.recipes.mlp"}
RECIPES["lstm"] = "pydl.recipes.lstm"
RECIPES["word2vec"] = "pydl.recipes.word2vec"


def _train(args):
    import importlib

    from rich.console import Console

    recipe = importlib.import_module(RECIPES[args.family])
    m = recipe.run(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
                   device=args.device, out=args.out)
    Console().print(f"[bold]{args.family}[/bold] on {m['device']}: test accuracy "
                    f"{m['test_accuracy']:.3f} after {m['epochs']} epochs in {m['seconds']:.1f} s"
                    + (f"; metrics in {args.out}/metrics.json" if args.out else ""))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="pydl", description="pydl: deep learning on our own kernels")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="version, compiled CUDA code, visible GPU, library versions")
    tr = sub.add_parser("train", help="train one model family on its bundled data")
    tr.add_argument("family", choices=sorted(RECIPES))
    tr.add_argument("--epochs", type=int, default=20)
    tr.add_argument("--batch-size", type=int, default=64)
    tr.add_argument("--lr", type=float, default=1e-3)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    tr.add_argument("--out", default="runs/mlp", help="folder for metrics.json ('' for none)")
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
    return _train(args)


if __name__ == "__main__":
    sys.exit(main())
