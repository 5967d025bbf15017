"""The cuda backend's interim conv2d and attention (pydl/backend/xp_conv.py, xp_attention.py),
run here with xp=numpy and NumPy's matmul (pydl.backend.cpu.matmul for the half types, which
like pydl's GEMM accumulates in float32), against the CPU backend's C++ kernels and float64
references: every conv geometry the layers produce, attention with causal, bool and additive
broadcast masks at awkward lengths, several key blocks and query chunks, and dropout
bit-for-bit with the CPU kernel's Philox mask."""
import math

import ml_dtypes
import numpy as np
import pytest

import pydl
from pydl.backend import cpu, rng as prng, xp_attention as xa, xp_conv as xc
from pydl._ops.attention import _mask_view

from helpers import fresh_rng

F32, F64, F16, BF16 = (np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.float16),
                       np.dtype(pydl.bfloat16))


def eps(dtype):
    return float(ml_dtypes.finfo(dtype).eps)


def _gemm(dtype):
    return cpu.matmul if dtype in (F16, BF16) else np.matmul


def _check(out, ref, mag, dtype, what, k=16):
    """|out - ref| <= k * eps(dtype) * mag, mag bounding the terms that made each value."""
    out = np.asarray(out, np.float64)
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    assert np.array_equal(np.isnan(out), np.isnan(ref)), f"{what}: NaN where the reference has none"
    err = np.abs(np.nan_to_num(out - ref, nan=0.0))
    bound = np.broadcast_to(k * eps(dtype) * mag + 1e-300, err.shape)
    worst = (err / bound).argmax()
    assert (err <= bound).all(), f"{what}: error {err.flat[worst]:.3g} > {bound.flat[worst]:.3g}"


# ---- convolution -----------------------------------------------------------------------------

def ref_conv(x, w, stride, pads, dilation, groups, dy=None):
    """float64 tap loops: y, or with dy the gradients (dx, dw). pads: (top, bottom, left, right)."""
    (sh, sw), (pt, pb, pl, pr), (dh, dw) = stride, pads, dilation
    n, c, h, wd = x.shape
    oc, cg, kh, kw = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    oh = (h + pt + pb - dh * (kh - 1) - 1) // sh + 1
    ow = (wd + pl + pr - dw * (kw - 1) - 1) // sw + 1
    ocg = oc // groups
    y, dxp, dwt = np.zeros((n, oc, oh, ow)), np.zeros_like(xpad), np.zeros_like(w)
    for i in range(kh):
        for j in range(kw):
            win = np.s_[:, :, i * dh:i * dh + (oh - 1) * sh + 1:sh, j * dw:j * dw + (ow - 1) * sw + 1:sw]
            patch = xpad[win]
            for g in range(groups):
                o, ci = slice(g * ocg, (g + 1) * ocg), slice(g * cg, (g + 1) * cg)
                if dy is None:
                    y[:, o] += np.einsum("oc,nchw->nohw", w[o, :, i, j], patch[:, ci])
                else:
                    dxp[win][:, ci] += np.einsum("oc,nohw->nchw", w[o, :, i, j], dy[:, o])
                    dwt[o, :, i, j] += np.einsum("nohw,nchw->oc", dy[:, o], patch[:, ci])
    if dy is None:
        return y
    return dxp[:, :, pt:pt + h, pl:pl + wd], dwt


# (N, C, H, W, OC, k, stride, (top, bottom, left, right), dilation, groups)
CONV = [
    (2, 3, 7, 9, 4, 1, 1, (0, 0, 0, 0), 1, 1),     # 1x1: the direct GEMM
    (2, 4, 8, 5, 6, 1, 1, (0, 0, 0, 0), 1, 2),     # 1x1 grouped
    (1, 4, 8, 5, 6, 1, 2, (0, 0, 0, 0), 1, 2),     # 1x1 strided: not direct
    (2, 3, 9, 7, 5, 3, 1, (1, 1, 1, 1), 1, 1),
    (1, 4, 11, 6, 6, 5, 2, (2, 2, 2, 2), 1, 2),
    (2, 6, 9, 9, 6, 3, 1, (2, 2, 2, 2), 2, 6),     # depthwise, dilated
    (1, 6, 10, 7, 12, 3, 2, (1, 1, 1, 1), 1, 6),   # depthwise with a channel multiplier
    (1, 2, 13, 10, 3, 7, 2, (3, 3, 3, 3), 1, 1),
    (2, 4, 9, 8, 4, 4, 1, (1, 2, 1, 2), 1, 2),     # 'same' with an even window: more at the end
    (1, 4, 9, 8, 4, 4, 1, (3, 3, 3, 3), 2, 2),     # 'same', even window, dilated
    (1, 5, 7, 7, 4, 3, 1, (1, 1, 1, 1), 1, 1),     # 'same', odd window
    (2, 3, 6, 5, 2, 3, 1, (0, 0, 0, 0), 1, 1),     # 'valid'
    (1, 4, 17, 19, 8, 3, 2, (1, 1, 1, 1), 1, 4),
    (1, 3, 10, 8, 4, 3, 2, (0, 0, 0, 0), 1, 1),    # stride leaves the last row unread
    (2, 4, 11, 9, 6, (3, 5), (2, 1), (1, 0, 2, 3), (1, 2), 2),  # every pair uneven
    (1, 3, 8, 13, 2, (1, 3), (1, 2), (0, 0, 1, 1), (2, 1), 1),
]


