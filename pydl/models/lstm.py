"""LSTM family: a character-level language model and a sequence classifier."""
from __future__ import annotations

from .. import nn
from ..autograd.grad_mode import no_grad


def set_forget_bias(rnn, value: float) -> None:
    """Sets the forget-gate slice of every bias_hh of an LSTM to `value` (bias_ih keeps its
    initial values). A large forget bias keeps the cell state, and its gradient, alive over
    long sequences from the first step on."""
    h = rnn.hidden_size
    with no_grad():
        for name, p in rnn.named_parameters():
            if name.startswith("bias_hh"):
                p[h:2 * h] = value


class CharLM(nn.Module):
    """Embedding -> LSTM -> Linear: next-token logits (B, T, vocab) for tokens (B, T)."""

    def __init__(self, vocab_size: int, embed_dim: int = 64, hidden_size: int = 256,
                 num_layers: int = 1, dropout: float = 0.0, forget_bias=None):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                            dropout=dropout)
        self.head = nn.Linear(hidden_size, vocab_size)
        if forget_bias is not None:
            set_forget_bias(self.lstm, forget_bias)

    def forward(self, tokens, state=None):
        out, state = self.lstm(self.embed(tokens), state)
        return self.head(out), state


class SequenceClassifier(nn.Module):
    """Embedding -> LSTM (or GRU) -> Linear on the last layer's final hidden state
    (both directions' when bidirectional): class logits (B, n_classes) for tokens (B, T)."""

    def __init__(self, vocab_size: int, n_classes: int, embed_dim: int = 16, hidden_size: int = 64,
                 num_layers: int = 1, bidirectional: bool = False, cell: str = "lstm",
                 forget_bias=None):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ValueError(f"SequenceClassifier: cell must be 'lstm' or 'gru', got {cell!r}")
        self.embed = nn.Embedding(vocab_size, embed_dim)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(embed_dim, hidden_size, num_layers=num_layers, batch_first=True,
                       bidirectional=bidirectional)
        self.d = 2 if bidirectional else 1
        self.head = nn.Linear(hidden_size * self.d, n_classes)
        if forget_bias is not None and cell == "lstm":
            set_forget_bias(self.rnn, forget_bias)

    def forward(self, tokens):
        _, state = self.rnn(self.embed(tokens))
        h = state[0] if isinstance(state, tuple) else state
        last = h[-1] if self.d == 1 else h[-2:].transpose(0, 1).reshape(h.shape[1], -1)
        return self.head(last)
