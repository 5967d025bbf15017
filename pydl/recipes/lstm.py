"""`pydl train lstm`: a character-level LSTM language model on the text that ships
with Python (or a UTF-8 text file of your own: text=PATH), and an LSTM classifier on
the synthetic first-token task (the label is the first token of a 60-step noisy
sequence). Reports the held-out cross-entropy against the unigram baseline, and
the classifier's test accuracy."""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np


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
        text=None, batch_size: int = 32, seq_len: int = 64, lr: float = 3e-3,
        hidden_size: int = 256, steps_per_epoch: int = 120, cls_steps: int = 150,
        cls_length: int = 60, eval_chars: int = 20000, blas_threads=1, **_ignored) -> dict:
    """epochs: language-model epochs of `steps_per_epoch` random windows (default 2);
    text: path of a UTF-8 text file to model instead of the pydoc text.
    blas_threads: BLAS threads on the CPU (None: the library's default). The per-step
    matrix products are small; on a busy 2-core machine a threaded BLAS spent 20x the
    time of a single thread on them."""
    from contextlib import nullcontext

    limit = nullcontext()
    if blas_threads is not None and device == "cpu":
        from threadpoolctl import threadpool_limits

        limit = threadpool_limits(blas_threads, user_api="blas")
    with limit:
        return _run(epochs, seed, device, out, progress, text, batch_size, seq_len, lr,
                    hidden_size, steps_per_epoch, cls_steps, cls_length, eval_chars)


def _run(epochs, seed, device, out, progress, text, batch_size, seq_len, lr, hidden_size,
         steps_per_epoch, cls_steps, cls_length, eval_chars):
    import pydl
    import pydl.nn.functional as F
    from pydl.data import CharTokenizer, first_token_task, load_text, split_text
    from pydl.models.lstm import CharLM, SequenceClassifier
    from rich.progress import Progress

    epochs = 2 if epochs is None else epochs
    pydl.manual_seed(seed)
    rng = np.random.default_rng(seed)
    train_text, held_text = split_text(load_text(text), 0.1)
    tok = CharTokenizer(train_text)
    train_ids, held_ids = tok.encode(train_text), tok.encode(held_text)
    baseline = unigram_cross_entropy(train_ids, held_ids[:eval_chars + 1], len(tok))

    lm = CharLM(len(tok), embed_dim=64, hidden_size=hidden_size, forget_bias=1.0).to(device)
    opt = pydl.optim.Adam(lm.parameters(), lr=lr)
    tokens, labels, vocab = first_token_task(6000, length=cls_length, n_classes=4, n_noise=8,
                                             seed=seed)
    clf = SequenceClassifier(vocab, 4, embed_dim=16, hidden_size=64, forget_bias=4.0).to(device)
    clf_opt = pydl.optim.Adam(clf.parameters(), lr=5e-3)
    clf_rng = np.random.default_rng(seed + 1)
    history = []
    start = time.perf_counter()
    total_steps = epochs * steps_per_epoch
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("lstm", total=total_steps + cls_steps)
        for epoch in range(epochs):
            run_loss = 0.0
            for _ in range(steps_per_epoch):
                xb, yb = lm_batch(train_ids, batch_size, seq_len, rng)
                logits, _ = lm(pydl.tensor(xb, device=device))
                loss = F.cross_entropy(logits.reshape(-1, len(tok)),
                                       pydl.tensor(yb.reshape(-1), device=device))
                opt.zero_grad()
                loss.backward()
                pydl.nn.utils.clip_grad_norm_(lm.parameters(), 1.0)
                opt.step()
                run_loss += loss.item()
                bar.update(task, advance=1, description=f"lstm lm epoch {epoch + 1} "
                                                        f"loss {loss.item():.3f}")
            held = evaluate_lm(lm, held_ids, device, max_chars=eval_chars)
            history.append({"epoch": epoch + 1, "train_loss": run_loss / steps_per_epoch,
                            "held_out_cross_entropy": held})
        n_train = 5000
        for step in range(cls_steps):
            idx = clf_rng.integers(0, n_train, size=64)
            logits = clf(pydl.tensor(tokens[idx], device=device))
            loss = F.cross_entropy(logits, pydl.tensor(labels[idx], device=device))
            clf_opt.zero_grad()
            loss.backward()
            pydl.nn.utils.clip_grad_norm_(clf.parameters(), 1.0)
            clf_opt.step()
            bar.update(task, advance=1, description=f"lstm classifier loss {loss.item():.3f}")
    accuracy = evaluate_classifier(clf, tokens[n_train:], labels[n_train:], device)
    held = history[-1]["held_out_cross_entropy"] if history else evaluate_lm(
        lm, held_ids, device, max_chars=eval_chars)
    metrics = {"family": "lstm", "device": device, "epochs": epochs, "seed": seed,
               "seconds": time.perf_counter() - start,
               "held_out_cross_entropy": held, "unigram_cross_entropy": baseline,
               "reduction_vs_unigram": 1.0 - held / baseline,
               "held_out_bits_per_char": held / math.log(2),
               "sequence_length": cls_length, "test_accuracy": accuracy,
               "classification_accuracy": accuracy, "history": history}
    if out:
        os.makedirs(out, exist_ok=True)
        with open(os.path.join(out, "metrics.json"), "w") as f:
            json.dump(metrics, f, indent=2)
    return metrics
