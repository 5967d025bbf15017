"""pydl.data: DataLoader behaviour, tokenizers, bundled text and synthetic tasks."""
import numpy as np
import pytest

import pydl
from pydl.data import (CharTokenizer, DataLoader, Dataset, TensorDataset, WordTokenizer,
                       first_token_task, load_pydoc_text, load_text, planted_cluster_corpus,
                       seq2seq_digits, split_text, transforms)


def test_loader_batches_cover_dataset_in_order():
    x = np.arange(23 * 2, dtype=np.float32).reshape(23, 2)
    y = np.arange(23)
    dl = DataLoader(TensorDataset(x, y), batch_size=5)
    batches = list(dl)
    assert len(dl) == 5 and len(batches) == 5
    assert [len(b[1]) for b in batches] == [5, 5, 5, 5, 3]
    xb, yb = batches[0]
    assert isinstance(xb, pydl.Tensor) and xb.dtype == pydl.float32 and yb.dtype == pydl.int64
    assert np.array_equal(np.concatenate([b[1].numpy() for b in batches]), y)


def test_loader_drop_last_and_shuffle_seeded():
    ds = TensorDataset(pydl.arange(17))
    dl = DataLoader(ds, batch_size=4, shuffle=True, drop_last=True, seed=3)
    e1 = [b[0].numpy() for b in dl]
    e2 = [b[0].numpy() for b in dl]
    assert len(dl) == 4 and len(e1) == 4 and all(len(b) == 4 for b in e1)
    assert not np.array_equal(np.concatenate(e1), np.concatenate(e2)), "same order every epoch"
    assert len(set(np.concatenate(e1).tolist())) == 16
    again = [b[0].numpy() for b in DataLoader(ds, batch_size=4, shuffle=True, drop_last=True, seed=3)]
    assert all(np.array_equal(a, b) for a, b in zip(e1, again)), "a seed must repeat the order"
    g = np.random.default_rng(3)
    via_gen = [b[0].numpy() for b in DataLoader(ds, batch_size=4, shuffle=True, drop_last=True,
                                                generator=g)]
    assert all(np.array_equal(a, b) for a, b in zip(e1, via_gen))


class Ragged(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return {"seq": np.arange(i + 1), "label": i % 2}


def test_loader_collate_fn_dicts_and_numpy():
    def pad(items):
        n = max(len(it["seq"]) for it in items)
        out = np.zeros((len(items), n), np.int64)
        for k, it in enumerate(items):
            out[k, :len(it["seq"])] = it["seq"]
        return out, np.array([it["label"] for it in items])

    seqs, labels = next(iter(DataLoader(Ragged(), batch_size=3, collate_fn=pad)))
    assert tuple(seqs.shape) == (3, 3) and labels.tolist() == [0, 1, 0]
    with pytest.raises(ValueError, match="default_collate"):
        next(iter(DataLoader(Ragged(), batch_size=3)))
    b = next(iter(DataLoader(Ragged(), batch_size=1, as_numpy=True)))
    assert isinstance(b["seq"], np.ndarray)


def test_loader_transform_and_errors():
    x = np.ones((6, 3), np.float32)
    ds = TensorDataset(x, np.zeros(6), transform=transforms.Compose(
        [transforms.Normalize(1.0, 2.0, field=0), transforms.Lambda(lambda s: (s[0] + 1, s[1]))]))
    xb, _ = next(iter(DataLoader(ds, batch_size=6)))
    assert np.allclose(xb.numpy(), 1.0)
    with pytest.raises(ValueError, match="DataLoader"):
        DataLoader(ds, batch_size=0)
    with pytest.raises(ValueError, match="TensorDataset"):
        TensorDataset(np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="DataLoader"):
        DataLoader(ds, generator=3)


def test_char_tokenizer_round_trip():
    text = load_pydoc_text()
    assert len(text) > 100_000
    tok = CharTokenizer(text)
    sample = text[1000:3000]
    ids = tok.encode(sample)
    assert ids.dtype == np.int64 and ids.min() > 0
    assert tok.decode(ids) == sample
    assert tok.encode("\u2603")[0] == 0 and tok.itos[0] == "<unk>"


def test_word_tokenizer_round_trip(tmp_path):
    p = tmp_path / "mine.txt"
    p.write_text("The cat sat. The dog sat, too!\n", encoding="utf-8")
    text = load_text(str(p))
    tok = WordTokenizer(text)
    ids = tok.encode(text)
    assert tok.decode(ids) == "the cat sat . the dog sat , too !"
    assert tok.itos[1] in ("the", "sat")
    assert tok.encode("zebra").tolist() == [0]
    small = WordTokenizer(load_pydoc_text(), max_size=100)
    assert len(small) == 100
    tr, ho = split_text(text, 0.25)
    assert tr + ho == text


def test_seq2seq_digits():
    src, tgt, vocab = seq2seq_digits(50, 2, 9, "sort", seed=1)
    assert src.shape == (50, 9) and tgt.shape == (50, 11) and len(vocab) == 13
    for s, t in zip(src, tgt):
        d = s[s > 0]
        assert 2 <= len(d) <= 9 and t[0] == 1 and t[len(d) + 1] == 2
        assert np.array_equal(t[1:len(d) + 1], np.sort(d)) and not t[len(d) + 2:].any()
    src, tgt, _ = seq2seq_digits(5, task="reverse")
    d = src[0][src[0] > 0]
    assert np.array_equal(tgt[0, 1:len(d) + 1], d[::-1])
    with pytest.raises(ValueError, match="seq2seq_digits"):
        seq2seq_digits(3, task="shuffle")


def test_planted_clusters_and_first_token():
    sents, clusters = planted_cluster_corpus(n_clusters=3, words_per_cluster=4, n_sentences=20)
    assert len(sents) == 20 and len(clusters) == 12
    for s in sents:
        ks = {clusters[w] for w in s if w in clusters}
        assert len(ks) <= 1
    tok, lab, v = first_token_task(30, length=55, n_classes=4)
    assert tok.shape == (30, 55) and np.array_equal(tok[:, 0], lab)
    assert tok[:, 1:].min() >= 4 and tok.max() < v
