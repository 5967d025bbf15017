"""MultiheadAttention, TransformerEncoderLayer / DecoderLayer and their stacks against
PyTorch with copied weights: forward, input gradients and every parameter gradient, in
eval mode (dropout off), batch_first both ways, with causal, bool, float and key-padding
masks; initialisation; bad input."""
import math

import numpy as np
import pytest
import torch

import pydl
import pydl.nn as nn
from helpers import assert_close, fresh_rng

TORCH = {np.float32: torch.float32, np.float64: torch.float64}
TOL = {np.float32: (5e-5, 5e-4), np.float64: (1e-9, 1e-7)}


def _copy_weights(pm, tm, dtype, device):
    sd = {k: v.detach().numpy().astype(dtype) for k, v in tm.state_dict().items()}
    pm.load_state_dict(sd)
    pm.to(device)
    assert list(pm.state_dict().keys()) == list(tm.state_dict().keys())


def _inputs(shapes, dtype, device, rng):
    arrs = [rng.standard_normal(s) for s in shapes]
    p = [pydl.tensor(a.astype(dtype), device=device, requires_grad=True) for a in arrs]
    t = [torch.tensor(a, dtype=TORCH[dtype], requires_grad=True) for a in arrs]
    return p, t


def _backward_and_compare(pm, tm, p_outs, t_outs, p_in, t_in, dtype, rng, what):
    atol, rtol = TOL[dtype]
    pl = tl = 0
    for i, (po, to) in enumerate(zip(p_outs, t_outs)):
        if to is None:
            assert po is None, f"{what}: output {i} should be None"
            continue
        assert tuple(po.shape) == tuple(to.shape), f"{what}: output {i} shape"
        assert_close(po, to, atol, rtol, f"{what}: output {i}")
        w = rng.standard_normal(tuple(to.shape))
        pl = pl + (po * pydl.tensor(w.astype(dtype), device=po.device)).sum()
        tl = tl + (to * torch.tensor(w, dtype=to.dtype)).sum()
    pl.backward()
    tl.backward()
    for i, (a, b) in enumerate(zip(p_in, t_in)):
        assert_close(a.grad, b.grad, atol * 4, rtol * 4, f"{what}: grad of input {i}")
    tparams = dict(tm.named_parameters())
    for name, p in pm.named_parameters():
        assert p.grad is not None, f"{what}: no gradient for {name}"
        assert_close(p.grad, tparams[name].grad, atol * 4, rtol * 4, f"{what}: grad of {name}")


def _mask(kind, n, h, L, S, rng):
    """(attn_mask, key_padding_mask, is_causal) as numpy arrays in PyTorch's MHA sense
    (bool True = masked out)."""
    if kind == "none":
        return None, None, False
    if kind == "key_padding":
        lens = rng.integers(1, S + 1, size=n)
        return None, np.arange(S)[None, :] >= lens[:, None], False
    if kind == "bool":
        m = rng.random((L, S)) < 0.3
        m[:, 0] = False
        return m, None, False
    if kind == "float3d":
        return rng.standard_normal((n * h, L, S)), None, False
    if kind == "causal":
        return np.triu(np.ones((L, S), bool), 1), None, True
    if kind == "causal+padding":
        lens = rng.integers(L, S + 1, size=n) if S >= L else np.full(n, S)
        return np.triu(np.ones((L, S), bool), 1), np.arange(S)[None, :] >= lens[:, None], True
    raise ValueError(kind)


def _to_pair(a, dtype, device):
    if a is None:
        return None, None
    a = np.asarray(a)
    a = a if a.dtype == np.bool_ else a.astype(dtype)
    return pydl.tensor(a, device=device), torch.tensor(a)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("need_weights", [False, True])
@pytest.mark.parametrize("mask", ["none", "key_padding", "bool", "float3d", "causal",
                                  "causal+padding"])
def test_mha_self_attention(device, mask, need_weights, batch_first, dtype):
    rng = fresh_rng()
    e, h, n, L = 32, 4, 3, 13
    torch.manual_seed(int(rng.integers(1 << 30)))
    tm = torch.nn.MultiheadAttention(e, h, batch_first=batch_first, dtype=TORCH[dtype]).eval()
    pm = nn.MultiheadAttention(e, h, batch_first=batch_first, dtype=dtype).eval()
    _copy_weights(pm, tm, dtype, device)
    shape = (n, L, e) if batch_first else (L, n, e)
    (px,), (tx,) = _inputs([shape], dtype, device, rng)
    am, kpm, causal = _mask(mask, n, h, L, L, rng)
    pam, tam = _to_pair(am, dtype, device)
    pkpm, tkpm = _to_pair(kpm, dtype, device)
    po = pm(px, px, px, key_padding_mask=pkpm, need_weights=need_weights, attn_mask=pam,
            is_causal=causal)
    to = tm(tx, tx, tx, key_padding_mask=tkpm, need_weights=need_weights, attn_mask=tam,
            is_causal=causal)
    _backward_and_compare(pm, tm, po, to, [px], [tx], dtype, rng, f"MHA self mask={mask}")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("kind", ["cross", "kvdim", "nobias", "per_head_weights", "unbatched"])
