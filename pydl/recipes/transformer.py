"""`pydl train transformer`: an encoder-decoder Transformer learns to reverse digit
strings of varied length (synthetic, with PAD/BOS/EOS); reports the exact-match accuracy
of greedy decoding on held-out strings (none of which occurs in the training set)."""
from __future__ import annotations

import math

import numpy as np

from ._common import Run, batches

BAR = ("exact_match", 0.95, True)  # metric, threshold, higher is better
DEFAULTS = {"task": "reverse", "min_len": 3, "max_len": 10, "n_train": 12800, "n_test": 1000,
            "d_model": 64, "nhead": 4, "layers": 2, "dim_feedforward": 128, "dropout": 0.0,
            "tie_weights": True, "lr": 2e-3, "warmup": 100, "batch_size": 64, "epochs": 4,
            "eval_size": 300}
QUICK = {"epochs": 1, "n_train": 512, "n_test": 64, "eval_size": 64}


def make_data(cfg, seed):
    """Train and held-out (src, tgt) from pydl.data.seq2seq_digits; held-out rows whose
    source string also occurs in the training set are dropped."""
    from pydl.data.synthetic import seq2seq_digits

    kw = dict(min_len=cfg["min_len"], max_len=cfg["max_len"], task=cfg["task"])
    src, tgt, vocab = seq2seq_digits(cfg["n_train"], seed=seed, **kw)
    tsrc, ttgt, _ = seq2seq_digits(cfg["n_test"] * 2, seed=seed + 10_000, **kw)
    seen = {r.tobytes() for r in src}
    fresh = np.array([r.tobytes() not in seen for r in tsrc])
    return src, tgt, tsrc[fresh][:cfg["n_test"]], ttgt[fresh][:cfg["n_test"]], vocab


def evaluate(model, src, tgt, device, batch_size=500) -> float:
    """Exact-match accuracy of greedy decoding."""
    import pydl
    from pydl.models.transformer import exact_match

    hits = 0.0
    max_len = tgt.shape[1] - 1
    for i in range(0, len(src), batch_size):
        out = model.greedy_decode(pydl.tensor(src[i:i + batch_size], device=device), max_len)
        hits += exact_match(out, tgt[i:i + batch_size]) * len(out)
    return hits / max(len(src), 1)


def loss_fn(model, src, tgt, device):
    import pydl
    import pydl.nn.functional as F
    from pydl.data.synthetic import PAD

    logits = model(pydl.tensor(src, device=device), pydl.tensor(tgt[:, :-1], device=device))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]),
                           pydl.tensor(tgt[:, 1:].reshape(-1), device=device), ignore_index=PAD)


def warmup_cosine(warmup: int, total: int):
    """Per-step learning-rate factor: linear warmup, then a cosine down to 0.05."""
    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        t = min((step - warmup) / max(total - warmup, 1), 1.0)
        return 0.05 + 0.95 * 0.5 * (1.0 + math.cos(math.pi * t))
    return factor


def build(cfg, vocab_size, device="cpu"):
    from pydl.models import Seq2SeqTransformer

    return Seq2SeqTransformer(vocab_size, d_model=cfg["d_model"], nhead=cfg["nhead"],
                              num_encoder_layers=cfg["layers"], num_decoder_layers=cfg["layers"],
                              dim_feedforward=cfg["dim_feedforward"], dropout=cfg["dropout"],
                              max_len=cfg["max_len"] + 2, tie_weights=cfg["tie_weights"]).to(device)


def run(epochs: int | None = None, seed: int = 0, device: str = "cpu", out: str | None = None,
        progress: bool = True, resume: bool = False, stop_after: int | None = None,
        threads=1, data: str | None = None, **options) -> dict:
    """Train and evaluate. options override DEFAULTS (e.g. task="sort", n_train=...);
    data: a text file of your own `source<TAB>target` pairs instead of the synthetic task
    (see pydl.data.files; a tenth is held out);
    `stop_after` ends the run early (as if interrupted) after that many epochs.
    threads: BLAS and OpenMP threads on the CPU (None: the libraries' defaults). The
    matrices here are small (64 x 12 tokens by 64 features); on a busy 2-core machine
    threaded BLAS and OpenMP teams made each step 5-8x slower than one thread."""
    from ._common import cpu_threads

    with cpu_threads(threads, device):
        return _run(epochs, seed, device, out, progress, resume, stop_after, data, options)


def _run(epochs, seed, device, out, progress, resume, stop_after, data, options):
    import pydl

    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"transformer recipe: unknown options {sorted(unknown)}")
    cfg = dict(DEFAULTS, **options, seed=seed)
    cfg["epochs"] = epochs or cfg["epochs"]
    pydl.manual_seed(seed)
    if data is None:
        src, tgt, tsrc, ttgt, vocab = make_data(cfg, seed)
    else:
        from pydl.data.files import load_pairs

        src, tgt, tsrc, ttgt, vocab = load_pairs(data, seed=seed)
        cfg.update(data=data, max_len=max(src.shape[1], tgt.shape[1] - 2))
    model = build(cfg, len(vocab), device)
    opt = pydl.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.98))
    steps_per_epoch = math.ceil(len(src) / cfg["batch_size"])
    sched = pydl.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(cfg["warmup"], cfg["epochs"] * steps_per_epoch))
    run_ = Run("transformer", out, progress, total=cfg["epochs"])
    start = run_.resume(model, opt, sched, cfg) if resume else 0
    end = cfg["epochs"] if stop_after is None else min(cfg["epochs"], stop_after)
    with run_:
        for epoch in range(start, end):
            total, count = 0.0, 0
            for idx in batches(len(src), cfg["batch_size"], seed, epoch):
                loss = loss_fn(model, src[idx], tgt[idx], device)
                opt.zero_grad()
                loss.backward()
                pydl.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                opt.step()
                sched.step()
                value = loss.item()
                run_.log_loss(value, every=10)
                total += value * len(idx)
                count += len(idx)
            acc = evaluate(model, tsrc[:cfg["eval_size"]], ttgt[:cfg["eval_size"]], device)
            run_.end_epoch(epoch + 1, model=model, optimizer=opt, scheduler=sched, config=cfg,
                           train_loss=total / count, exact_match_subset=acc)
    acc = evaluate(model, tsrc, ttgt, device)
    return run_.finish({"device": device, "epochs": run_.history[-1]["epoch"] if run_.history else 0,
                        "exact_match": acc, "n_test": int(len(tsrc)), "config": cfg})
