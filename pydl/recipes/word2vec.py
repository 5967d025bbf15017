"""`pydl train word2vec`: skip-gram (or CBOW) with negative sampling on a synthetic
corpus with planted word clusters, scored by the cluster purity of nearest
neighbours. text=PATH trains on a UTF-8 text file of your own instead (one
sentence per line; words are lower-cased letters/digits, punctuation dropped) and
reports the nearest neighbours of its most frequent words. Writes metrics.json,
the vectors in word2vec's text format (vectors.txt) and, with safetensors
installed, vectors.safetensors; and, like every recipe, loss.png and a checkpoint
per epoch that `resume=True` continues from."""
from __future__ import annotations

import os

from ._common import Run, epoch_rng

BAR = ("cluster_purity", 0.9, True)  # on the planted-cluster corpus (none for text=PATH)
DEFAULTS = {"epochs": 3, "text": None, "mode": "skipgram", "dim": 32, "window": 3, "negative": 5,
            "batch_size": 256, "lr": 1e-2, "subsample": 1e-3}
QUICK = {"epochs": 1, "dim": 8}


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
        resume: bool = False, stop_after=None, **options) -> dict:
    """epochs: passes over the corpus (default 3); options (see DEFAULTS): text=PATH of
    your own corpus, mode ("skipgram" or "cbow"), dim, window, negative, batch_size, lr,
    subsample. `stop_after` ends the run early (as if interrupted) after that many
    epochs, leaving a checkpoint that `resume=True` continues from."""
    import pydl
    from pydl.models.word2vec import Word2Vec, cluster_purity

    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"word2vec.run: unknown settings {sorted(unknown)}")
    cfg = dict(DEFAULTS, **options, seed=seed)
    cfg["epochs"] = epochs or DEFAULTS["epochs"]
    pydl.manual_seed(seed)
    tok, sentences, clusters = load_corpus(cfg["text"], seed)
    model = Word2Vec(tok.itos, tok.counts, dim=cfg["dim"], mode=cfg["mode"], window=cfg["window"],
                     negative=cfg["negative"], subsample=cfg["subsample"]).to(device)
    opt = pydl.optim.Adam(model.parameters(), lr=cfg["lr"])
    run_ = Run("word2vec", out, progress, total=cfg["epochs"])
    start = run_.resume(model, opt, None, cfg) if resume else 0
    end = cfg["epochs"] if stop_after is None else min(cfg["epochs"], stop_after)
    with run_:
        for epoch in range(start, end):
            total, count = 0.0, 0
            for a, b, neg in model.batches(sentences, cfg["batch_size"], epoch_rng(seed, epoch)):
                loss = model(a, b, neg)
                opt.zero_grad()
                loss.backward()
                opt.step()
                run_.log_loss(loss.item(), every=16)
                total += run_.losses[-1]
                count += 1
            entry = {"train_loss": total / max(count, 1)}
            if clusters is not None:
                entry["cluster_purity"] = cluster_purity(model, clusters)
            run_.end_epoch(epoch + 1, model=model, optimizer=opt, config=cfg, **entry)
    metrics = {"device": device, "epochs": run_.history[-1]["epoch"] if run_.history else 0,
               "seed": seed, "mode": cfg["mode"], "vocab_size": len(tok)}
    if run_.history:
        metrics["train_loss"] = run_.history[-1]["train_loss"]
    if clusters is not None:
        metrics["cluster_purity"] = (run_.history[-1]["cluster_purity"] if run_.history
                                     else cluster_purity(model, clusters))
        metrics["test_accuracy"] = metrics["cluster_purity"]
    metrics["neighbours"] = {w: [n for n, _ in model.most_similar(w, 5)] for w in tok.itos[1:6]}
    if out:
        model.save_text(os.path.join(out, "vectors.txt"))
        model.save_safetensors(os.path.join(out, "vectors.safetensors"))
    return run_.finish({**metrics, "config": cfg})
