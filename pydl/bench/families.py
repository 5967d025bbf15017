"""The ten model families of `pydl bench models`. Each builder returns a Pair: the pydl
model at its recipe's architecture (dropout off) and its PyTorch twin from
benchmarks/twins/ with the weights loaded from pydl's state dict, one batch already on the
device for both (synthetic inputs of the recipe's shapes; the GNN's real graphs), the
recipe's optimizer on each side, and the calls that are timed."""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass
class Pair:
    pydl_model: object
    torch_model: object
    pydl_loss: Callable  # () -> the loss on the batch (a scalar tensor)
    torch_loss: Callable
    pydl_opt: object = None
    torch_opt: object = None
    pydl_infer: Callable = None  # () -> the forward of inference (run under no_grad, in eval mode)
    torch_infer: Callable = None
    pydl_step: Callable = None  # a training step of its own (default: zero_grad, backward, step)
    torch_step: Callable = None
    samples: int = 0  # samples per step: the batch, or the nodes of a graph

    def steps(self):
        """(pydl step, torch step): forward, backward and the optimizer's step."""
        return (self.pydl_step or _step(self.pydl_opt, self.pydl_loss),
                self.torch_step or _step(self.torch_opt, self.torch_loss))


def _step(opt, loss_fn):
    def step():
        opt.zero_grad()
        loss = loss_fn()
        loss.backward()
        opt.step()
        return loss
    return step


def _rng(batch):
    return np.random.default_rng(batch)


def _both(device, *arrays):
    """Each NumPy array as (pydl tensor, torch tensor) on the device."""
    import torch

    import pydl

    return [(pydl.tensor(a, device=device), torch.from_numpy(a).to(device)) for a in arrays]


def _to(device, model, twin):
    model.to(device)
    twin.to(device)
    model.train()
    twin.train()
    return model, twin


def _classifier(device, model, twin, x, y, lr, weight_decay):
    """A model trained on cross-entropy with AdamW, as the image recipes are."""
    import torch

    import pydl
    import pydl.nn.functional as F

    (px, tx), (py, ty) = _both(device, x, y)
    return Pair(model, twin, lambda: F.cross_entropy(model(px), py),
                lambda: torch.nn.functional.cross_entropy(twin(tx), ty),
                pydl.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay),
                torch.optim.AdamW(twin.parameters(), lr=lr, weight_decay=weight_decay),
                lambda: model(px), lambda: twin(tx), samples=len(x))


def _images(batch, channels=1, side=8):
    rng = _rng(batch)
    return (rng.standard_normal((batch, channels, side, side)).astype(np.float32),
            rng.integers(0, 10, batch))


def mlp(device, batch, twins):
    from pydl.models import MLP
    from pydl.recipes.mlp import DEFAULTS as cfg

    model = MLP(64, tuple(cfg["hidden"]), 10)
    model, twin = _to(device, model, twins["_load"].mlp_from(model))
    x, y = _images(batch)
    return _classifier(device, model, twin, x.reshape(batch, 64), y, cfg["lr"], cfg["weight_decay"])


def cnn(device, batch, twins):
    from pydl.models import LeNet
    from pydl.recipes.cnn import DEFAULTS as cfg

    arch = {"channels": tuple(cfg["channels"]), "hidden": tuple(cfg["hidden"])}
    model = LeNet(1, 10, 8, **arch)
    twin = twins["cnn"].load_from(twins["cnn"].TorchLeNet(1, 10, 8, **arch), model)
    return _classifier(device, *_to(device, model, twin), *_images(batch), cfg["lr"], cfg["weight_decay"])


def resnet(device, batch, twins):
    from pydl.models import resnet_small
    from pydl.recipes.resnet import DEFAULTS as cfg

    layers, widths = tuple(cfg["layers"]), tuple(cfg["widths"])
    model = resnet_small(10, 1, layers=layers, widths=widths, block=cfg["block"])
    twin = twins["cnn"].load_from(twins["resnet"].TorchResNet(cfg["block"], layers, 10, 1, widths,
                                                              small=True), model)
    return _classifier(device, *_to(device, model, twin), *_images(batch), cfg["lr"], cfg["weight_decay"])


