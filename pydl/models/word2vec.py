"""Word2Vec family: skip-gram and CBOW with negative sampling.

Training data come from `Word2Vec.batches`: frequent words are subsampled
(kept with probability (sqrt(f/t) + 1) t/f for a word of frequency f), windows
shrink at random as in word2vec, and negatives are drawn from the unigram
distribution raised to 0.75. The loss is the logistic loss of the true pair
against the negatives, built from two Embeddings, a batched matmul and
binary_cross_entropy_with_logits."""
from __future__ import annotations

import numpy as np

from .. import nn
from .._ops import cat
from ..autograd.grad_mode import no_grad
from ..tensor import Tensor, tensor


class Word2Vec(nn.Module):
    """vocab: list of words (index = id); counts: their corpus frequencies.
    mode 'skipgram' predicts each context word from the centre word, 'cbow' the centre
    word from the mean of its context. The word vectors are `in_embed.weight`."""

    def __init__(self, vocab, counts, dim: int = 50, mode: str = "skipgram", window: int = 3,
                 negative: int = 5, subsample: float = 1e-3):
        super().__init__()
        if mode not in ("skipgram", "cbow"):
            raise ValueError(f"Word2Vec: mode must be 'skipgram' or 'cbow', got {mode!r}")
        counts = np.asarray(counts, dtype=np.float64)
        if len(vocab) != len(counts) or len(vocab) < 2:
            raise ValueError(f"Word2Vec: need matching vocab and counts of at least 2 words, got "
                             f"{len(vocab)} and {len(counts)}")
        if window < 1 or negative < 1:
            raise ValueError(f"Word2Vec: window and negative must be positive, got {window}, {negative}")
        self.vocab = list(vocab)
        self.index = {w: i for i, w in enumerate(self.vocab)}
        self.counts = counts
        self.dim, self.mode, self.window, self.negative = dim, mode, window, negative
        self.subsample = subsample
        noise = counts ** 0.75
        self.noise_cdf = np.cumsum(noise / noise.sum())
        freq = counts / counts.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            keep = (np.sqrt(freq / subsample) + 1) * subsample / freq if subsample > 0 else np.ones_like(freq)
        self.keep_prob = np.nan_to_num(np.minimum(keep, 1.0), nan=1.0)
        v = len(self.vocab)
        self.in_embed = nn.Embedding(v, dim)
        self.out_embed = nn.Embedding(v, dim)
        with no_grad():  # word2vec's initialisation: small uniform inputs, zero outputs
            self.in_embed.weight.uniform_(-0.5 / dim, 0.5 / dim)
            self.out_embed.weight.zero_()

    # ---- data ---------------------------------------------------------------------
    def sample_negatives(self, shape, rng) -> np.ndarray:
        idx = np.searchsorted(self.noise_cdf, rng.random(shape), side="right")
        return np.minimum(idx, len(self.vocab) - 1).astype(np.int64)

    def examples(self, sentences, rng):
        """One pass of training examples from sentences of word ids: skip-gram gives
        (centres (N,), contexts (N,)); CBOW gives (contexts (N, 2*window) padded with -1,
        centres (N,)). Subsampling and window sizes are drawn from rng."""
        ids = [np.asarray(s, np.int64) for s in sentences]
        ids = [s[rng.random(len(s)) < self.keep_prob[s]] for s in ids]
        stream = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        sent = np.concatenate([np.full(len(s), k) for k, s in enumerate(ids)]) if ids else stream
        n = len(stream)
        reach = rng.integers(1, self.window + 1, size=n)
        offsets = [o for o in range(-self.window, self.window + 1) if o]
        ctx = np.full((n, len(offsets)), -1, np.int64)
        pos = np.arange(n)
        for j, o in enumerate(offsets):
            p = pos + o
            ok = (p >= 0) & (p < n) & (abs(o) <= reach)
            ok[ok] &= sent[p[ok]] == sent[pos[ok]]
            ctx[ok, j] = stream[p[ok]]
        if self.mode == "skipgram":
            rows, cols = np.nonzero(ctx >= 0)
            return stream[rows], ctx[rows, cols]
        has = (ctx >= 0).any(axis=1)
        return ctx[has], stream[has]

    def batches(self, sentences, batch_size: int, rng):
        """Shuffled minibatches of one pass: (inputs, targets, negatives) NumPy arrays."""
        a, b = self.examples(sentences, rng)
        order = rng.permutation(len(b))
        for i in range(0, len(order), batch_size):
            idx = order[i:i + batch_size]
            yield a[idx], b[idx], self.sample_negatives((len(idx), self.negative), rng)

    # ---- loss ---------------------------------------------------------------------
    def forward(self, inputs, targets, negatives):
        """Mean negative-sampling loss of a batch. skip-gram: inputs are centre ids (B,),
        targets context ids (B,); CBOW: inputs are context ids (B, 2W) (-1 = none),
        targets centre ids (B,). negatives (B, K)."""
        import pydl.nn.functional as F

        dev = self.in_embed.weight.device
        inputs, targets, negatives = (x if isinstance(x, Tensor) else tensor(x, device=dev)
                                      for x in (inputs, targets, negatives))
        b = targets.shape[0] if targets.ndim == 1 else -1
        want_in = 1 if self.mode == "skipgram" else 2
        if b < 0 or inputs.ndim != want_in or inputs.shape[0] != b or negatives.ndim != 2 \
                or negatives.shape[0] != b:
            raise ValueError(f"Word2Vec ({self.mode}): expected inputs of {want_in} dims, targets (B,) "
                             f"and negatives (B, K) with one B; got {tuple(inputs.shape)}, "
                             f"{tuple(targets.shape)}, {tuple(negatives.shape)}")
        if self.mode == "skipgram":
            h = self.in_embed(inputs)                                  # (B, D)
        else:
            mask = (inputs >= 0)
            e = self.in_embed(inputs.clamp(min=0))                     # (B, 2W, D)
            m = mask.to(e.dtype).unsqueeze(-1)
            h = (e * m).sum(dim=1) / m.sum(dim=1).clamp(min=1.0)
        words = self.out_embed(cat([targets.unsqueeze(1), negatives], dim=1))  # (B, 1+K, D)
        logits = (words @ h.unsqueeze(-1)).squeeze(-1)                # (B, 1+K)
        labels = np.zeros(tuple(logits.shape), np.float32)
        labels[:, 0] = 1.0
        loss = F.binary_cross_entropy_with_logits(
            logits, tensor(labels, dtype=logits.dtype, device=dev), reduction="sum")
        return loss / logits.shape[0]

    # ---- queries ------------------------------------------------------------------
    def vectors(self) -> np.ndarray:
        return self.in_embed.weight.detach().cpu().numpy()

    def _unit(self):
        v = self.vectors().astype(np.float64)
        return v / np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)

    def _id(self, word):
        if word not in self.index:
            raise KeyError(f"Word2Vec: word {word!r} is not in the vocabulary")
        return self.index[word]

    def similarity(self, a: str, b: str) -> float:
        u = self._unit()
        return float(u[self._id(a)] @ u[self._id(b)])

    def most_similar(self, word: str, topn: int = 10):
        """[(word, cosine similarity)] of the topn nearest words, the word itself excluded."""
        u = self._unit()
        i = self._id(word)
        sims = u @ u[i]
        sims[i] = -np.inf
        if self.vocab and self.vocab[0] == "<unk>":
            sims[0] = -np.inf
        best = np.argsort(-sims, kind="stable")[:topn]
        return [(self.vocab[j], float(sims[j])) for j in best]

    # ---- saving -------------------------------------------------------------------
    def save_text(self, path: str) -> None:
        """word2vec's text format: a 'count dim' header, then 'word v1 ... vd' per line."""
        v = self.vectors()
        with open(path, "w", encoding="utf-8") as f:
            f.write(f"{len(self.vocab)} {self.dim}\n")
            for w, row in zip(self.vocab, v):
                f.write(w + " " + " ".join(f"{x:.6g}" for x in row) + "\n")

    def save_safetensors(self, path: str) -> bool:
        """Vectors as a safetensors file ('vectors' tensor, the vocabulary in the metadata);
        returns False when the safetensors package is not installed."""
        try:
            from safetensors.numpy import save_file
        except ImportError:
            return False
        import json

        save_file({"vectors": np.ascontiguousarray(self.vectors())}, path,
                  metadata={"vocab": json.dumps(self.vocab), "format_version": "1"})
        return True


def load_word2vec_text(path: str):
    """(words, vectors (n, dim) float32) from word2vec's text format."""
    with open(path, encoding="utf-8") as f:
        n, dim = (int(x) for x in f.readline().split())
        words, rows = [], []
        for line in f:
            parts = line.rstrip("\n").split(" ")
            words.append(parts[0])
            rows.append(np.array(parts[1:], dtype=np.float32))
    vecs = np.stack(rows) if rows else np.zeros((0, dim), np.float32)
    if vecs.shape != (n, dim):
        raise ValueError(f"load_word2vec_text: header says {n}x{dim}, file holds {vecs.shape}")
    return words, vecs


def cluster_purity(model: Word2Vec, clusters: dict, k=None) -> float:
    """Mean fraction of each clustered word's k nearest neighbours (default: its cluster
    size - 1) that belong to its own cluster."""
    sizes = {}
    for c in clusters.values():
        sizes[c] = sizes.get(c, 0) + 1
    scores = []
    for w, c in clusters.items():
        if w not in model.index:
            continue
        kk = k or sizes[c] - 1
        scores.append(np.mean([clusters.get(n) == c for n, _ in model.most_similar(w, kk)]))
    return float(np.mean(scores)) if scores else 0.0
