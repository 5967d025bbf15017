"""Text that ships with Python (the help topics of `pydoc_data.topics`), a user's
own text file, and character and word tokenizers with <unk>, encode and decode."""
from __future__ import annotations

import re
from collections import Counter

import numpy as np

UNK = "<unk>"
_WORD = re.compile(r"[A-Za-z0-9_']+|[^\sA-Za-z0-9_']")


def load_pydoc_text() -> str:
    """About 0.46 MB of English prose and code: every pydoc help topic, in a fixed order."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[k] for k in sorted(topics))


def load_text(path=None) -> str:
    """The text of a UTF-8 file at `path` (the documented format for a user's own
    corpus: plain text, any length), or the bundled pydoc text when path is None."""
    if path is None:
        return load_pydoc_text()
    with open(path, encoding="utf-8") as f:
        return f.read()


def split_text(text: str, held_out: float = 0.1):
    """(train, held-out): the last `held_out` fraction is held out (no shuffling of text)."""
    if not 0.0 < held_out < 1.0:
        raise ValueError(f"split_text: held_out must be in (0, 1), got {held_out}")
    cut = int(len(text) * (1 - held_out))
    return text[:cut], text[cut:]


class _Vocab:
    def __init__(self, tokens, min_freq: int = 1, max_size=None):
        counts = Counter(tokens)
        kept = sorted((t for t, c in counts.items() if c >= min_freq and t != UNK),
                      key=lambda t: (-counts[t], t))
        if max_size is not None:
            kept = kept[:max(0, max_size - 1)]
        self.itos = [UNK] + kept
        self.stoi = {t: i for i, t in enumerate(self.itos)}
        self.counts = np.array([0] + [counts[t] for t in kept], dtype=np.int64)
        self.counts[0] = sum(c for t, c in counts.items() if t not in self.stoi or t == UNK)

    def __len__(self):
        return len(self.itos)

    @property
    def unk_index(self) -> int:
        return 0

    def ids(self, tokens) -> np.ndarray:
        get = self.stoi.get
        return np.fromiter((get(t, 0) for t in tokens), dtype=np.int64)


class CharTokenizer(_Vocab):
    """One id per character; id 0 is <unk> for characters not seen when building."""

    def __init__(self, text: str, min_freq: int = 1):
        super().__init__(text, min_freq)

    def encode(self, text: str) -> np.ndarray:
        return self.ids(text)

    def decode(self, ids) -> str:
        return "".join(self.itos[int(i)] if int(i) else "\ufffd" for i in np.asarray(ids).reshape(-1))


class WordTokenizer(_Vocab):
    """Words (letters, digits, _ and ') and single punctuation marks, optionally
    lower-cased; id 0 is <unk>. decode joins tokens with spaces."""

    def __init__(self, text: str, min_freq: int = 1, max_size=None, lower: bool = True):
        self.lower = lower
        super().__init__(self.tokenize(text), min_freq, max_size)

    def tokenize(self, text: str) -> list:
        return _WORD.findall(text.lower() if self.lower else text)

    def encode(self, text: str) -> np.ndarray:
        return self.ids(self.tokenize(text))

    def decode(self, ids) -> str:
        return " ".join(self.itos[int(i)] for i in np.asarray(ids).reshape(-1))