def lstm(device, batch, twins, vocab=96):
    import torch

    import pydl
    import pydl.nn.functional as F
    from pydl.models.lstm import CharLM
    from pydl.recipes.lstm import DEFAULTS as cfg

    model = CharLM(vocab, embed_dim=64, hidden_size=cfg["hidden_size"], forget_bias=1.0)
    twin = twins["lstm"].TorchCharLM(vocab, embed_dim=64, hidden_size=cfg["hidden_size"])
    twins["lstm"]._load(twin, model)
    model, twin = _to(device, model, twin)
    ids = _rng(batch).integers(0, vocab, (batch, cfg["seq_len"] + 1))
    (px, tx), (py, ty) = _both(device, ids[:, :-1], ids[:, 1:].reshape(-1))
    return Pair(model, twin, lambda: F.cross_entropy(model(px)[0].reshape(-1, vocab), py),
                lambda: torch.nn.functional.cross_entropy(twin(tx)[0].reshape(-1, vocab), ty),
                pydl.optim.Adam(model.parameters(), lr=cfg["lr"]),
                torch.optim.Adam(twin.parameters(), lr=cfg["lr"]),
                lambda: model(px), lambda: twin(tx), samples=batch)


def word2vec(device, batch, twins):
    import torch

    import pydl
    from pydl.models.word2vec import Word2Vec
    from pydl.recipes.word2vec import DEFAULTS as cfg
    from pydl.recipes.word2vec import load_corpus

    tok, sentences, _ = load_corpus(seed=0)
    model = Word2Vec(tok.itos, tok.counts, dim=cfg["dim"], mode="skipgram", window=cfg["window"],
                     negative=cfg["negative"])
    with pydl.no_grad():  # the output table starts at zero; perturb it so every term is live
        model.out_embed.weight.uniform_(-0.1, 0.1)
    twin = twins["word2vec"].TorchWord2Vec(len(tok), cfg["dim"], "skipgram")
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    model, twin = _to(device, model, twin)
    rng = _rng(batch)
    a, b = model.examples(sentences, rng)
    idx = rng.integers(0, len(b), batch)
    neg = model.sample_negatives((batch, cfg["negative"]), rng)
    (pa, ta), (pb, tb), (pn, tn) = _both(device, a[idx], b[idx], neg)
    return Pair(model, twin, lambda: model(pa, pb, pn), lambda: twin(ta, tb, tn),
                pydl.optim.Adam(model.parameters(), lr=cfg["lr"]),
                torch.optim.Adam(twin.parameters(), lr=cfg["lr"]), samples=batch)


def transformer(device, batch, twins):
    import torch

    import pydl
    import pydl.nn.functional as F
    from pydl.data.synthetic import PAD, seq2seq_digits
    from pydl.recipes import transformer as recipe

    cfg = recipe.DEFAULTS
    src, tgt, vocab = seq2seq_digits(batch, min_len=cfg["min_len"], max_len=cfg["max_len"],
                                     task=cfg["task"], seed=batch)
    model = recipe.build(cfg, len(vocab))
    model, twin = _to(device, model, twins["transformer"].twin_from(model))
    (ps, ts), (pt, tt), (py, ty) = _both(device, src, np.ascontiguousarray(tgt[:, :-1]),
                                         tgt[:, 1:].reshape(-1))
    V = len(vocab)
    return Pair(model, twin,
                lambda: F.cross_entropy(model(ps, pt).reshape(-1, V), py, ignore_index=PAD),
                lambda: torch.nn.functional.cross_entropy(twin(ts, tt).reshape(-1, V), ty,
                                                          ignore_index=PAD),
                pydl.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.98)),
                torch.optim.Adam(twin.parameters(), lr=cfg["lr"], betas=(0.9, 0.98)),
                lambda: model(ps, pt), lambda: twin(ts, tt), samples=batch)