def _conv_case(cfg, dtype):
    n, c, h, w, oc, k, s, pads, d, g = cfg
    k, s, d = ((a, a) if isinstance(a, int) else a for a in (k, s, d))
    r = fresh_rng()
    x, wt = r.standard_normal((n, c, h, w)), r.standard_normal((oc, c // g) + k)
    b = r.standard_normal(oc)
    args = (s, (pads[0], pads[2]), d, g)
    y = ref_conv(x, wt, s, pads, d, g) + b[:, None, None]
    return x, wt, b, args, y, r.standard_normal(y.shape)


@pytest.mark.parametrize("dtype", [F64, F32, F16, BF16], ids=lambda d: d.name)
@pytest.mark.parametrize("cfg", CONV)
def test_conv_matches_float64_and_cpu_kernels(cfg, dtype):
    x, wt, b, args, y, dy = _conv_case(cfg, dtype)
    pads = cfg[7]
    dx_ref, dw_ref = ref_conv(x, wt, args[0], pads, args[2], args[3], dy)
    ay, aw, ady = np.abs(x), np.abs(wt), np.abs(dy)  # magnitudes for the error bounds
    my = ref_conv(ay, aw, args[0], pads, args[2], args[3]) + np.abs(b)[:, None, None]
    mdx, mdw = ref_conv(ay, aw, args[0], pads, args[2], args[3], ady)
    xd, wd, bd, dyd = (a.astype(dtype) for a in (x, wt, b, dy))
    gm = _gemm(dtype)
    outs = {
        "forward": (xc.conv2d_forward(np, gm, xd, wd, bd, *args, y.shape[2:]),
                    cpu.conv2d_forward(xd, wd, bd, *args, y.shape[2:]), y, my),
        "dgrad": (xc.conv2d_backward_input(np, gm, dyd, wd, x.shape, *args),
                  cpu.conv2d_backward_input(dyd, wd, x.shape, *args), dx_ref, mdx),
        "wgrad": (xc.conv2d_backward_weight(np, gm, xd, dyd, wt.shape, *args),
                  cpu.conv2d_backward_weight(xd, dyd, wt.shape, *args), dw_ref, mdw),
    }
    for what, (ours, theirs, ref, mag) in outs.items():
        assert ours.dtype == dtype and ours.shape == ref.shape, what
        _check(ours, ref, mag, dtype, f"{what} vs float64")
        _check(ours, np.asarray(theirs, np.float64), mag, dtype, f"{what} vs the C++ kernel")


@pytest.mark.parametrize("cfg", [CONV[1], CONV[4], CONV[5], CONV[8], CONV[-2]])
def test_conv_chunked_batch_equals_whole(cfg, monkeypatch):
    """A temporary budget of one byte runs every pass one image at a time."""
    cfg = (3,) + cfg[1:]
    x, wt, b, args, y, dy = _conv_case(cfg, F64)
    whole = (xc.conv2d_forward(np, np.matmul, x, wt, b, *args, y.shape[2:]),
             xc.conv2d_backward_input(np, np.matmul, dy, wt, x.shape, *args),
             xc.conv2d_backward_weight(np, np.matmul, x, dy, wt.shape, *args))
    monkeypatch.setattr(xc, "TEMP_BYTES", 1)
    assert len(xc._chunks(xc._geom("t", x.shape, wt.shape, y.shape[2:], *args), 8)) == 3
    chunked = (xc.conv2d_forward(np, np.matmul, x, wt, b, *args, y.shape[2:]),
               xc.conv2d_backward_input(np, np.matmul, dy, wt, x.shape, *args),
               xc.conv2d_backward_weight(np, np.matmul, x, dy, wt.shape, *args))
    for a, c in zip(whole, chunked):
        np.testing.assert_allclose(c, a, rtol=1e-12, atol=1e-12)


def test_conv_1x1_hands_the_arrays_themselves_to_the_gemm():
    r = fresh_rng()
    x, wt, dy = (r.standard_normal(s) for s in ((2, 6, 5, 7), (4, 6, 1, 1), (2, 4, 5, 7)))
    seen = []

    def gemm(a, b):
        seen.append(b)
        return np.matmul(a, b)

    args = ((1, 1), (0, 0), (1, 1), 1)
    xc.conv2d_forward(np, gemm, x, wt, None, *args, (5, 7))
    xc.conv2d_backward_input(np, gemm, dy, wt, x.shape, *args)
    assert np.shares_memory(seen[0], x) and np.shares_memory(seen[1], dy)


def test_conv_rejects_a_weight_that_does_not_fit():
    with pytest.raises(ValueError, match="conv2d: weight"):
        xc.conv2d_forward(np, np.matmul, np.zeros((1, 4, 5, 5)), np.zeros((2, 3, 3, 3)), None,
                          (1, 1), (0, 0), (1, 1), 1, (3, 3))


# ---- attention -------------------------------------------------------------------------------

def ref_attention(q, k, v, mask, scale, causal, keep=None, p=0.0, dout=None):
    """float64 with the whole L x S matrix: out, or with dout (dq, dk, dv). mask: additive,
    broadcast to (B, L, S); keep: the dropout keep mask (B, L, S)."""
    s = q @ k.transpose(0, 2, 1) * scale + (0 if mask is None else mask)
    if causal:
        s = np.where(np.tri(*s.shape[1:], dtype=bool), s, -np.inf)
    m = s.max(-1, keepdims=True)
    dead = m == -np.inf
    e = np.exp(s - np.where(dead, 0, m))
    pr = e / np.where(dead, 1, e.sum(-1, keepdims=True))
    z = 1.0 if keep is None else keep / (1.0 - p)
    if dout is None:
        return (pr * z) @ v
    dpz = dout @ v.transpose(0, 2, 1)
    dp = dpz * z
    ds = pr * (dp - (dp * pr).sum(-1, keepdims=True))
    return ds @ k * scale, ds.transpose(0, 2, 1) @ q * scale, (pr * z).transpose(0, 2, 1) @ dout


def _attn_inputs(batch, L, S, E, Ev, mask_kind, r):
    B = int(np.prod(batch)) if batch else 1
    q, k, v = (r.standard_normal(s) for s in ((B, L, E), (B, S, E), (B, S, Ev)))
    mask = None
    if mask_kind == "bool":  # per (L, S), broadcast over every head; some rows see nothing
        mask = r.random((L, S)) > 0.4
        mask[:, 0] = True
        mask[L // 2] = False
    elif mask_kind == "additive":  # per head of the last batch dim, broadcast over the first
        mask = r.standard_normal((batch[-1], 1, S)) * 2
        mask[..., S // 3] = -np.inf
    elif mask_kind == "key_padding":  # (batch[0], 1, 1, S) bool
        mask = r.random((batch[0], 1, 1, S)) > 0.3
        mask[..., 0] = True
    return q, k, v, mask


def _wide_mask(mask, batch, L, S):
    """The additive (B, L, S) float64 mask of the reference, and the (B1, B2, L, S) view."""
    if mask is None:
        return None, None
    m4 = _mask_view(np, mask, F64, batch, L, S)
    return np.broadcast_to(m4, m4.shape).reshape(-1, L, S), m4


ATTN = [  # batch dims, L, S, E, Ev
    ((1,), 1, 1, 16, 16),
    ((2, 3), 37, 53, 64, 64),
    ((2, 3), 67, 131, 16, 100),
    ((1, 2), 131, 67, 100, 100),
    ((1, 1), 129, 129, 256, 256),
    ((2, 1), 5, 1031, 32, 16),  # S past two key blocks of 512
]


# Masks are exercised on the smaller cases with two batch dims.
ATTN_MASKED = [pytest.param(c, m, id="x".join(map(str, c[1:])) + f"-{m}") for c in ATTN
               for m in (None, "bool", "additive", "key_padding")
               if m is None or (len(c[0]) == 2 and c[1] * c[2] <= 20000)]


@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case,mask_kind", ATTN_MASKED)
def test_attention_matches_float64_and_cpu_kernel(case, mask_kind, causal, dtype):
    batch, L, S, E, Ev = case
    r = fresh_rng()
    q, k, v, mask = _attn_inputs(batch, L, S, E, Ev, mask_kind, r)
    scale = 1 / math.sqrt(E)
    madd, m4 = _wide_mask(mask, batch, L, S)
    dout = r.standard_normal((q.shape[0], L, Ev))
    ref = ref_attention(q, k, v, madd, scale, causal)
    grads = ref_attention(q, k, v, madd, scale, causal, dout=dout)
    qd, kd, vd, dod = (a.astype(dtype) for a in (q, k, v, dout))
    m4d = None if m4 is None else _mask_view(np, mask, dtype, batch, L, S)
    out, lse = xa.attention_forward(np, np.matmul, qd, kd, vd, m4d, scale, causal)
    cout, clse = cpu.attention_forward(qd, kd, vd, m4d, scale, causal)
    assert out.dtype == dtype and lse.dtype == dtype
    mag = math.sqrt(E) * np.abs(v).max()  # the scores' rounding, through exp, times |v|
    _check(out, ref, mag, dtype, "out vs float64", k=4)
    _check(out, np.asarray(cout, F64), mag, dtype, "out vs the C++ kernel", k=4)
    np.testing.assert_array_equal(np.isinf(lse), np.isinf(clse))
    _check(np.where(np.isinf(lse), 0, lse), np.where(np.isinf(clse), 0, clse).astype(F64), 4 * E,
           dtype, "lse vs the C++ kernel")
    ours = xa.attention_backward(np, np.matmul, qd, kd, vd, m4d, out, lse, dod, scale, causal)
    theirs = cpu.attention_backward(qd, kd, vd, m4d, cout, clse, dod, scale, causal)
    for name, a, c, g in zip("qkv", ours, theirs, grads):
        gmag = math.sqrt(E) * max(np.abs(g).max(), 1.0)
        assert a.dtype == dtype
        _check(a, g, gmag, dtype, f"d{name} vs float64", k=4)
        _check(a, np.asarray(c, F64), gmag, dtype, f"d{name} vs the C++ kernel", k=4)


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L,S,block,rows", [(37, 53, 8, 7), (67, 131, 16, 10), (64, 65, 64, 64),
                                            (200, 33, 7, 13), (1, 40, 3, 1)])
def test_attention_key_blocks_and_query_chunks(L, S, block, rows, causal, monkeypatch):
    """Small key blocks and a budget of `rows` query rows per chunk give the same answer as
    the whole matrix, and no product is ever as wide as S."""
    r = fresh_rng()
    batch = (2, 3)
    q, k, v, mask = _attn_inputs(batch, L, S, 16, 8, "additive", r)
    madd, m4 = _wide_mask(mask, batch, L, S)
    dout = r.standard_normal((6, L, 8))
    monkeypatch.setattr(xa, "KEY_BLOCK", block)
    monkeypatch.setattr(xa, "TEMP_BYTES", rows * block * xa._TILE_ARRAYS * 8)
    assert len(xa._work(6, L, S, 8, 0.0)) >= 6
    widths = []

    def gemm(a, b):
        widths.append(b.shape[-1])
        return np.matmul(a, b)

    out, lse = xa.attention_forward(np, gemm, q, k, v, m4, 0.3, causal)
    grads = xa.attention_backward(np, gemm, q, k, v, m4, out, lse, dout, 0.3, causal)
    np.testing.assert_allclose(out, ref_attention(q, k, v, madd, 0.3, causal), atol=1e-12)
    for a, g in zip(grads, ref_attention(q, k, v, madd, 0.3, causal, dout=dout)):
        np.testing.assert_allclose(a, g, atol=1e-11)
    assert max(widths) <= max(block, 16), "a product as wide as the key sequence"


@pytest.mark.parametrize("dtype", [F64, F32], ids=lambda d: d.name)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("L,S,block", [(1, 1, 512), (37, 67, 512), (67, 131, 16), (130, 70, 32)])
def test_attention_dropout_is_the_cpu_kernels_mask(L, S, block, causal, dtype, monkeypatch):
    """The same seed and an unaligned offset drop the same elements as the CPU kernel and as
    rng.dropout_keep numbered offset + (b*L + i)*S + j."""
    monkeypatch.setattr(xa, "KEY_BLOCK", block)
    r = fresh_rng()
    B, p, seed, offset = 6, 0.3, 1234, 11
    q, k, v = (r.standard_normal((B, n, 32)).astype(dtype) for n in (L, S, S))
    dout = r.standard_normal((B, L, 32)).astype(dtype)
    out, lse = xa.attention_forward(np, np.matmul, q, k, v, None, 0.2, causal, p, seed, offset)
    cout, clse = cpu.attention_forward(q, k, v, None, 0.2, causal, p, seed, offset)
    tol = 1e-12 if dtype == F64 else 2e-5
    np.testing.assert_allclose(out, cout, rtol=tol, atol=tol)
    keep = prng.dropout_keep(seed, offset, B * L * S, p).reshape(B, L, S)
    q64, k64, v64 = (a.astype(F64) for a in (q, k, v))
    np.testing.assert_allclose(out, ref_attention(q64, k64, v64, None, 0.2, causal, keep, p),
                               rtol=tol, atol=tol)
    ours = xa.attention_backward(np, np.matmul, q, k, v, None, out, lse, dout, 0.2, causal, p,
                                 seed, offset)
    theirs = cpu.attention_backward(q, k, v, None, cout, clse, dout, 0.2, causal, p, seed, offset)
    refs = ref_attention(q64, k64, v64, None, 0.2, causal, keep, p, dout=dout.astype(F64))
    for a, c, g in zip(ours, theirs, refs):
        np.testing.assert_allclose(a, c, rtol=10 * tol, atol=10 * tol)
        np.testing.assert_allclose(a, g, rtol=10 * tol, atol=10 * tol)


@pytest.mark.parametrize("dtype", [F16, BF16], ids=lambda d: d.name)
def test_attention_half_types_widen_like_the_cpu_backend(dtype):
    r = fresh_rng()
    batch, L, S = (2, 2), 45, 70
    q, k, v, mask = _attn_inputs(batch, L, S, 64, 32, "bool", r)
    qd, kd, vd = (a.astype(dtype) for a in (q, k, v))
    dout = r.standard_normal((4, L, 32)).astype(dtype)
    m4 = _mask_view(np, mask, F32, batch, L, S)
    out, lse = xa.attention_forward(np, cpu.matmul, qd, kd, vd, m4, 0.125, True)
    cout, clse = cpu.attention_forward(qd, kd, vd, m4, 0.125, True)
    assert out.dtype == dtype and lse.dtype == F32
    tol = 2 * eps(dtype)
    np.testing.assert_allclose(out.astype(F32), cout.astype(F32), rtol=tol, atol=tol)
    ours = xa.attention_backward(np, cpu.matmul, qd, kd, vd, m4, out, lse, dout, 0.125, True)
    theirs = cpu.attention_backward(qd, kd, vd, m4, cout, clse, dout, 0.125, True)
    for a, c in zip(ours, theirs):
        assert a.dtype == dtype
        np.testing.assert_allclose(a.astype(F32), c.astype(F32), rtol=tol, atol=tol)


def test_attention_empty_and_bad_views():
    z = np.zeros((2, 0, 8))
    out, lse = xa.attention_forward(np, np.matmul, z, np.ones((2, 3, 8)), np.ones((2, 3, 4)),
                                    None, 1.0, False)
    assert out.shape == (2, 0, 4) and lse.shape == (2, 0)
    out, lse = xa.attention_forward(np, np.matmul, np.ones((2, 3, 8)), np.zeros((2, 0, 8)),
                                    np.zeros((2, 0, 4)), None, 1.0, False)
    assert (out == 0).all() and (lse == -np.inf).all()
    with pytest.raises(ValueError, match="attn_mask view"):
        xa.attention_forward(np, np.matmul, np.ones((2, 3, 8)), np.ones((2, 5, 8)),
                             np.ones((2, 5, 4)), np.zeros((1, 1, 3, 4)), 1.0, False)
    with pytest.raises(ValueError, match=r"must be \(B, L, E\)"):
        xa.attention_forward(np, np.matmul, np.ones((2, 3, 8)), np.ones((2, 5, 7)),
                             np.ones((2, 5, 4)), None, 1.0, False)
