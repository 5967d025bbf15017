"""LSTM family: the models build and learn on tiny data, agree with their PyTorch
twins over the first 20 steps, and (slow) the recipe reaches its quality bars."""
import numpy as np
import pytest

import pydl
import pydl.nn.functional as F
from pydl.data import first_token_task
from pydl.models import CharLM, SequenceClassifier

import helpers  # noqa: F401  (one torch thread for the oracle)
from _twins import load_twin, one_blas_thread

_blas = pytest.fixture(autouse=True)(one_blas_thread)


def test_char_lm_shapes_state_and_learning():
    pydl.manual_seed(0)
    rng = np.random.default_rng(0)
    m = CharLM(11, embed_dim=5, hidden_size=13, num_layers=2)
    data = np.tile(np.arange(11), 8)  # a cycle: next token is fully predictable
    opt = pydl.optim.Adam(m.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        s = rng.integers(0, len(data) - 18, size=3)
        chunk = data[s[:, None] + np.arange(18)]
        logits, (h, c) = m(pydl.tensor(chunk[:, :-1]))
        assert tuple(logits.shape) == (3, 17, 11) and tuple(h.shape) == (2, 3, 13)
        loss = F.cross_entropy(logits.reshape(-1, 11), pydl.tensor(chunk[:, 1:].reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("gru", True)])
def test_classifier_learns_short_memory(cell, bidirectional):
    pydl.manual_seed(0)
    tokens, labels, vocab = first_token_task(256, length=7, n_classes=3, n_noise=4)
    m = SequenceClassifier(vocab, 3, embed_dim=8, hidden_size=16, cell=cell,
                           bidirectional=bidirectional, forget_bias=2.0)
    opt = pydl.optim.Adam(m.parameters(), lr=2e-2)
    losses = []
    for step in range(40):
        idx = np.arange(32) + 32 * (step % 8)
        loss = F.cross_entropy(m(pydl.tensor(tokens[idx])), pydl.tensor(labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    with pytest.raises(ValueError, match="SequenceClassifier"):
        SequenceClassifier(5, 2, cell="rnn")


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float((np.abs(a - b) / np.abs(b)).max())


def test_char_lm_twin_agrees_for_20_steps():
    ours, theirs = load_twin("lstm").twin_losses(steps=20, batch_size=4, seq_len=24, hidden_size=32)
    assert len(ours) == 20 and ours[-1] < ours[0]
    assert _rel(ours, theirs) < 1e-3


def test_classifier_twin_agrees_for_20_steps():
    ours, theirs = load_twin("lstm").classifier_twin_losses(steps=20, batch_size=8, length=53)
    assert len(ours) == 20
    assert _rel(ours, theirs) < 1e-3


@pytest.mark.slow
def test_recipe_reaches_its_bars(tmp_path):
    import json

    from pydl.recipes import lstm

    m = lstm.run(out=str(tmp_path), progress=False)
    assert m["held_out_cross_entropy"] <= 0.7 * m["unigram_cross_entropy"], m
    assert m["classification_accuracy"] >= 0.95 and m["sequence_length"] >= 50, m
    assert json.loads((tmp_path / "metrics.json").read_text())["family"] == "lstm"


def test_recipe_runs_on_a_user_text_file(tmp_path):
    import json

    from pydl.recipes import lstm

    p = tmp_path / "corpus.txt"
    p.write_text("the quick brown fox jumps over the lazy dog. " * 200, encoding="utf-8")
    m = lstm.run(epochs=1, text=str(p), out=str(tmp_path / "run"), progress=False, hidden_size=16,
                 batch_size=4, seq_len=16, steps_per_epoch=3, cls_steps=2, cls_length=8,
                 eval_chars=500)
    for k in ("held_out_cross_entropy", "unigram_cross_entropy", "classification_accuracy"):
        assert np.isfinite(m[k]), k
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["family"] == "lstm"