def gan(device, batch, twins):
    """A step is the recipe's alternating update: the discriminator, then the generator on
    the same fakes. The loss compared is d_loss + g_loss before any update."""
    import torch

    import pydl
    from pydl.models.gan import GAN, discriminator_loss, generator_loss
    from pydl.recipes.gan import DEFAULTS as cfg

    latent, width, betas = cfg["latent"], cfg["width"], tuple(cfg["betas"])
    g = GAN("mlp", latent, width)
    g, twin = _to(device, g, twins["gan"].copy_state(g, twins["gan"].torch_pair("mlp", latent, width)))
    rng = _rng(batch)
    real = rng.uniform(-1, 1, (batch, 1, 8, 8)).astype(np.float32)
    z = rng.standard_normal((batch, latent)).astype(np.float32)
    (preal, treal), (pz, tz) = _both(device, real, z)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    opts = [pydl.optim.Adam(m.parameters(), lr=cfg["lr"], betas=betas) for m in (g.discriminator, g.generator)]
    topts = [torch.optim.Adam(m.parameters(), lr=cfg["lr"], betas=betas)
             for m in (twin.discriminator, twin.generator)]

    def torch_losses(fake):
        lr_, lf = twin.discriminator(treal), twin.discriminator(fake.detach())
        return bce(lr_, torch.ones_like(lr_)) + bce(lf, torch.zeros_like(lf))

    def torch_g_loss(fake):
        lf = twin.discriminator(fake)
        return bce(lf, torch.ones_like(lf))

    def pydl_step():
        fake = g.generator(pz)
        for opt, loss_fn in zip(opts, (lambda: discriminator_loss(g.discriminator, preal, fake),
                                       lambda: generator_loss(g.discriminator, fake))):
            _step(opt, loss_fn)()

    def torch_step():
        fake = twin.generator(tz)
        for opt, loss_fn in zip(topts, (lambda: torch_losses(fake), lambda: torch_g_loss(fake))):
            _step(opt, loss_fn)()

    def pydl_loss():
        fake = g.generator(pz)
        return discriminator_loss(g.discriminator, preal, fake) + generator_loss(g.discriminator, fake)

    def torch_loss():
        fake = twin.generator(tz)
        return torch_losses(fake) + torch_g_loss(fake)

    return Pair(g, twin, pydl_loss, torch_loss, pydl_infer=lambda: g.generator(pz),
                torch_infer=lambda: twin.generator(tz), pydl_step=pydl_step, torch_step=torch_step,
                samples=batch)


def diffusion(device, batch, twins):
    """The DDPM's noise-prediction loss at random steps t; inference is one denoiser call."""
    import torch

    import pydl
    from pydl.models.diffusion import DDPM
    from pydl.recipes.diffusion import DEFAULTS as cfg

    ddpm = DDPM((1, 8, 8), cfg["channels"], cfg["steps"], cfg["schedule"])
    ddpm, twin = _to(device, ddpm, twins["diffusion"].copy_state(ddpm, twins["diffusion"].Twin(cfg["channels"])))
    rng = _rng(batch)
    x = rng.uniform(-1, 1, (batch, 1, 8, 8)).astype(np.float32)
    t = rng.integers(0, cfg["steps"], batch)
    noise = rng.standard_normal(x.shape).astype(np.float32)
    ab = ddpm.schedule.alpha_bar
    a = np.sqrt(ab[t]).astype(np.float32)[:, None, None, None]
    b = np.sqrt(1 - ab[t]).astype(np.float32)[:, None, None, None]
    (px, tx), (pn, tn), (pxt, txt), (_, ta), (_, tb) = _both(device, x, noise, a * x + b * noise, a, b)
    tt = torch.from_numpy(t).to(device)
    return Pair(ddpm, twin, lambda: ddpm.loss(px, t=t, noise=pn),
                lambda: torch.nn.functional.mse_loss(twin.model(ta * tx + tb * tn, tt), tn),
                pydl.optim.Adam(ddpm.parameters(), lr=cfg["lr"]),
                torch.optim.Adam(twin.parameters(), lr=cfg["lr"]),
                lambda: ddpm.model(pxt, t), lambda: twin.model(txt, tt), samples=batch)


