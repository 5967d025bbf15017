"""`pydl train gnn`: a two-layer GCN node classifier on Zachary's karate club (one labelled
node per faction) and on a 2,200-node stochastic block model; full-batch Adam."""
from __future__ import annotations

import numpy as np

from ._common import JointOptimizer, Run

# The bar holds on both graphs: min_accuracy is the lower of the two.
BAR = ("min_accuracy", 0.90, True)
DEFAULTS = {"epochs": 200, "lr": 0.01, "weight_decay": 5e-4, "hidden": [16], "dropout": 0.5}
QUICK = {"epochs": 5}


def _datasets(seed):
    from pydl.data.graphs import karate_club, stochastic_block_model

    return {"karate": karate_club(), "sbm": stochastic_block_model(seed=seed)}


def _accuracy(model, x, graph, y, mask) -> float:
    import pydl

    model.eval()
    with pydl.no_grad():
        pred = model(x, graph).argmax(dim=1).numpy()
    model.train()
    return float((pred[mask] == y[mask]).mean())


def run(epochs: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
        progress: bool = True, resume: bool = False, stop_after: int | None = None,
        data: str | None = None) -> dict:
    """Train both graphs' models and report each one's held-out node accuracy. data: an
    .npz graph of your own (see pydl.data.files) trained instead of the two bundled ones."""
    import pydl
    import pydl.nn.functional as F
    from pydl.models.gcn import GCN, Graph

    cfg = dict(DEFAULTS, epochs=epochs or DEFAULTS["epochs"], seed=seed)
    pydl.manual_seed(seed)
    if data is None:
        data = _datasets(seed)
    else:
        from pydl.data.files import load_graph

        cfg["data"] = data
        data = {"own": load_graph(data, seed=seed)}
    graphs, models, opts, tensors = {}, {}, {}, {}
    for name, d in data.items():
        n = len(d["y"])
        graphs[name] = Graph(d["edge_index"], n, device=device)
        models[name] = GCN(d["x"].shape[1], tuple(cfg["hidden"]), d["num_classes"],
                           dropout=cfg["dropout"]).to(device)
        opts[name] = pydl.optim.Adam(models[name].parameters(), lr=cfg["lr"],
                                     weight_decay=cfg["weight_decay"])
        train_idx = np.flatnonzero(d["train_mask"])
        tensors[name] = (pydl.tensor(d["x"], device=device), pydl.tensor(train_idx, device=device),
                         pydl.tensor(d["y"][train_idx], device=device))
    # One module holds both models so that a single checkpoint covers the run.
    both = pydl.nn.ModuleDict(models)
    opt = JointOptimizer(opts)
    run_ = Run("gnn", out, progress, total=cfg["epochs"])
    start = run_.resume(both, None, None, cfg) if resume else 0
    if start:
        opt.load(run_.recipe_state.get("opt"))
    end = cfg["epochs"] if stop_after is None else min(cfg["epochs"], stop_after)
    with run_:
        for epoch in range(start, end):
            total = 0.0
            for name in data:
                x, idx, y = tensors[name]
                logits = models[name](x, graphs[name])
                loss = F.cross_entropy(logits[idx], y)
                opts[name].zero_grad()
                loss.backward()
                opts[name].step()
                total += loss.item()
            run_.log_loss(total / len(data))
            metrics = {}
            if (epoch + 1) % 10 == 0 or epoch + 1 == end:
                for name, d in data.items():
                    metrics[f"{name}_accuracy"] = _accuracy(models[name], tensors[name][0], graphs[name],
                                                            d["y"], d["test_mask"])
            run_.end_epoch(epoch + 1, model=both, config=cfg, extra={"opt": opt.state()},
                           train_loss=total / len(data), **metrics)
    acc = {f"{name}_accuracy": _accuracy(models[name], tensors[name][0], graphs[name], d["y"],
                                         d["test_mask"]) for name, d in data.items()}
    return run_.finish({"device": device, "epochs": end, **acc, "min_accuracy": min(acc.values()),
                        "config": cfg})

