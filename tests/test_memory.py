"""Memory stays flat while training: the autograd graph is freed after backward without
the garbage collector, and 2,000 training steps of each of the ten families at tiny
sizes grow the process (CPU: resident set) or CuPy's pool (GPU: bytes in live arrays) by
no more than a small bound after a warm-up."""
from __future__ import annotations

import gc
import os
import weakref

import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl import models
from pydl.autograd.function import Context
from pydl.models.dqn import ReplayBuffer, dqn_loss
from pydl.models.gan import discriminator_loss, generator_loss
from pydl.models.gcn import Graph

STEPS, WARMUP = 2000, 200
RSS_GROWTH_BOUND = 20 * 2**20    # bytes, over the steps after the warm-up
POOL_GROWTH_BOUND = 2**20        # bytes in live CuPy arrays, likewise
OBJECTS_GROWTH_BOUND = 100       # objects the garbage collector tracks, likewise (one a step
                                 # kept alive would be 1,800)


def _trainer(modules, loss_fn):
    """One training step (Adam) of the modules' parameters on loss_fn()."""
    opt = pydl.optim.Adam([p for m in modules for p in m.parameters()], lr=1e-3)

    def step():
        loss = loss_fn()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def _classifier(net, x, y):
    return _trainer([net], lambda: F.cross_entropy(net(x), y))


def _mlp(dev, rng):
    return _classifier(models.MLP(64, (32,), 10).to(dev),
                       pydl.tensor(rng.standard_normal((16, 64)), dtype=pydl.float32, device=dev),
                       pydl.tensor(rng.integers(0, 10, 16), device=dev))


def _images(dev, rng, n):
    x = pydl.tensor(rng.standard_normal((n, 1, 8, 8)), dtype=pydl.float32, device=dev)
    return x, pydl.tensor(rng.integers(0, 10, n), device=dev)


def _cnn(dev, rng):
    return _classifier(models.LeNet(1, 10, 8, channels=(4, 8), hidden=(16,)).to(dev),
                       *_images(dev, rng, 8))


def _resnet(dev, rng):
    return _classifier(models.resnet_small(10, 1, layers=(1, 1), widths=(4, 8)).to(dev),
                       *_images(dev, rng, 4))


def _lstm(dev, rng):
    lm = models.CharLM(12, embed_dim=8, hidden_size=16).to(dev)
    tokens = pydl.tensor(rng.integers(0, 12, (4, 9)), device=dev)
    inputs, targets = tokens[:, :-1], tokens[:, 1:].reshape(-1)
    return _trainer([lm], lambda: F.cross_entropy(lm(inputs)[0].reshape(-1, 12), targets))


def _word2vec(dev, rng):
    w2v = models.Word2Vec([f"w{i}" for i in range(20)], rng.integers(1, 50, 20), dim=8).to(dev)
    centres, contexts = rng.integers(0, 20, 32), rng.integers(0, 20, 32)
    return _trainer([w2v], lambda: w2v(centres, contexts, w2v.sample_negatives((32, 5), rng)))


def _transformer(dev, rng):
    net = models.Seq2SeqTransformer(12, d_model=16, nhead=2, num_encoder_layers=1,
                                    num_decoder_layers=1, dim_feedforward=32, max_len=16).to(dev)
    src = pydl.tensor(rng.integers(3, 12, (4, 6)), device=dev)
    tgt = pydl.tensor(np.concatenate([np.ones((4, 1), np.int64), rng.integers(3, 12, (4, 6))], 1),
                      device=dev)
    return _trainer([net], lambda: F.cross_entropy(net(src, tgt[:, :-1]).reshape(-1, 12),
                                                   tgt[:, 1:].reshape(-1)))


def _gan(dev, rng):
    gan = models.GAN("mlp", latent=8, width=16).to(dev)
    real = pydl.tensor(rng.standard_normal((8, 64)), dtype=pydl.float32, device=dev)
    fake = {}

    def d_loss():
        fake["x"] = gan.generator(pydl.randn(8, 8, device=dev))
        return discriminator_loss(gan.discriminator, real, fake["x"])

    d_step = _trainer([gan.discriminator], d_loss)
    g_step = _trainer([gan.generator], lambda: generator_loss(gan.discriminator, fake.pop("x")))

    def step():
        d_step()
        g_step()

    return step


def _diffusion(dev, rng):
    ddpm = models.DDPM(shape=(1, 8, 8), channels=4, steps=20).to(dev)
    x0 = pydl.tensor(rng.standard_normal((4, 1, 8, 8)), dtype=pydl.float32, device=dev)
    return _trainer([ddpm], lambda: ddpm.loss(x0, rng=rng))


