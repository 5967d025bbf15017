"""Word2Vec family: sampling, training on tiny data, queries, saving, PyTorch twin
parity over 20 steps, and (slow) the recipe's cluster-purity bar."""
import json

import numpy as np
import pytest

import pydl
from pydl.models.word2vec import Word2Vec, cluster_purity, load_word2vec_text
from pydl.recipes.word2vec import load_corpus

import helpers  # noqa: F401
from _twins import load_twin, one_blas_thread

_blas = pytest.fixture(autouse=True)(one_blas_thread)


def _tiny(mode="skipgram"):
    tok, sents, clusters = load_corpus(seed=1)
    pydl.manual_seed(1)
    return Word2Vec(tok.itos, tok.counts, dim=8, mode=mode, window=2, negative=3), sents, clusters


def test_noise_distribution_and_subsampling():
    m = Word2Vec(["<unk>", "a", "b", "c"], [0, 1000, 100, 10], dim=4, subsample=1e-2)
    neg = m.sample_negatives((20000,), np.random.default_rng(0))
    freq = np.bincount(neg, minlength=4) / len(neg)
    want = np.array([0, 1000, 100, 10]) ** 0.75
    assert np.allclose(freq, want / want.sum(), atol=0.01) and freq[0] == 0
    assert m.keep_prob[1] < m.keep_prob[2] < 1.0 and m.keep_prob[3] == 1.0


def test_examples_respect_windows_and_sentences():
    m = Word2Vec(["<unk>", "a", "b", "c", "d"], [0, 5, 5, 5, 5], dim=4, window=1, subsample=0)
    rng = np.random.default_rng(0)
    c, x = m.examples([[1, 2, 3], [4, 1]], rng)
    pairs = set(zip(c.tolist(), x.tolist()))
    assert pairs == {(1, 2), (2, 1), (2, 3), (3, 2), (4, 1), (1, 4)}
    m.mode = "cbow"
    ctx, centre = m.examples([[1, 2, 3]], rng)
    assert centre.tolist() == [1, 2, 3] and ctx.tolist() == [[-1, 2], [1, 3], [2, -1]]


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_training_lowers_loss_and_queries(mode, tmp_path):
    m, sents, clusters = _tiny(mode)
    opt = pydl.optim.Adam(m.parameters(), lr=2e-2)
    rng = np.random.default_rng(0)
    losses = []
    for a, b, neg in m.batches(sents[:1500], 128, rng):
        loss = m(a, b, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.8 * np.mean(losses[:5])
    assert cluster_purity(m, clusters) > 0.5
    top = m.most_similar("c0w0", 3)
    assert len(top) == 3 and "c0w0" not in [w for w, _ in top]
    assert top[0][1] >= top[1][1] >= top[2][1]
    assert abs(m.similarity("c0w0", "c0w1") - m.similarity("c0w1", "c0w0")) < 1e-12
    with pytest.raises(KeyError, match="Word2Vec"):
        m.most_similar("nope")
    m.save_text(str(tmp_path / "v.txt"))
    words, vecs = load_word2vec_text(str(tmp_path / "v.txt"))
    assert words == m.vocab and np.allclose(vecs, m.vectors(), rtol=1e-5, atol=1e-7)
    if m.save_safetensors(str(tmp_path / "v.safetensors")):
        from safetensors.numpy import load_file

        assert np.array_equal(load_file(str(tmp_path / "v.safetensors"))["vectors"], m.vectors())


def test_bad_arguments():
    with pytest.raises(ValueError, match="Word2Vec"):
        Word2Vec(["a", "b"], [1, 1], mode="glove")
    with pytest.raises(ValueError, match="Word2Vec"):
        Word2Vec(["a", "b"], [1])
    m = Word2Vec(["a", "b", "c"], [1, 2, 3], dim=4)
    with pytest.raises(ValueError, match="Word2Vec"):
        m(np.zeros((2, 3), np.int64), np.zeros(2, np.int64), np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError, match="Word2Vec"):
        m(np.zeros(2, np.int64), np.zeros(3, np.int64), np.zeros((2, 5), np.int64))
    with pytest.raises(IndexError, match="embedding"):
        m(np.zeros(2, np.int64), np.full(2, 7), np.zeros((2, 5), np.int64))


@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_twin_agrees_for_20_steps(mode):
    ours, theirs = load_twin("word2vec").twin_losses(steps=20, mode=mode)
    a, b = np.asarray(ours), np.asarray(theirs)
    assert len(a) == 20 and a[-1] < a[0]
    assert (np.abs(a - b) / np.abs(b)).max() < 1e-3


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["skipgram", "cbow"])
def test_recipe_reaches_purity(mode, tmp_path):
    from pydl.recipes import word2vec

    m = word2vec.run(out=str(tmp_path), progress=False, mode=mode)
    assert m["cluster_purity"] >= 0.9, m
    assert json.loads((tmp_path / "metrics.json").read_text())["family"] == "word2vec"
    assert (tmp_path / "vectors.txt").exists()


def test_recipe_on_a_user_text_file(tmp_path):
    from pydl.data import load_pydoc_text
    from pydl.recipes import word2vec

    p = tmp_path / "corpus.txt"
    p.write_text(load_pydoc_text()[:20000], encoding="utf-8")
    m = word2vec.run(epochs=1, text=str(p), out=str(tmp_path / "run"), progress=False, dim=8)
    assert "cluster_purity" not in m and m["vocab_size"] > 50 and len(m["neighbours"]) == 5
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["train_loss"] > 0