def test_mha_variants(device, kind, batch_first):
    dtype = np.float64
    rng = fresh_rng()
    e, h, n, L, S = 24, 3, 2, 7, 11
    kw = {}
    if kind == "kvdim":
        kw = dict(kdim=10, vdim=14)
    if kind == "nobias":
        kw = dict(bias=False)
    torch.manual_seed(int(rng.integers(1 << 30)))
    tm = torch.nn.MultiheadAttention(e, h, batch_first=batch_first, dtype=torch.float64, **kw).eval()
    pm = nn.MultiheadAttention(e, h, batch_first=batch_first, dtype=dtype, **kw).eval()
    _copy_weights(pm, tm, dtype, device)
    kd, vd = kw.get("kdim", e), kw.get("vdim", e)
    if kind == "unbatched":
        shapes = [(L, e), (S, kd), (S, vd)]
    elif batch_first:
        shapes = [(n, L, e), (n, S, kd), (n, S, vd)]
    else:
        shapes = [(L, n, e), (S, n, kd), (S, n, vd)]
    p, t = _inputs(shapes, dtype, device, rng)
    avg = kind != "per_head_weights"
    for need in (False, True):
        for a in p + t:
            a.grad = None
        tm.zero_grad()
        pm.zero_grad()
        po = pm(*p, need_weights=need, average_attn_weights=avg)
        to = tm(*t, need_weights=need, average_attn_weights=avg)
        _backward_and_compare(pm, tm, po, to, p, t, dtype, rng, f"MHA {kind} need={need}")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_encoder_layer(device, activation, norm_first, batch_first):
    dtype = np.float64
    rng = fresh_rng()
    d, h, ff, n, L = 32, 4, 48, 2, 9
    torch.manual_seed(int(rng.integers(1 << 30)))
    tm = torch.nn.TransformerEncoderLayer(d, h, ff, dropout=0.1, activation=activation,
                                          batch_first=batch_first, norm_first=norm_first,
                                          dtype=torch.float64).eval()
    pm = nn.TransformerEncoderLayer(d, h, ff, dropout=0.1, activation=activation,
                                    batch_first=batch_first, norm_first=norm_first,
                                    dtype=dtype).eval()
    _copy_weights(pm, tm, dtype, device)
    (px,), (tx,) = _inputs([(n, L, d) if batch_first else (L, n, d)], dtype, device, rng)
    am, kpm, causal = _mask("causal+padding", n, h, L, L, rng)
    kpm = np.zeros((n, L), bool)
    kpm[0, -3:] = True
    pam, tam = _to_pair(am, dtype, device)
    pk, tk = _to_pair(kpm, dtype, device)
    po = pm(px, src_mask=pam, src_key_padding_mask=pk, is_causal=True)
    to = tm(tx, src_mask=tam, src_key_padding_mask=tk, is_causal=True)
    _backward_and_compare(pm, tm, [po], [to], [px], [tx], dtype, rng, "encoder layer")


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer(device, norm_first, batch_first):
    dtype = np.float64
    rng = fresh_rng()
    d, h, ff, n, L, S = 16, 2, 40, 3, 6, 10
    torch.manual_seed(int(rng.integers(1 << 30)))
    tm = torch.nn.TransformerDecoderLayer(d, h, ff, dropout=0.2, activation="gelu",
                                          batch_first=batch_first, norm_first=norm_first,
                                          dtype=torch.float64).eval()
    pm = nn.TransformerDecoderLayer(d, h, ff, dropout=0.2, activation="gelu",
                                    batch_first=batch_first, norm_first=norm_first,
                                    dtype=dtype).eval()
    _copy_weights(pm, tm, dtype, device)
    shapes = [(n, L, d), (n, S, d)] if batch_first else [(L, n, d), (S, n, d)]
    p, t = _inputs(shapes, dtype, device, rng)
    causal = np.triu(np.ones((L, L), bool), 1)
    mkpm = np.zeros((n, S), bool)
    mkpm[1, -4:] = True
    pc, tc = _to_pair(causal, dtype, device)
    pk, tk = _to_pair(mkpm, dtype, device)
    po = pm(*p, tgt_mask=pc, memory_key_padding_mask=pk, tgt_is_causal=True)
    to = tm(*t, tgt_mask=tc, memory_key_padding_mask=tk, tgt_is_causal=True)
    _backward_and_compare(pm, tm, [po], [to], p, t, dtype, rng, "decoder layer")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_encoder_decoder_stacks(device, dtype):
    rng = fresh_rng()
    d, h, ff, n, L, S = 16, 4, 32, 2, 5, 8
    torch.manual_seed(int(rng.integers(1 << 30)))
    td = TORCH[dtype]
    tenc = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(d, h, ff, batch_first=True, dtype=td), 2,
        norm=torch.nn.LayerNorm(d, dtype=td), enable_nested_tensor=False).eval()
    tdec = torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(d, h, ff, batch_first=True, dtype=td), 3,
        norm=torch.nn.LayerNorm(d, dtype=td)).eval()
    penc = nn.TransformerEncoder(nn.TransformerEncoderLayer(d, h, ff, batch_first=True, dtype=dtype),
                                 2, norm=nn.LayerNorm(d, dtype=dtype)).eval()
    pdec = nn.TransformerDecoder(nn.TransformerDecoderLayer(d, h, ff, batch_first=True, dtype=dtype),
                                 3, norm=nn.LayerNorm(d, dtype=dtype)).eval()
    _copy_weights(penc, tenc, dtype, device)
    _copy_weights(pdec, tdec, dtype, device)
    p, t = _inputs([(n, S, d), (n, L, d)], dtype, device, rng)
    causal = np.triu(np.ones((L, L), bool), 1)
    pc, tc = _to_pair(causal, dtype, device)
    po = pdec(p[1], penc(p[0]), tgt_mask=pc, tgt_is_causal=True)
    to = tdec(t[1], tenc(t[0]), tgt_mask=tc, tgt_is_causal=True)

    class Both:
        def __init__(self, a, b):
            self.a, self.b = a, b

        def named_parameters(self):
            yield from (("enc." + k, v) for k, v in self.a.named_parameters())
            yield from (("dec." + k, v) for k, v in self.b.named_parameters())

    _backward_and_compare(Both(penc, pdec), Both(tenc, tdec), [po], [to], p, t, dtype, rng,
                          "encoder-decoder")


