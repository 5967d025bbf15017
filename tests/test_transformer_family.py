"""Transformer family: the encoder-decoder builds, masks what it should, learns on tiny
data, round-trips through a checkpoint, greedy-decodes, agrees with its PyTorch twin over
the first 20 steps, and (slow) the recipe reaches its bar."""
import numpy as np
import pytest

import pydl
from pydl.data.synthetic import BOS, EOS, PAD, seq2seq_digits
from pydl.models import Seq2SeqTransformer
from pydl.models.transformer import exact_match, sinusoidal_encoding, strip_special

import helpers  # noqa: F401  (one torch thread for the oracle)
from _twins import load_twin, one_blas_thread

_blas = pytest.fixture(autouse=True)(one_blas_thread)


def _tiny(tie_weights=True, **kw):
    pydl.manual_seed(0)
    return Seq2SeqTransformer(13, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
                              dim_feedforward=24, dropout=0.0, max_len=16, tie_weights=tie_weights,
                              **kw)


@pytest.mark.parametrize("tie_weights", [True, False])
def test_builds_with_tied_or_separate_projection(tie_weights):
    m = _tiny(tie_weights)
    names = set(dict(m.named_parameters()))
    assert ("out_bias" in names) == tie_weights and ("out.weight" in names) != tie_weights
    assert "encoder.layers.0.self_attn.in_proj_weight" in names
    assert "decoder.layers.0.multihead_attn.in_proj_weight" in names
    assert "pe" not in m.state_dict()
    src, tgt, _ = seq2seq_digits(5, 2, 7, seed=1)
    logits = m(pydl.tensor(src), pydl.tensor(tgt[:, :-1]))
    assert tuple(logits.shape) == (5, 8, 13)
    assert np.isfinite(logits.detach().numpy()).all()


def test_sinusoidal_encoding_values():
    pe = sinusoidal_encoding(7, 6)
    pos, i = 5, 1  # features 2 and 3: sin/cos of pos / 10000^(2/6)
    w = pos / 10000 ** (2 * i / 6)
    np.testing.assert_allclose(pe[pos, 2 * i], np.sin(w), rtol=1e-6)
    np.testing.assert_allclose(pe[pos, 2 * i + 1], np.cos(w), rtol=1e-6)
    assert sinusoidal_encoding(3, 5).shape == (3, 5)


def test_padding_and_causal_masks_hide_what_they_should():
    m = _tiny().eval()
    src = np.array([[5, 6, 7, PAD, PAD]])
    tgt = np.array([[BOS, 7, 6, 5, EOS]])
    with pydl.no_grad():
        base = m(pydl.tensor(src), pydl.tensor(tgt)).numpy()
        # Source PAD positions are hidden by the key padding masks: more trailing PAD
        # columns leave the logits unchanged.
        longer = m(pydl.tensor(np.concatenate([src, [[PAD, PAD]]], 1)), pydl.tensor(tgt)).numpy()
        np.testing.assert_allclose(base, longer, rtol=1e-4, atol=1e-5)
        # Causal: changing a later target token leaves earlier positions' logits unchanged.
        tgt2 = tgt.copy()
        tgt2[0, 3] = 12
        changed = m(pydl.tensor(src), pydl.tensor(tgt2)).numpy()
    np.testing.assert_allclose(base[:, :3], changed[:, :3], rtol=1e-4, atol=1e-5)
    assert np.abs(base[:, 3:] - changed[:, 3:]).max() > 1e-4


def test_bad_input_is_named():
    m = _tiny()
    with pytest.raises(ValueError, match="Seq2SeqTransformer"):
        m(pydl.tensor(np.zeros(4, np.int64)), pydl.tensor(np.zeros((1, 2), np.int64)))
    with pytest.raises(ValueError, match="max_len"):
        m(pydl.tensor(np.ones((1, 20), np.int64)), pydl.tensor(np.ones((1, 2), np.int64)))
    with pytest.raises(ValueError, match="Seq2SeqTransformer"):
        Seq2SeqTransformer(5, pad_idx=7)
    with pytest.raises(ValueError, match="greedy_decode"):
        m.greedy_decode(pydl.tensor(np.ones((1, 3), np.int64)), 40)


def test_exact_match_helpers():
    assert strip_special([BOS, 5, 4, EOS, PAD]) == [5, 4]
    tgt = np.array([[BOS, 5, 4, EOS, PAD], [BOS, 3, EOS, PAD, PAD]])
    dec = np.array([[BOS, 5, 4, EOS, 9], [BOS, 3, 3, EOS, PAD]])
    assert exact_match(dec, tgt) == 0.5
    assert exact_match(np.array([[BOS, 5, 4, 6, 6]]), tgt[:1]) == 0.0  # no EOS: a miss


