"""PyTorch twin of pydl's Word2Vec (pydl/models/word2vec.py): the same two embedding
tables loaded from pydl's state dict, the same negative-sampling loss, the same
batches (drawn once by pydl's sampler) and Adam.

    python benchmarks/twins/word2vec.py     # prints both losses for 20 steps
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as TF


class TorchWord2Vec(torch.nn.Module):
    def __init__(self, vocab_size, dim, mode="skipgram"):
        super().__init__()
        self.mode = mode
        self.in_embed = torch.nn.Embedding(vocab_size, dim)
        self.out_embed = torch.nn.Embedding(vocab_size, dim)

    def forward(self, inputs, targets, negatives):
        if self.mode == "skipgram":
            h = self.in_embed(inputs)
        else:
            m = (inputs >= 0).to(self.in_embed.weight.dtype).unsqueeze(-1)
            h = (self.in_embed(inputs.clamp(min=0)) * m).sum(1) / m.sum(1).clamp(min=1.0)
        words = self.out_embed(torch.cat([targets[:, None], negatives], 1))
        logits = (words @ h.unsqueeze(-1)).squeeze(-1)
        labels = torch.zeros_like(logits)
        labels[:, 0] = 1.0
        return TF.binary_cross_entropy_with_logits(logits, labels, reduction="sum") / len(logits)


def twin_losses(steps=20, seed=0, mode="skipgram", dim=16, batch_size=64, lr=1e-2):
    import pydl
    from pydl.models.word2vec import Word2Vec
    from pydl.recipes.word2vec import load_corpus

    tok, sentences, _ = load_corpus(seed=seed)
    pydl.manual_seed(seed)
    model = Word2Vec(tok.itos, tok.counts, dim=dim, mode=mode)
    with pydl.no_grad():  # word2vec starts the output table at zero; perturb it so every term is live
        model.out_embed.weight.uniform_(-0.1, 0.1)
    twin = TorchWord2Vec(len(tok), dim, mode)
    twin.load_state_dict({k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()})
    opt = pydl.optim.Adam(model.parameters(), lr=lr)
    topt = torch.optim.Adam(twin.parameters(), lr=lr)
    rng = np.random.default_rng(seed)
    ours, theirs = [], []
    for _, (a, b, neg) in zip(range(steps), model.batches(sentences, batch_size, rng)):
        loss = model(a, b, neg)
        opt.zero_grad()
        loss.backward()
        opt.step()
        tloss = twin(torch.tensor(a), torch.tensor(b), torch.tensor(neg))
        topt.zero_grad()
        tloss.backward()
        topt.step()
        ours.append(loss.item())
        theirs.append(tloss.item())
    return ours, theirs


if __name__ == "__main__":
    for mode in ("skipgram", "cbow"):
        a, b = twin_losses(mode=mode)
        print(mode)
        for i, (x, y) in enumerate(zip(a, b)):
            print(f"  step {i:2d}  pydl {x:.6f}  torch {y:.6f}  rel {abs(x - y) / abs(y):.2e}")