def test_mha_initialisation_matches_pytorch():
    e = 64
    m = nn.MultiheadAttention(e, 8)
    assert not np.any(m.in_proj_bias.detach().numpy())
    assert not np.any(m.out_proj.bias.detach().numpy())
    w = m.in_proj_weight.detach().numpy()
    bound = math.sqrt(6.0 / (e + 3 * e))  # xavier_uniform_ over the (3E, E) weight
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    ow = m.out_proj.weight.detach().numpy()
    assert np.abs(ow).max() <= 1 / math.sqrt(e) and np.abs(ow).max() > 0.9 / math.sqrt(e)
    m2 = nn.MultiheadAttention(e, 8, kdim=16, vdim=32)
    assert m2.in_proj_weight is None and m2.k_proj_weight.shape == (e, 16)


def test_mha_dropout_in_training_only(device):
    rng = fresh_rng()
    m = nn.MultiheadAttention(16, 2, dropout=0.5).to(device)
    x = pydl.tensor(rng.standard_normal((6, 2, 16)).astype(np.float32), device=device)
    a = m(x, x, x, need_weights=False)[0].detach().numpy()
    b = m(x, x, x, need_weights=False)[0].detach().numpy()
    assert not np.allclose(a, b)
    m.eval()
    a = m(x, x, x, need_weights=False)[0].detach().numpy()
    b = m(x, x, x, need_weights=True)[0].detach().numpy()
    np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-5)


def test_mha_bad_input(device):
    with pytest.raises(ValueError, match="MultiheadAttention.*divisible"):
        nn.MultiheadAttention(10, 3)
    with pytest.raises(NotImplementedError, match="MultiheadAttention"):
        nn.MultiheadAttention(8, 2, add_bias_kv=True)
    m = nn.MultiheadAttention(8, 2).to(device)
    x = pydl.tensor(np.ones((5, 2, 8), np.float32), device=device)
    with pytest.raises(ValueError, match="MultiheadAttention.*attn_mask"):
        m(x, x, x, attn_mask=pydl.tensor(np.zeros((4, 5), bool), device=device))
    with pytest.raises(ValueError, match="MultiheadAttention.*key_padding_mask"):
        m(x, x, x, key_padding_mask=pydl.tensor(np.zeros((2, 4), bool), device=device))
    with pytest.raises(TypeError, match="MultiheadAttention.*attn_mask"):
        m(x, x, x, attn_mask=pydl.tensor(np.zeros((5, 5), np.int64), device=device))
    with pytest.raises(ValueError, match="MultiheadAttention.*embedding dim"):
        y = pydl.tensor(np.ones((5, 2, 6), np.float32), device=device)
        m(y, y, y)
    with pytest.raises(RuntimeError, match="MultiheadAttention.*is_causal"):
        m(x, x, x, is_causal=True)
    with pytest.raises(RuntimeError, match="activation"):
        nn.TransformerEncoderLayer(8, 2, activation="tanh")
