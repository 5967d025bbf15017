"""`pydl train lstm`: a character-level LSTM language model on the text that ships
with Python (or a UTF-8 text file of your own: text=PATH), and an LSTM classifier on
the synthetic first-token task (the label is the first token of a 60-step noisy
sequence). Reports the held-out cross-entropy against the unigram baseline, and
the classifier's test accuracy.

An epoch is `steps_per_epoch` language-model steps plus its share of the `cls_steps`
classifier steps (the two models train side by side, each with its own optimizer)."""
from __future__ import annotations

import math

import numpy as np

from ._common import JointOptimizer, Run, epoch_rng

# Both bars must hold: the language model beats the unigram baseline by 30% and the
# classifier carries the first token across 50+ steps.
BAR = (("lm_reduction_vs_unigram", 0.30, True), ("classifier_accuracy", 0.95, True))
DEFAULTS = {"epochs": 2, "text": None, "batch_size": 32, "seq_len": 64, "lr": 3e-3,
            "hidden_size": 256, "steps_per_epoch": 120, "cls_steps": 150, "cls_length": 60,
            "eval_chars": 20000}
QUICK = {"epochs": 1, "hidden_size": 32, "steps_per_epoch": 3, "cls_steps": 3, "cls_length": 12,
         "eval_chars": 2000}


def unigram_cross_entropy(train_ids, held_ids, vocab_size: int) -> float:
    """Held-out cross-entropy (nats/char) of train's character frequencies (add-one smoothed)."""
    counts = np.bincount(train_ids, minlength=vocab_size).astype(np.float64) + 1.0
    logp = np.log(counts / counts.sum())
    return float(-logp[held_ids].mean())


def lm_batch(ids, batch_size, seq_len, rng):
    starts = rng.integers(0, len(ids) - seq_len - 1, size=batch_size)
    idx = starts[:, None] + np.arange(seq_len + 1)
    chunk = ids[idx]
    return chunk[:, :-1], chunk[:, 1:]


def evaluate_lm(model, ids, device, seq_len=256, batch_size=16, max_chars=None) -> float:
    """Mean next-character cross-entropy over non-overlapping windows of `ids`."""
    import pydl
    import pydl.nn.functional as F

    if max_chars is not None:
        ids = ids[:max_chars + 1]
    n = (len(ids) - 1) // seq_len
    x = ids[:n * seq_len].reshape(n, seq_len)
    y = ids[1:n * seq_len + 1].reshape(n, seq_len)
    model.eval()
    total = 0.0
    with pydl.no_grad():
        for i in range(0, n, batch_size):
            logits, _ = model(pydl.tensor(x[i:i + batch_size], device=device))
            yb = pydl.tensor(y[i:i + batch_size].reshape(-1), device=device)
            total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb,
                                     reduction="sum").item()
    model.train()
    return total / (n * seq_len)


def evaluate_classifier(model, x, y, device, batch_size=256) -> float:
    import pydl

    model.eval()
    correct = 0
    with pydl.no_grad():
        for i in range(0, len(x), batch_size):
            logits = model(pydl.tensor(x[i:i + batch_size], device=device))
            correct += int((logits.argmax(dim=1).numpy() == y[i:i + batch_size]).sum())
    model.train()
    return correct / len(x)


def run(epochs=None, seed: int = 0, device: str = "cpu", out=None, progress: bool = True,
        resume: bool = False, stop_after=None, blas_threads=1, **options) -> dict:
    """epochs: epochs of `steps_per_epoch` random language-model windows (default 2);
    options (see DEFAULTS): text=PATH of a UTF-8 file to model instead of the pydoc text,
    batch_size, seq_len, lr, hidden_size, steps_per_epoch, cls_steps (classifier steps in
    all), cls_length, eval_chars. `stop_after` ends the run early (as if interrupted) after
    that many epochs, leaving a checkpoint that `resume=True` continues from.
    blas_threads: BLAS threads on the CPU (None: the library's default). The per-step
    matrix products are small; on a busy 2-core machine a threaded BLAS spent 20x the
    time of a single thread on them."""
    from contextlib import nullcontext

    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"lstm.run: unknown settings {sorted(unknown)}")
    cfg = dict(DEFAULTS, **options, seed=seed)
    cfg["epochs"] = epochs or DEFAULTS["epochs"]
    limit = nullcontext()
    if blas_threads is not None and device == "cpu":
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(blas_threads, user_api="blas")
    with limit:
        return _run(cfg, device, out, progress, resume, stop_after)


