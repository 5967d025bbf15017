"""PyTorch twin of pydl's LSTM family (pydl/models/lstm.py): the same architecture,
initial weights loaded from pydl's state dict, the same batches and optimiser, so
the two loss curves can be compared step by step.

    python benchmarks/twins/lstm.py     # prints both losses for 20 steps
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF


class TorchCharLM(torch.nn.Module):
    def __init__(self, vocab_size, embed_dim=64, hidden_size=256, num_layers=1):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embed_dim)
        self.lstm = torch.nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, batch_first=True)
        self.head = torch.nn.Linear(hidden_size, vocab_size)

    def forward(self, tokens):
        out, state = self.lstm(self.embed(tokens))
        return self.head(out), state


class TorchSequenceClassifier(torch.nn.Module):
    def __init__(self, vocab_size, n_classes, embed_dim=16, hidden_size=64):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab_size, embed_dim)
        self.rnn = torch.nn.LSTM(embed_dim, hidden_size, batch_first=True)
        self.head = torch.nn.Linear(hidden_size, n_classes)

    def forward(self, tokens):
        _, (h, _) = self.rnn(self.embed(tokens))
        return self.head(h[-1])


def _load(twin, model):
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})


def twin_losses(steps=20, seed=0, batch_size=8, seq_len=32, hidden_size=64, lr=3e-3):
    """(pydl losses, torch losses) of the character LM over `steps` Adam steps on the
    same windows of the pydoc text."""
    import pydl
    import pydl.nn.functional as F
    from pydl.data import CharTokenizer, load_pydoc_text
    from pydl.models.lstm import CharLM
    from pydl.recipes.lstm import lm_batch

    text = load_pydoc_text()[:50000]
    tok = CharTokenizer(text)
    ids = tok.encode(text)
    pydl.manual_seed(seed)
    model = CharLM(len(tok), embed_dim=16, hidden_size=hidden_size, forget_bias=1.0)
    twin = TorchCharLM(len(tok), embed_dim=16, hidden_size=hidden_size)
    _load(twin, model)
    opt = pydl.optim.Adam(model.parameters(), lr=lr)
    topt = torch.optim.Adam(twin.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for _ in range(steps):
        xb, yb = lm_batch(ids, batch_size, seq_len, rng)
        logits, _ = model(pydl.tensor(xb))
        loss = F.cross_entropy(logits.reshape(-1, len(tok)), pydl.tensor(yb.reshape(-1)))
        opt.zero_grad()
        loss.backward()
        opt.step()
        tlogits, _ = twin(torch.tensor(xb))
        tloss = TF.cross_entropy(tlogits.reshape(-1, len(tok)), torch.tensor(yb.reshape(-1)))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        ours.append(loss.item())
        theirs.append(tloss.item())
    return ours, theirs


def classifier_twin_losses(steps=20, seed=0, batch_size=16, length=55, hidden_size=16, lr=1e-2):
    """(pydl losses, torch losses) of the first-token sequence classifier."""
    import pydl
    import pydl.nn.functional as F
    from pydl.data import first_token_task
    from pydl.models.lstm import SequenceClassifier

    tokens, labels, vocab = first_token_task(512, length=length, seed=seed)
    pydl.manual_seed(seed)
    model = SequenceClassifier(vocab, 4, embed_dim=8, hidden_size=hidden_size, forget_bias=4.0)
    twin = TorchSequenceClassifier(vocab, 4, embed_dim=8, hidden_size=hidden_size)
    _load(twin, model)
    opt = pydl.optim.Adam(model.parameters(), lr=lr)
    topt = torch.optim.Adam(twin.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for _ in range(steps):
        idx = rng.integers(0, len(tokens), size=batch_size)
        loss = F.cross_entropy(model(pydl.tensor(tokens[idx])), pydl.tensor(labels[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = TF.cross_entropy(twin(torch.tensor(tokens[idx])), torch.tensor(labels[idx]))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        ours.append(loss.item())
        theirs.append(tloss.item())
    return ours, theirs


if __name__ == "__main__":
    for name, fn in (("char LM", twin_losses), ("classifier", classifier_twin_losses)):
        a, b = fn()
        print(name)
        for i, (x, y) in enumerate(zip(a, b)):
            print(f"  step {i:2d}  pydl {x:.6f}  torch {y:.6f}  rel {abs(x - y) / abs(y):.2e}")
