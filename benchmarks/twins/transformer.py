"""PyTorch twin of pydl's Transformer family (pydl/models/transformer.py): the same
encoder-decoder built from torch.nn.Transformer{Encoder,Decoder}Layer (same parameter
names), initial weights loaded from pydl's state dict, dropout 0, the same batches of
the digit-reversal task and the same optimiser and schedule, so the two loss curves can
be compared step by step.

    python benchmarks/twins/transformer.py     # prints both losses for 20 steps
"""
from __future__ import annotations

import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as TF  # noqa: E402


class TorchSeq2SeqTransformer(torch.nn.Module):
    def __init__(self, vocab_size, d_model=64, nhead=4, num_encoder_layers=2,
                 num_decoder_layers=2, dim_feedforward=256, dropout=0.0, max_len=128,
                 tie_weights=True, pad_idx=0):
        super().__init__()
        from pydl.models.transformer import sinusoidal_encoding

        self.d_model, self.pad_idx, self.tie_weights = d_model, pad_idx, tie_weights
        self.embed = torch.nn.Embedding(vocab_size, d_model, padding_idx=pad_idx)
        self.register_buffer("pe", torch.from_numpy(sinusoidal_encoding(max_len, d_model)),
                             persistent=False)
        kw = dict(d_model=d_model, nhead=nhead, dim_feedforward=dim_feedforward, dropout=dropout,
                  batch_first=True)
        self.encoder = torch.nn.TransformerEncoder(torch.nn.TransformerEncoderLayer(**kw),
                                                   num_encoder_layers,
                                                   norm=torch.nn.LayerNorm(d_model),
                                                   enable_nested_tensor=False)
        self.decoder = torch.nn.TransformerDecoder(torch.nn.TransformerDecoderLayer(**kw),
                                                   num_decoder_layers,
                                                   norm=torch.nn.LayerNorm(d_model))
        self.dropout = torch.nn.Dropout(dropout)
        if tie_weights:
            self.out_bias = torch.nn.Parameter(torch.zeros(vocab_size))
        else:
            self.out = torch.nn.Linear(d_model, vocab_size)

    def _embed(self, tokens):
        return self.dropout(self.embed(tokens) * math.sqrt(self.d_model) + self.pe[:tokens.shape[1]])

    def forward(self, src, tgt):
        src_pad = src == self.pad_idx
        memory = self.encoder(self._embed(src), src_key_padding_mask=src_pad)
        T = tgt.shape[1]
        causal = torch.triu(torch.ones(T, T, dtype=torch.bool, device=tgt.device), 1)
        h = self.decoder(self._embed(tgt), memory, tgt_mask=causal,
                         tgt_key_padding_mask=tgt == self.pad_idx,
                         memory_key_padding_mask=src_pad, tgt_is_causal=True)
        if self.tie_weights:
            return TF.linear(h, self.embed.weight, self.out_bias)
        return self.out(h)


def twin_from(model) -> TorchSeq2SeqTransformer:
    """The torch twin of a pydl Seq2SeqTransformer, weights loaded from its state dict."""
    layer = model.encoder.layers[0]
    twin = TorchSeq2SeqTransformer(
        model.vocab_size, d_model=model.d_model, nhead=layer.self_attn.num_heads,
        num_encoder_layers=len(model.encoder.layers), num_decoder_layers=len(model.decoder.layers),
        dim_feedforward=layer.linear1.out_features, dropout=0.0, max_len=model.max_len,
        tie_weights=model.tie_weights, pad_idx=model.pad_idx)
    state = {k: torch.tensor(v.numpy()) for k, v in model.state_dict().items()}
    twin.load_state_dict(state, strict=True)
    return twin


def twin_losses(steps=20, seed=0, batch_size=16, tie_weights=True, **options):
    """(pydl losses, torch losses) over `steps` Adam steps (the recipe's optimiser, warmup
    and gradient clipping) on the same batches; dropout 0 on both sides."""
    import pydl
    from pydl.recipes import transformer as recipe
    from pydl.recipes._common import batches

    cfg = dict(recipe.DEFAULTS, n_train=max(steps * batch_size, 64), n_test=8, dropout=0.0,
               tie_weights=tie_weights, batch_size=batch_size)
    cfg.update(options)
    src, tgt, _, _, vocab = recipe.make_data(cfg, seed)
    pydl.manual_seed(seed)
    model = recipe.build(cfg, len(vocab))
    twin = twin_from(model)
    opt = pydl.optim.Adam(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.98))
    topt = torch.optim.Adam(twin.parameters(), lr=cfg["lr"], betas=(0.9, 0.98))
    factor = recipe.warmup_cosine(cfg["warmup"], 10 * steps)
    sched = pydl.optim.lr_scheduler.LambdaLR(opt, factor)
    tsched = torch.optim.lr_scheduler.LambdaLR(topt, factor)
    ours, theirs = [], []
    epoch = 0
    while len(ours) < steps:
        for idx in batches(len(src), batch_size, seed, epoch):
            if len(ours) == steps:
                break
            loss = recipe.loss_fn(model, src[idx], tgt[idx], "cpu")
            opt.zero_grad()
            loss.backward()
            pydl.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            s, t = torch.from_numpy(src[idx]), torch.from_numpy(tgt[idx])
            logits = twin(s, t[:, :-1])
            tloss = TF.cross_entropy(logits.reshape(-1, logits.shape[-1]), t[:, 1:].reshape(-1),
                                     ignore_index=0)
            topt.zero_grad()
            tloss.backward()
            torch.nn.utils.clip_grad_norm_(twin.parameters(), 1.0)
            topt.step()
            tsched.step()
            ours.append(loss.item())
            theirs.append(tloss.item())
        epoch += 1
    return ours, theirs


if __name__ == "__main__":
    a, b = twin_losses()
    for i, (x, y) in enumerate(zip(a, b)):
        print(f"step {i:3d}  pydl {x:.6f}  torch {y:.6f}  rel {abs(x - y) / abs(y):.2e}")