def _run(cfg, device, out, progress, resume, stop_after):
    import pydl
    import pydl.nn.functional as F
    from pydl.data import CharTokenizer, first_token_task, load_text, split_text
    from pydl.models.lstm import CharLM, SequenceClassifier

    seed, epochs, eval_chars = cfg["seed"], cfg["epochs"], cfg["eval_chars"]
    pydl.manual_seed(seed)
    train_text, held_text = split_text(load_text(cfg["text"]), 0.1)
    tok = CharTokenizer(train_text)
    train_ids, held_ids = tok.encode(train_text), tok.encode(held_text)
    baseline = unigram_cross_entropy(train_ids, held_ids[:eval_chars + 1], len(tok))

    lm = CharLM(len(tok), embed_dim=64, hidden_size=cfg["hidden_size"], forget_bias=1.0).to(device)
    tokens, labels, vocab = first_token_task(6000, length=cfg["cls_length"], n_classes=4, n_noise=8,
                                             seed=seed)
    n_train = 5000
    clf = SequenceClassifier(vocab, 4, embed_dim=16, hidden_size=64, forget_bias=4.0).to(device)
    opts = {"lm": pydl.optim.Adam(lm.parameters(), lr=cfg["lr"]),
            "clf": pydl.optim.Adam(clf.parameters(), lr=5e-3)}
    # One module and one joint optimizer state so that a single checkpoint covers the run.
    both, joint = pydl.nn.ModuleDict({"lm": lm, "clf": clf}), JointOptimizer(opts)
    run_ = Run("lstm", out, progress, total=epochs)
    start = run_.resume(both, None, None, cfg) if resume else 0
    if start:
        joint.load(run_.recipe_state.get("opt"))
    end = epochs if stop_after is None else min(epochs, stop_after)
    with run_:
        for epoch in range(start, end):
            rng, clf_rng = epoch_rng(seed, epoch, 0), epoch_rng(seed, epoch, 1)
            lm_total = 0.0
            for _ in range(cfg["steps_per_epoch"]):
                xb, yb = lm_batch(train_ids, cfg["batch_size"], cfg["seq_len"], rng)
                logits, _ = lm(pydl.tensor(xb, device=device))
                loss = F.cross_entropy(logits.reshape(-1, len(tok)),
                                       pydl.tensor(yb.reshape(-1), device=device))
                opts["lm"].zero_grad()
                loss.backward()
                pydl.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
                opts["lm"].step()
                run_.log_loss(loss.item())
                lm_total += run_.losses[-1]
            # this epoch's share of the classifier steps
            cls_here = (epoch + 1) * cfg["cls_steps"] // epochs - epoch * cfg["cls_steps"] // epochs
            cls_total = 0.0
            for _ in range(cls_here):
                idx = clf_rng.integers(0, n_train, size=64)
                logits = clf(pydl.tensor(tokens[idx], device=device))
                loss = F.cross_entropy(logits, pydl.tensor(labels[idx], device=device))
                opts["clf"].zero_grad()
                loss.backward()
                pydl.nn.utils.clip_grad_norm_(clf.parameters(), 1.0)
                opts["clf"].step()
                cls_total += loss.item()
                run_.status(f"classifier loss {loss.item():.4f}")
            held = evaluate_lm(lm, held_ids, device, max_chars=eval_chars)
            accuracy = evaluate_classifier(clf, tokens[n_train:], labels[n_train:], device)
            run_.end_epoch(epoch + 1, model=both, config=cfg, extra={"opt": joint.state()},
                           train_loss=lm_total / max(cfg["steps_per_epoch"], 1),
                           held_out_cross_entropy=held,
                           classifier_train_loss=cls_total / max(cls_here, 1),
                           classifier_accuracy=accuracy)
    if run_.history:
        held = run_.history[-1]["held_out_cross_entropy"]
        accuracy = run_.history[-1]["classifier_accuracy"]
    else:
        held = evaluate_lm(lm, held_ids, device, max_chars=eval_chars)
        accuracy = evaluate_classifier(clf, tokens[n_train:], labels[n_train:], device)
    reduction = 1.0 - held / baseline
    return run_.finish({"device": device, "epochs": run_.history[-1]["epoch"] if run_.history else 0,
                        "seed": seed, "held_out_cross_entropy": held,
                        "unigram_cross_entropy": baseline, "lm_reduction_vs_unigram": reduction,
                        "reduction_vs_unigram": reduction,
                        "held_out_bits_per_char": held / math.log(2),
                        "sequence_length": cfg["cls_length"], "classifier_accuracy": accuracy,
                        "classification_accuracy": accuracy, "test_accuracy": accuracy,
                        "config": cfg})
