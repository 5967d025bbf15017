"""Transformer family: an encoder-decoder Transformer (Vaswani et al.) for sequence to
sequence tasks, with padding and causal masks, a tied or separate output projection and
greedy decoding.

Layout is batch-first: src (N, S) and tgt (N, T) token ids; logits (N, T, vocab).
Parameter names: embed (shared by source and target), encoder.layers.i.*,
decoder.layers.i.* (PyTorch's Transformer layer names), encoder.norm, decoder.norm, and
either out_bias (tied: logits = h @ embed.weight^T + out_bias) or out (a separate Linear).
"""
from __future__ import annotations

import math

import numpy as np

from .. import nn
from ..autograd.grad_mode import no_grad
from ..nn import functional as F
from ..tensor import tensor, zeros

OP = "Seq2SeqTransformer"


def sinusoidal_encoding(max_len: int, d_model: int) -> np.ndarray:
    """(max_len, d_model) float32: sin on even features, cos on odd, wavelengths from 2*pi
    to 10000*2*pi."""
    pos = np.arange(max_len, dtype=np.float64)[:, None]
    div = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
    pe = np.zeros((max_len, d_model), np.float64)
    pe[:, 0::2] = np.sin(pos * div)
    pe[:, 1::2] = np.cos(pos * div)[:, :d_model // 2]
    return pe.astype(np.float32)


def causal_mask(length: int, device=None):
    """(length, length) bool mask, True above the diagonal: position i may not attend to
    positions after i (PyTorch's bool-mask sense: True = masked out)."""
    return tensor(np.triu(np.ones((length, length), dtype=bool), 1), device=device)


class Seq2SeqTransformer(nn.Module):
    """Embedding * sqrt(d_model) + sinusoidal positions -> TransformerEncoder over src;
    the same for tgt -> TransformerDecoder (causal self-attention, cross-attention over
    the encoder's memory) -> output projection to the vocabulary. PAD positions of src are
    hidden from every attention through key padding masks; PAD in tgt from self-attention."""

    def __init__(self, vocab_size: int, d_model: int = 64, nhead: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2,
                 dim_feedforward: int = 256, dropout: float = 0.1, max_len: int = 128,
                 tie_weights: bool = True, pad_idx: int = 0, bos_idx: int = 1, eos_idx: int = 2,
                 norm_first: bool = False):
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("d_model", d_model), ("nhead", nhead),
                        ("max_len", max_len)):
            if v <= 0:
                raise ValueError(f"{OP}: {name} must be positive, got {v}")
        for name, v in (("pad_idx", pad_idx), ("bos_idx", bos_idx), ("eos_idx", eos_idx)):
            if not 0 <= v < vocab_size:
                raise ValueError(f"{OP}: {name} {v} is outside the vocabulary [0, {vocab_size})")
        self.vocab_size, self.d_model, self.max_len = vocab_size, d_model, max_len
        self.pad_idx, self.bos_idx, self.eos_idx = pad_idx, bos_idx, eos_idx
        self.tie_weights = tie_weights
        self.embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_idx)
        with no_grad():  # unit-variance inputs after the sqrt(d_model) scale; tied logits O(1)
            nn.init.normal_(self.embed.weight, 0.0, d_model ** -0.5)
            self.embed.weight[pad_idx] = 0
        self.register_buffer("pe", tensor(sinusoidal_encoding(max_len, d_model)), persistent=False)
        layer_kw = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward,
                        dropout=dropout, batch_first=True, norm_first=norm_first)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(**layer_kw),
                                             num_encoder_layers, norm=nn.LayerNorm(d_model))
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(**layer_kw),
                                             num_decoder_layers, norm=nn.LayerNorm(d_model))
        self.dropout = nn.Dropout(dropout)
        if tie_weights:
            self.out_bias = nn.Parameter(zeros(vocab_size))
        else:
            self.out = nn.Linear(d_model, vocab_size)

    # ---- pieces ------------------------------------------------------------------------
    def _check_tokens(self, name, t):
        if t.ndim != 2:
            raise ValueError(f"{OP}: {name} must be (batch, length) token ids, got shape "
                             f"{tuple(t.shape)}")
        if t.shape[1] > self.max_len:
            raise ValueError(f"{OP}: {name} length {t.shape[1]} exceeds max_len {self.max_len}")

    def _embed(self, tokens):
        x = self.embed(tokens) * math.sqrt(self.d_model)
        return self.dropout(x + self.pe[:tokens.shape[1]])

    def encode(self, src):
        """memory (N, S, d_model) and the source padding mask (N, S), True at PAD."""
        self._check_tokens("src", src)
        src_pad = src == self.pad_idx
        memory = self.encoder(self._embed(src), src_key_padding_mask=src_pad)
        return memory, src_pad

    def decode(self, tgt, memory, src_pad, tgt_pad=None):
        """Logits (N, T, vocab) for the target prefix tgt (N, T) given the encoder memory."""
        self._check_tokens("tgt", tgt)
        T = tgt.shape[1]
        h = self.decoder(self._embed(tgt), memory, tgt_mask=causal_mask(T, device=tgt.device),
                         tgt_key_padding_mask=tgt_pad, memory_key_padding_mask=src_pad,
                         tgt_is_causal=True)
        if self.tie_weights:
            return F.linear(h, self.embed.weight, self.out_bias)
        return self.out(h)

    def forward(self, src, tgt):
        """Teacher forcing: logits (N, T, vocab) predicting tgt[:, 1:] from tgt (the shifted
        target, starting with BOS)."""
        memory, src_pad = self.encode(src)
        return self.decode(tgt, memory, src_pad, tgt_pad=tgt == self.pad_idx)

    def greedy_decode(self, src, max_len: int):
        """(N, <= max_len + 1) int64 numpy tokens: BOS, then the argmax token at each step,
        fed back, until every row has produced EOS or max_len tokens were generated. After a
        row's EOS, its remaining positions are PAD."""
        if max_len + 1 > self.max_len:
            raise ValueError(f"{OP}: greedy_decode max_len {max_len} + BOS exceeds the model's "
                             f"max_len {self.max_len}")
        was_training = self.training
        self.eval()
        try:
            with no_grad():
                memory, src_pad = self.encode(src)
                n = src.shape[0]
                out = np.full((n, 1), self.bos_idx, np.int64)
                done = np.zeros(n, bool)
                for _ in range(max_len):
                    logits = self.decode(tensor(out, device=src.device), memory, src_pad)
                    nxt = logits[:, -1].argmax(dim=-1).numpy().astype(np.int64)
                    nxt = np.where(done, self.pad_idx, nxt)
                    out = np.concatenate([out, nxt[:, None]], axis=1)
                    done |= nxt == self.eos_idx
                    if done.all():
                        break
        finally:
            self.train(was_training)
        return out


def strip_special(tokens, eos_idx: int = 2, bos_idx: int = 1, pad_idx: int = 0) -> list:
    """The tokens of one decoded (or target) row between BOS and the first EOS."""
    row = [int(t) for t in tokens]
    if row and row[0] == bos_idx:
        row = row[1:]
    if eos_idx in row:
        row = row[:row.index(eos_idx)]
    return [t for t in row if t != pad_idx]


def exact_match(decoded, targets, eos_idx: int = 2) -> float:
    """Fraction of rows whose decoded sequence ends with EOS and equals the target exactly."""
    hits = sum(eos_idx in [int(x) for x in d] and strip_special(d, eos_idx) == strip_special(t, eos_idx)
               for d, t in zip(decoded, targets))
    return hits / max(len(targets), 1)
