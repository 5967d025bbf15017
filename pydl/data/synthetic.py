"""Synthetic tasks generated from a seed (nothing is downloaded):

- `seq2seq_digits`: reverse or sort digit strings of varied length, with PAD/BOS/EOS;
- `planted_cluster_corpus`: sentences drawn from planted word clusters (Word2Vec);
- `first_token_task`: classify a long noisy sequence by its first token (memory over
  50+ steps for recurrent models).
"""
from __future__ import annotations

import numpy as np

PAD, BOS, EOS = 0, 1, 2


def seq2seq_digits(n: int, min_len: int = 3, max_len: int = 10, task: str = "reverse", seed: int = 0):
    """(src, tgt, vocab): src (n, max_len) digit tokens padded with PAD; tgt
    (n, max_len + 2) = BOS, the reversed or sorted digits, EOS, then PAD. Tokens:
    PAD=0, BOS=1, EOS=2, digit d = d + 3; vocab is the list of token names."""
    if task not in ("reverse", "sort"):
        raise ValueError(f"seq2seq_digits: task must be 'reverse' or 'sort', got {task!r}")
    if not 1 <= min_len <= max_len:
        raise ValueError(f"seq2seq_digits: need 1 <= min_len <= max_len, got {min_len}, {max_len}")
    rng = np.random.default_rng(seed)
    src = np.full((n, max_len), PAD, np.int64)
    tgt = np.full((n, max_len + 2), PAD, np.int64)
    lengths = rng.integers(min_len, max_len + 1, size=n)
    for i, L in enumerate(lengths):
        digits = rng.integers(0, 10, size=L)
        out = digits[::-1] if task == "reverse" else np.sort(digits)
        src[i, :L] = digits + 3
        tgt[i, 0] = BOS
        tgt[i, 1:L + 1] = out + 3
        tgt[i, L + 1] = EOS
    vocab = ["<pad>", "<bos>", "<eos>"] + [str(d) for d in range(10)]
    return src, tgt, vocab


def planted_cluster_corpus(n_clusters: int = 10, words_per_cluster: int = 8, n_sentences: int = 4000,
                           sentence_len: int = 12, n_filler: int = 20, filler_rate: float = 0.3,
                           seed: int = 0):
    """(sentences, clusters): each sentence draws its words from one planted cluster,
    mixed with filler words shared by all (rate `filler_rate`, Zipf-like frequencies so
    subsampling has work to do). Words are named 'c{k}w{j}' and 'f{j}'; clusters maps
    each clustered word to its cluster id."""
    rng = np.random.default_rng(seed)
    cluster_words = [[f"c{k}w{j}" for j in range(words_per_cluster)] for k in range(n_clusters)]
    fillers = [f"f{j}" for j in range(n_filler)]
    zipf = 1.0 / np.arange(1, n_filler + 1)
    zipf /= zipf.sum()
    sentences = []
    for _ in range(n_sentences):
        k = rng.integers(n_clusters)
        own = rng.integers(words_per_cluster, size=sentence_len)
        is_filler = rng.random(sentence_len) < filler_rate
        fill = rng.choice(n_filler, size=sentence_len, p=zipf)
        sentences.append([fillers[f] if is_filler[i] else cluster_words[k][own[i]]
                          for i, f in enumerate(fill)])
    clusters = {w: k for k, ws in enumerate(cluster_words) for w in ws}
    return sentences, clusters


def first_token_task(n: int, length: int = 60, n_classes: int = 4, n_noise: int = 8, seed: int = 0):
    """(tokens, labels, vocab_size): tokens (n, length); token 0 is the label's own
    token (ids 0..n_classes-1), the rest uniform noise (ids n_classes..n_classes+n_noise-1).
    A model reading left to right must carry the first token across length-1 steps."""
    if length < 2:
        raise ValueError(f"first_token_task: length must be at least 2, got {length}")
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, n_classes, size=n).astype(np.int64)
    tokens = rng.integers(n_classes, n_classes + n_noise, size=(n, length)).astype(np.int64)
    tokens[:, 0] = labels
    return tokens, labels, n_classes + n_noise
