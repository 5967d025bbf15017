"""PyTorch twin of the GCN recipe on the karate club and the SBM: same layers and initial
weights, aggregation by index_add_ over the same normalised edge list, full-batch Adam
with weight decay; dropout off. `python benchmarks/twins/gcn.py` prints the losses."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(1, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from _load import linear_from, rel  # noqa: E402


class TorchGCN(torch.nn.Module):
    def __init__(self, pydl_gcn, src, dst, weight, n):
        super().__init__()
        self.lins = torch.nn.ModuleList([linear_from(c.linear) for c in pydl_gcn.convs])
        self.biases = torch.nn.ParameterList([torch.nn.Parameter(torch.from_numpy(c.bias.detach().numpy().copy()))
                                              for c in pydl_gcn.convs])
        self.src, self.dst = torch.from_numpy(src), torch.from_numpy(dst)
        self.w, self.n = torch.from_numpy(weight.astype(np.float32)), n

    def forward(self, x):
        for i, (lin, b) in enumerate(zip(self.lins, self.biases)):
            h = lin(x)
            x = torch.zeros(self.n, h.shape[1], device=h.device).index_add_(0, self.dst, h[self.src] * self.w[:, None]) + b
            if i < len(self.lins) - 1:
                x = torch.relu(x)
        return x


def compare(steps: int = 20, seed: int = 0, graph: str = "karate"):
    import pydl
    import pydl.nn.functional as F
    from pydl.data.graphs import karate_club, stochastic_block_model
    from pydl.models.gcn import GCN, Graph, normalized_adjacency
    from pydl.recipes.gnn import DEFAULTS as cfg

    pydl.manual_seed(seed)
    d = karate_club() if graph == "karate" else stochastic_block_model(seed=seed)
    n = len(d["y"])
    model = GCN(d["x"].shape[1], tuple(cfg["hidden"]), d["num_classes"], dropout=0.0)
    twin = TorchGCN(model, *normalized_adjacency(d["edge_index"], n), n)
    g = Graph(d["edge_index"], n)
    opt = pydl.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    topt = torch.optim.Adam(twin.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    idx = np.flatnonzero(d["train_mask"])
    x, tx = pydl.tensor(d["x"]), torch.from_numpy(d["x"])
    y, ty = pydl.tensor(d["y"][idx]), torch.from_numpy(d["y"][idx])
    out = []
    for _ in range(steps):
        loss = F.cross_entropy(model(x, g)[pydl.tensor(idx)], y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(twin(tx)[torch.from_numpy(idx)], ty)
        topt.zero_grad()
        tloss.backward()
        topt.step()
        out.append((loss.item(), tloss.item()))
    return out


if __name__ == "__main__":
    for name in ("karate", "sbm"):
        for i, (a, b) in enumerate(compare(20, graph=name)):
            print(f"{name} step {i:3d}  pydl {a:.6f}  torch {b:.6f}  rel {rel(a, b):.2e}")
