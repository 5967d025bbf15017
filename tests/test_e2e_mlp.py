"""End to end: the MLP against its PyTorch twin, step by step, and on digits."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.data import load_digits
from pydl.models import MLP

torch = pytest.importorskip("torch")


def _twin(model: MLP):
    """A torch MLP with the same architecture and the same initial weights."""
    layers = []
    for m in model.net:
        if isinstance(m, pydl.nn.Linear):
            lin = torch.nn.Linear(m.in_features, m.out_features)
            with torch.no_grad():
                lin.weight.copy_(torch.from_numpy(m.weight.detach().numpy()))
                lin.bias.copy_(torch.from_numpy(m.bias.detach().numpy()))
            layers.append(lin)
        else:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_mlp_matches_torch_twin_for_20_steps(opt_name, device):
    pydl.manual_seed(0)
    x_train, y_train, _, _ = load_digits()
    model = MLP(64, (128, 64), 10).to(device)
    twin = _twin(model)
    if opt_name == "sgd":
        opt = pydl.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        topt = torch.optim.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = pydl.optim.Adam(model.parameters(), lr=1e-3)
        topt = torch.optim.Adam(twin.parameters(), lr=1e-3)
    rng = np.random.default_rng(1)
    for step in range(20):
        idx = rng.choice(len(x_train), 64, replace=False)
        xb, yb = x_train[idx], y_train[idx]
        loss = F.cross_entropy(model(pydl.tensor(xb, device=device)), pydl.tensor(yb, device=device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(xb)), torch.from_numpy(yb))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        rel = abs(loss.item() - tloss.item()) / abs(tloss.item())
        assert rel < 1e-4, f"step {step}: pydl {loss.item()} vs torch {tloss.item()}"


def test_mlp_reaches_95_percent_on_digits():
    from pydl.recipes import mlp

    metrics = mlp.run(epochs=20, seed=0, device="cpu", out=None, progress=False)
    assert metrics["test_accuracy"] >= 0.95, metrics["history"][-3:]