def _gnn(dev, rng):
    n = 20
    edges = rng.integers(0, n, (2, 60))
    graph = Graph(edges, n, device=dev)
    gcn = models.GCN(8, (8,), 2).to(dev)
    x = pydl.tensor(rng.standard_normal((n, 8)), dtype=pydl.float32, device=dev)
    y = pydl.tensor(rng.integers(0, 2, n), device=dev)
    return _trainer([gcn], lambda: F.cross_entropy(gcn(x, graph), y))


def _dqn(dev, rng):
    q, target = models.QNetwork(4, 2, (16,)).to(dev), models.QNetwork(4, 2, (16,)).to(dev)
    buf = ReplayBuffer(256, 4)
    for _ in range(256):
        buf.add(rng.standard_normal(4), rng.integers(0, 2), 1.0, rng.standard_normal(4), False)
    train = _trainer([q], lambda: dqn_loss(q, target, buf.sample(16, rng), 0.99, device=dev))
    count = [0]

    def step():
        train()
        count[0] += 1
        if count[0] % 100 == 0:
            target.load_state_dict(q.state_dict())

    return step


FAMILIES = {"mlp": _mlp, "cnn": _cnn, "resnet": _resnet, "lstm": _lstm, "word2vec": _word2vec,
            "transformer": _transformer, "gan": _gan, "diffusion": _diffusion, "gnn": _gnn,
            "dqn": _dqn}


def _growth(family, device, measure):
    """How much measure() and the count of tracked objects grow from the end of WARMUP
    steps of the family to the end of STEPS (collected first)."""
    pydl.manual_seed(0)
    step = FAMILIES[family](device, np.random.default_rng(0))
    before = None
    for i in range(STEPS):
        step()
        if i + 1 == WARMUP:
            gc.collect()
            before = measure(), len(gc.get_objects())
    gc.collect()
    return measure() - before[0], len(gc.get_objects()) - before[1]


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


# ---- the graph is freed ----------------------------------------------------------------------------

def test_graph_is_freed_by_reference_counting():
    """Nodes hold their inputs, never their outputs: dropping the loss frees the whole graph
    at once, with the garbage collector off."""
    x = pydl.randn(8, 4, requires_grad=True)
    w = pydl.randn(4, 3, requires_grad=True)
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        h = F.layer_norm((x @ w).relu(), (3,))
        loss = F.cross_entropy(h, pydl.tensor([0, 1, 2, 0, 1, 2, 0, 1]))
        node, tensor = weakref.ref(h.grad_fn), weakref.ref(h)
        loss.backward()
        del h
        assert tensor() is not None  # the loss's node still holds its input
        del loss
        assert node() is None and tensor() is None
    finally:
        if gc_was_enabled:
            gc.enable()
    assert w.grad is not None and x.grad is not None


def test_backward_releases_saved_arrays_while_the_output_lives():
    x = pydl.randn(5, 6, requires_grad=True)
    loss = (x.exp() @ pydl.randn(6, 2)).softmax(-1).sum()
    nodes, stack = [], [loss.grad_fn]
    while stack:
        node = stack.pop()
        nodes.append(node)
        stack += [t.grad_fn for t in node.inputs if t is not None and t.grad_fn is not None]
    assert len(nodes) >= 3
    loss.backward()
    for node in nodes:
        assert node.saved_tensors is None and not node.__dict__, node.fn.__name__


def test_context_supports_weak_references():
    ref = weakref.ref(Context())
    assert ref() is None


# ---- 2,000 steps --------------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("family", list(FAMILIES))
def test_rss_is_flat_over_training(family):
    grew, objects = _growth(family, "cpu", _rss)
    assert grew < RSS_GROWTH_BOUND, f"{family}: resident set grew {grew / 2**20:.1f} MiB"
    assert objects < OBJECTS_GROWTH_BOUND, f"{family}: {objects} more live objects"


@pytest.mark.cuda
@pytest.mark.skipif(not pydl.cuda.is_available(), reason="no usable GPU")
@pytest.mark.parametrize("family", list(FAMILIES))
def test_cupy_pool_is_flat_over_training(family):
    import cupy

    pool = cupy.get_default_memory_pool()

    def used():
        cupy.cuda.get_current_stream().synchronize()
        return pool.used_bytes()

    grew, objects = _growth(family, "cuda", used)
    assert grew <= POOL_GROWTH_BOUND, f"{family}: CuPy arrays grew by {grew} bytes"
    assert objects < OBJECTS_GROWTH_BOUND, f"{family}: {objects} more live objects"
