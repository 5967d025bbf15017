"""ResNet family: the torchvision layouts (shapes, parameter names and counts), the small
variant learns on tiny data and matches its PyTorch twin in eval mode and over the first
20 training steps, a checkpoint (BatchNorm buffers included) round-trips, and (slow) the
recipe reaches its bar."""
import numpy as np
import pytest
import torch

import pydl
import pydl.nn.functional as F
from pydl.data import load_digits
from pydl.models import BasicBlock, Bottleneck, ResNet, resnet18, resnet34, resnet50, resnet_small

import helpers  # noqa: F401  (one torch thread for the oracle)
from _twins import load_twin, one_blas_thread

_blas = pytest.fixture(autouse=True)(one_blas_thread)


def _count(m):
    return sum(int(np.prod(p.shape)) for p in m.parameters())


@pytest.mark.parametrize("make,count", [(resnet18, 11_689_512), (resnet34, 21_797_672),
                                        (resnet50, 25_557_032)])
def test_imagenet_layouts_match_torchvision_counts_and_names(make, count):
    pydl.manual_seed(0)
    m = make()
    assert _count(m) == count
    twin = load_twin("resnet")
    block = "bottleneck" if make is resnet50 else "basic"
    layers = {resnet18: [2, 2, 2, 2], resnet34: [3, 4, 6, 3], resnet50: [3, 4, 6, 3]}[make]
    ref = twin.TorchResNet(block, layers).state_dict()
    ours = m.state_dict()
    assert list(ours) == list(ref)
    assert all(tuple(ours[k].shape) == tuple(ref[k].shape) for k in ref)
    assert "layer2.0.downsample.1.running_var" in ours and "fc.weight" in ours


@pytest.mark.parametrize("make", [resnet18, resnet50])
def test_forward_shape_on_32x32(make):
    pydl.manual_seed(0)
    m = make()
    m.eval()
    with pydl.no_grad():
        assert tuple(m(pydl.randn(1, 3, 32, 32)).shape) == (1, 1000)
    m5 = make(num_classes=5, in_channels=1)
    m5.eval()
    with pydl.no_grad():
        assert tuple(m5(pydl.randn(2, 1, 32, 32)).shape) == (2, 5)


@pytest.mark.parametrize("block", ["basic", "bottleneck"])
def test_small_variant_agrees_with_twin_forward_and_gradients(block):
    pydl.manual_seed(0)
    twin_mod = load_twin("resnet")
    m = resnet_small(6, 2, layers=(2, 1), widths=(4, 8), block=block)
    twin = twin_mod.load_from(twin_mod.TorchResNet(block, (2, 1), 6, 2, (4, 8), small=True), m)
    x = np.random.default_rng(0).standard_normal((3, 2, 9, 7)).astype(np.float32)
    out = m(pydl.tensor(x))
    tout = twin(torch.from_numpy(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), rtol=1e-4, atol=1e-5)
    out.sum().backward()
    tout.sum().backward()
    for (name, p), (tname, tp) in zip(m.named_parameters(), twin.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad.numpy(), tp.grad.numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=name)
    # running statistics updated alike; eval mode then uses them
    ours = m.state_dict()
    for k, v in twin.state_dict().items():
        if "running" in k:
            np.testing.assert_allclose(ours[k].numpy(), v.numpy(), rtol=1e-4, atol=1e-6,
                                       err_msg=k)
    m.eval()
    twin.eval()
    np.testing.assert_allclose(m(pydl.tensor(x)).detach().numpy(), twin(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


def test_blocks_and_errors():
    pydl.manual_seed(0)
    b = BasicBlock(4, 4)
    assert b.downsample is None and tuple(b(pydl.randn(2, 4, 5, 5)).shape) == (2, 4, 5, 5)
    m = ResNet(Bottleneck, [1, 1], 3, 1, widths=(2, 4), small=True, zero_init_residual=True)
    assert float(np.abs(m.layer1[0].bn3.weight.detach().numpy()).max()) == 0.0
    assert tuple(m(pydl.randn(2, 1, 8, 8)).shape) == (2, 3)
    assert tuple(m.state_dict()["bn1.num_batches_tracked"].shape) == ()
    with pytest.raises(ValueError, match="ResNet"):
        ResNet("dense", [1], widths=(4,))
    with pytest.raises(ValueError, match="ResNet"):
        ResNet("basic", [1, 1], widths=(4,))


def test_small_resnet_learns_tiny_digits():
    pydl.manual_seed(0)
    x, y, _, _ = load_digits(flatten=False)
    x, y = x[:64], y[:64]
    m = resnet_small(widths=(8, 16, 16))
    opt = pydl.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = F.cross_entropy(m(pydl.tensor(x)), pydl.tensor(y))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_checkpoint_round_trip_keeps_batchnorm_statistics(tmp_path):
    from pydl.serialization import load_checkpoint, save_checkpoint

    pydl.manual_seed(0)
    m = resnet_small(widths=(4, 8, 8))
    with pydl.no_grad():
        m(pydl.randn(8, 1, 8, 8))  # training mode: running statistics move
    m.eval()
    x = pydl.randn(3, 1, 8, 8)
    save_checkpoint(str(tmp_path / "r.safetensors"), model=m, step=1)
    pydl.manual_seed(1)
    m2 = resnet_small(widths=(4, 8, 8))
    m2.eval()
    load_checkpoint(str(tmp_path / "r.safetensors"), m2)
    with pydl.no_grad():
        np.testing.assert_array_equal(m2(x).numpy(), m(x).numpy())
    np.testing.assert_array_equal(m2.bn1.running_mean.numpy(), m.bn1.running_mean.numpy())


def test_recipe_resume_equals_uninterrupted(tmp_path):
    from pydl.recipes import resnet

    kw = dict(epochs=2, progress=False, widths=[4, 8, 8], batch_size=256)
    whole = resnet.run(out=str(tmp_path / "w"), **kw)
    resnet.run(out=str(tmp_path / "p"), stop_after=1, **kw)
    resumed = resnet.run(out=str(tmp_path / "p"), resume=True, **kw)
    # equal up to rounding: threaded reductions may sum in a different order run to run
    np.testing.assert_allclose([h["train_loss"] for h in resumed["history"]],
                               [h["train_loss"] for h in whole["history"]], rtol=1e-5)
    assert len(resumed["history"]) == 2
    assert abs(resumed["test_accuracy"] - whole["test_accuracy"]) <= 1 / 359


def test_twin_agrees_for_20_steps():
    pairs = load_twin("resnet").compare(steps=20, batch_size=32)
    ours, theirs = np.array(pairs).T
    assert len(ours) == 20 and ours[-5:].mean() < ours[:5].mean()
    assert float((np.abs(ours - theirs) / np.abs(theirs)).max()) < 1e-3


@pytest.mark.slow
def test_recipe_reaches_its_bar(tmp_path):
    import json

    from pydl.recipes import resnet

    m = resnet.run(out=str(tmp_path), progress=False)
    assert m["test_accuracy"] >= resnet.BAR[1], m
    assert json.loads((tmp_path / "metrics.json").read_text())["family"] == "resnet"