def gnn(device, graph, twins):
    """Full-batch GCN training on a whole graph: `graph` is "karate" (34 nodes) or an SBM's
    node count; samples are nodes."""
    import torch

    import pydl
    import pydl.nn.functional as F
    from pydl.data.graphs import karate_club, stochastic_block_model
    from pydl.models.gcn import GCN, Graph, normalized_adjacency
    from pydl.recipes.gnn import DEFAULTS as cfg

    if graph == 34:
        d = karate_club()
    else:  # four blocks, each node with about 11 neighbours in its block and 4 outside
        size = graph // 4
        d = stochastic_block_model(4, size, p_in=min(1.0, 11 / size), p_out=min(1.0, 1.33 / size))
    n = len(d["y"])
    model = GCN(d["x"].shape[1], tuple(cfg["hidden"]), d["num_classes"], dropout=0.0)
    twin = twins["gcn"].TorchGCN(model, *normalized_adjacency(d["edge_index"], n), n)
    model, twin = _to(device, model, twin)
    twin.src, twin.dst, twin.w = twin.src.to(device), twin.dst.to(device), twin.w.to(device)
    g = Graph(d["edge_index"], n, device)
    idx = np.flatnonzero(d["train_mask"])
    (px, tx), (pidx, tidx), (py, ty) = _both(device, d["x"], idx, d["y"][idx])
    return Pair(model, twin, lambda: F.cross_entropy(model(px, g)[pidx], py),
                lambda: torch.nn.functional.cross_entropy(twin(tx)[tidx], ty),
                pydl.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]),
                torch.optim.Adam(twin.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"]),
                lambda: model(px, g), lambda: twin(tx), samples=n)


def dqn(device, batch, twins):
    """The Double-DQN update on a replay batch (synthetic CartPole-shaped transitions)
    against a frozen target network."""
    import torch

    import pydl
    from pydl.models.dqn import QNetwork, dqn_loss
    from pydl.recipes.dqn import DEFAULTS as cfg

    q = QNetwork(4, 2, tuple(cfg["hidden"]))
    q, tq = _to(device, q, twins["_load"].mlp_from(q.mlp))
    target, ttarget = copy.deepcopy(q), copy.deepcopy(tq)
    rng = _rng(batch)
    obs, nxt = (rng.standard_normal((batch, 4)).astype(np.float32) for _ in range(2))
    act = rng.integers(0, 2, batch)
    reward = np.ones(batch, np.float32)
    term = (rng.random(batch) < 0.05).astype(np.float32)
    sample = (obs, act, reward, nxt, term)
    tb = [torch.from_numpy(a).to(device) for a in sample]
    gamma = cfg["gamma"]

    def torch_loss():
        o, a, r, no, te = tb
        with torch.no_grad():
            q_next = ttarget(no)
            best = tq(no).argmax(dim=1)
            y = r + gamma * (1.0 - te) * q_next.gather(1, best[:, None])[:, 0]
        return torch.nn.functional.huber_loss(tq(o).gather(1, a[:, None])[:, 0], y)

    po = pydl.tensor(obs, device=device)
    return Pair(q, tq, lambda: dqn_loss(q, target, sample, gamma, True, device), torch_loss,
                pydl.optim.Adam(q.parameters(), lr=cfg["lr"]), torch.optim.Adam(tq.parameters(), lr=cfg["lr"]),
                lambda: q(po), lambda: tq(tb[0]), samples=batch)


FAMILIES = {"mlp": mlp, "cnn": cnn, "resnet": resnet, "lstm": lstm, "word2vec": word2vec,
            "transformer": transformer, "gan": gan, "diffusion": diffusion, "gnn": gnn, "dqn": dqn}

# Batches (small, large) per family and device, and the one quick batch (CPU; a GPU's quick
# run takes the small one). The GNN's are node counts: the karate club, then an SBM.
BATCHES = {
    "mlp": {"cpu": (64, 1024), "cuda": (256, 16384), "quick": 32},
    "cnn": {"cpu": (64, 512), "cuda": (256, 8192), "quick": 16},
    "resnet": {"cpu": (64, 256), "cuda": (256, 4096), "quick": 8},
    "lstm": {"cpu": (8, 32), "cuda": (32, 512), "quick": 2},
    "word2vec": {"cpu": (256, 4096), "cuda": (1024, 65536), "quick": 256},
    "transformer": {"cpu": (16, 64), "cuda": (64, 1024), "quick": 8},
    "gan": {"cpu": (64, 512), "cuda": (256, 8192), "quick": 32},
    "diffusion": {"cpu": (32, 128), "cuda": (128, 2048), "quick": 8},
    "gnn": {"cpu": (34, 2200), "cuda": (34, 10000), "quick": 34},
    "dqn": {"cpu": (128, 1024), "cuda": (1024, 32768), "quick": 64},
}
