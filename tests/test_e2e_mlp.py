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


def test_mlp_recipe_resume_equals_uninterrupted(tmp_path):
    """A run stopped after one epoch and resumed from its checkpoint gives the same losses,
    step for step, as a run that was never stopped (dropout masks and schedule included)."""
    from pydl.recipes import mlp

    kw = dict(epochs=3, seed=4, progress=False, batch_size=256)
    whole = mlp.run(out=str(tmp_path / "whole"), **kw)
    part = mlp.run(out=str(tmp_path / "part"), stop_after=1, **kw)
    assert part["epochs"] == 1
    pydl.manual_seed(123)  # a resumed process starts from any RNG state
    resumed = mlp.run(out=str(tmp_path / "part"), resume=True, **kw)
    assert [h["train_loss"] for h in resumed["history"]] == [h["train_loss"] for h in whole["history"]]
    assert resumed["test_accuracy"] == whole["test_accuracy"]
    a = pydl.load(tmp_path / "whole" / "checkpoint.safetensors")
    b = pydl.load(tmp_path / "part" / "checkpoint.safetensors")
    for k in a:
        assert np.array_equal(a[k].numpy(), b[k].numpy()), k


def test_mlp_recipe_refuses_a_checkpoint_of_another_configuration(tmp_path):
    from pydl.recipes import mlp
    from pydl.serialization import CheckpointError

    mlp.run(epochs=1, out=str(tmp_path), progress=False, batch_size=512)
    with pytest.raises(CheckpointError, match="configuration"):
        mlp.run(epochs=2, out=str(tmp_path), progress=False, batch_size=512, resume=True)


@pytest.mark.slow
def test_mlp_recipe_reaches_97_percent_on_digits():
    from pydl.recipes import mlp

    metrics = mlp.run(seed=0, device="cpu", out=None, progress=False)
    assert metrics["test_accuracy"] >= 0.97, metrics["history"][-3:]