def test_learns_tiny_reversal_and_greedy_decodes():
    from pydl.recipes import transformer as recipe

    cfg = dict(recipe.DEFAULTS, min_len=2, max_len=4, d_model=32, dim_feedforward=64, layers=1,
               dropout=0.0, lr=3e-3, warmup=10)
    src, tgt, vocab = seq2seq_digits(256, 2, 4, seed=3)
    pydl.manual_seed(0)
    m = recipe.build(cfg, len(vocab))
    opt = pydl.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for step in range(40):
        idx = np.arange(32) + 32 * (step % 8)
        loss = recipe.loss_fn(m, src[idx], tgt[idx], "cpu")
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.7 * np.mean(losses[:5])
    out = m.greedy_decode(pydl.tensor(src[:16]), tgt.shape[1] - 1)
    assert out.dtype == np.int64 and out.shape[0] == 16 and out.shape[1] <= tgt.shape[1]
    assert (out[:, 0] == BOS).all()
    assert m.training  # greedy_decode restores the mode
    acc = exact_match(out, tgt[:16])
    assert 0.0 <= acc <= 1.0


def test_checkpoint_round_trip(tmp_path):
    from pydl.serialization import load_checkpoint, save_checkpoint

    m = _tiny(tie_weights=False)
    opt = pydl.optim.Adam(m.parameters(), lr=1e-3)
    src, tgt, _ = seq2seq_digits(4, 2, 5, seed=2)
    from pydl.recipes.transformer import loss_fn

    loss = loss_fn(m, src, tgt, "cpu")
    loss.backward()
    opt.step()
    path = str(tmp_path / "ck.safetensors")
    save_checkpoint(path, model=m, optimizer=opt, step=1, config={"d": 16})
    m2 = _tiny(tie_weights=False)
    pydl.manual_seed(5)
    for p in m2.parameters():
        pydl.nn.init.normal_(p)
    load_checkpoint(path, m2, pydl.optim.Adam(m2.parameters(), lr=1e-3))
    m.eval(), m2.eval()
    with pydl.no_grad():
        a = m(pydl.tensor(src), pydl.tensor(tgt[:, :-1])).numpy()
        b = m2(pydl.tensor(src), pydl.tensor(tgt[:, :-1])).numpy()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(m.greedy_decode(pydl.tensor(src), 6),
                                  m2.greedy_decode(pydl.tensor(src), 6))


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return float((np.abs(a - b) / np.abs(b)).max())


@pytest.mark.parametrize("tie_weights", [True, False])
def test_twin_agrees_for_20_steps(tie_weights):
    ours, theirs = load_twin("transformer").twin_losses(
        steps=20, batch_size=16, tie_weights=tie_weights, d_model=32, dim_feedforward=48)
    assert len(ours) == 20 and ours[-1] < ours[0]
    assert _rel(ours, theirs) < 1e-3


def test_recipe_quick_run_and_resume(tmp_path):
    import json

    from pydl.recipes import transformer as recipe

    kw = dict(n_train=128, n_test=16, eval_size=16, d_model=16, dim_feedforward=16, layers=1,
              batch_size=32, max_len=5, progress=False, out=str(tmp_path))
    first = recipe.run(epochs=2, stop_after=1, **kw)
    assert first["epochs"] == 1
    m = recipe.run(epochs=2, resume=True, **kw)
    assert m["epochs"] == 2 and 0.0 <= m["exact_match"] <= 1.0
    assert [h["epoch"] for h in m["history"]] == [1, 2]
    assert json.loads((tmp_path / "metrics.json").read_text())["family"] == "transformer"
    with pytest.raises(ValueError, match="transformer"):
        recipe.run(epochs=1, progress=False, bogus=1)


@pytest.mark.slow
def test_recipe_reaches_its_bar(tmp_path):
    import json

    from pydl.cli import passes
    from pydl.recipes import transformer as recipe

    m = recipe.run(out=str(tmp_path), progress=False)
    assert passes(recipe.BAR, m["exact_match"]) and m["n_test"] >= 900, m
    assert json.loads((tmp_path / "metrics.json").read_text())["family"] == "transformer"
    assert (tmp_path / "loss.png").exists() and (tmp_path / "checkpoint.safetensors").exists()
