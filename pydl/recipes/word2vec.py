"""`pydl train word2vec`: skip-gram (or CBOW) with negative sampling on a synthetic
corpus with planted word clusters, scored by the cluster purity of nearest
neighbours. text=PATH trains on a UTF-8 text file of your own instead (one
sentence per line; words are lower-cased letters/digits, punctuation dropped) and
reports the nearest neighbours of its most frequent words. Writes metrics.json,
the vectors in word2vec's text format (vectors.txt) and, with safetensors
installed, vectors.safetensors."""
from __future__ import annotations

import json
import os
import time

import numpy as np


def load_corpus(text=None, seed: int = 0, min_count: int = 2):
    """(tokenizer, sentences of ids, clusters or None)."""
    from pydl.data import WordTokenizer, load_text, planted_cluster_corpus

    if text is None:
        sents, clusters = planted_cluster_corpus(seed=seed)
        lines = [" ".join(s) for s in sents]
        tok = WordTokenizer("\n".join(lines), lower=False)
    else:
        lines = [ln for ln in load_text(text).splitlines() if ln.strip()]
        tok = WordTokenizer("\n".join(lines), min_freq=min_count)
        clusters = None
    ids = [tok.encode(ln) for ln in lines]
    if text is not None:
        ids = [s[s > 0] for s in ids]  # drop <unk>
    return tok, [s for s in ids if len(s) > 1], clusters


def run(epochs=None, seed: int = 0, device: str = "cpu", out=None, progress: bool = True,
        text=None, mode: str = "skipgram", dim: int = 32, window: int = 3, negative: int = 5,
        batch_size: int = 256, lr: float = 1e-2, subsample: float = 1e-3, **_ignored) -> dict:
    import pydl
    from pydl.models.word2vec import Word2Vec, cluster_purity
    from rich.progress import Progress

    epochs = 3 if epochs is None else epochs
    pydl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    tok, sentences, clusters = load_corpus(text, seed)
    model = Word2Vec(tok.itos, tok.counts, dim=dim, mode=mode, window=window, negative=negative,
                     subsample=subsample).to(device)
    opt = pydl.optim.Adam(model.parameters(), lr=lr)
    history = []
    start = time.perf_counter()
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("word2vec", total=epochs)
        for epoch in range(epochs):
            total, count = 0.0, 0
            for a, b, neg in model.batches(sentences, batch_size, rng):
                loss = model(a, b, neg)
                opt.zero_grad()
                loss.backward()
                opt.step()
                total += loss.item()
                count += 1
                bar.update(task, description=f"word2vec epoch {epoch + 1} loss {loss.item():.3f}")
            entry = {"epoch": epoch + 1, "train_loss": total / max(count, 1)}
            if clusters is not None:
                entry["cluster_purity"] = cluster_purity(model, clusters)
            history.append(entry)
            bar.update(task, advance=1)
    metrics = {"family": "word2vec", "device": device, "epochs": epochs, "seed": seed, "mode": mode,
               "seconds": time.perf_counter() - start, "vocab_size": len(tok),
               "train_loss": history[-1]["train_loss"], "history": history}
    if clusters is not None:
        metrics["cluster_purity"] = history[-1]["cluster_purity"]
        metrics["test_accuracy"] = metrics["cluster_purity"]
    frequent = [w for w in tok.itos[1:6]]
    metrics["neighbours"] = {w: [n for n, _ in model.most_similar(w, 5)] for w in frequent}
    if out:
        os.makedirs(out, exist_ok=True)
        model.save_text(os.path.join(out, "vectors.txt"))
        model.save_safetensors(os.path.join(out, "vectors.safetensors"))
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics
