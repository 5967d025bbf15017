"""Scaled-dot-product attention over the backends' fused kernels
(attention_forward / attention_backward): the L x S scores are never stored;
the forward saves only the per-row log-sum-exp and the backward recomputes the
probabilities tile by tile."""
from __future__ import annotations

import math

from .. import dtypes as dt
from ..autograd.function import Function, unbroadcast
from ..tensor import Tensor, _common_device

OP = "scaled_dot_product_attention"


def _mask_view(xp, mask, dtype, batch, L, S):
    """An additive mask broadcast to batch + (L, S) and viewed as (B1, B2, L, S) with zero
    strides where it is broadcast: bool masks (True = may attend) become 0 / -inf at their own
    shape, never per head."""
    if mask.dtype == dt.bool_:
        mask = xp.where(mask, xp.asarray(0.0, dtype), xp.asarray(-math.inf, dtype))
    elif mask.dtype != dtype:
        mask = mask.astype(dtype)
    full = tuple(batch) + (L, S)
    try:
        m = xp.broadcast_to(mask, full)
    except ValueError:
        raise ValueError(f"{OP}: attn_mask of shape {tuple(mask.shape)} is not broadcastable to "
                         f"{full} (batch..., L, S)") from None
    if len(batch) == 0:
        return m.reshape(1, 1, L, S)
    if len(batch) == 1:
        return m[None]
    # Collapse all but the last batch dim; a view whenever the strides allow it.
    return m.reshape(-1, batch[-1], L, S)


def check_arrays(op, query, key, value, attn_mask=None, dropout_p=0.0):
    """Shapes, dtypes and the mask's broadcast, for anything with .shape and .dtype."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not dt.is_floating(t.dtype):
            raise TypeError(f"{op}: {name} must be floating point, got {t.dtype}")
        if t.ndim < 2:
            raise ValueError(f"{op}: {name} must have at least 2 dims (..., seq, dim), got shape "
                             f"{tuple(t.shape)}")
    if key.dtype != query.dtype or value.dtype != query.dtype:
        raise TypeError(f"{op}: query, key and value must have the same dtype, got {query.dtype}, "
                        f"{key.dtype}, {value.dtype}")
    if key.ndim != query.ndim or value.ndim != query.ndim or \
            tuple(key.shape[:-2]) != tuple(query.shape[:-2]) or \
            tuple(value.shape[:-2]) != tuple(query.shape[:-2]):
        raise ValueError(f"{op}: query, key and value must have the same batch dims, got shapes "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if key.shape[-1] != query.shape[-1]:
        raise ValueError(f"{op}: query and key head dims differ: {query.shape[-1]} vs "
                         f"{key.shape[-1]}")
    if value.shape[-2] != key.shape[-2]:
        raise ValueError(f"{op}: key and value sequence lengths differ: {key.shape[-2]} vs "
                         f"{value.shape[-2]}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")
    if attn_mask is not None:
        if attn_mask.dtype != dt.bool_ and not dt.is_floating(attn_mask.dtype):
            raise TypeError(f"{op}: attn_mask must be bool (True = may attend) or floating "
                            f"point (added to the scores), got {attn_mask.dtype}")
        L, S = query.shape[-2], key.shape[-2]
        full = tuple(query.shape[:-2]) + (L, S)
        ms = tuple(attn_mask.shape)
        if len(ms) > len(full) or any(a != 1 and a != b for a, b in zip(ms[::-1], full[::-1])):
            raise ValueError(f"{op}: attn_mask of shape {ms} is not broadcastable to {full} "
                             "(batch..., L, S)")


class ScaledDotProductAttention(Function):
    @staticmethod
    def forward(ctx, q, k, v, mask=None, dropout_p=0.0, is_causal=False, scale=None):
        be, xp = ctx.backend, ctx.backend.xp
        if not hasattr(be, "attention_forward"):
            raise NotImplementedError(f"{OP}: the {be.name} backend has no fused attention kernel yet")
        batch, L, E = q.shape[:-2], q.shape[-2], q.shape[-1]
        S, Ev = k.shape[-2], v.shape[-1]
        B = 1
        for s in batch:
            B *= s
        if scale is None:  # head dim 0: all scores are 0 whatever the scale (as in PyTorch)
            scale = 1.0 / math.sqrt(E) if E else 1.0
        scale = float(scale)
        wide = dt.float32 if q.dtype in (dt.float16, dt.bfloat16) else q.dtype
        m4 = None if mask is None else _mask_view(xp, mask, wide, batch, L, S)
        seed = offset = 0
        if dropout_p > 0.0:
            from .. import random as rs

            seed, offset = rs.next_counter(B * L * S)
        q3 = xp.ascontiguousarray(q).reshape(B, L, E)
        k3 = xp.ascontiguousarray(k).reshape(B, S, E)
        v3 = xp.ascontiguousarray(v).reshape(B, S, Ev)
        out, lse = be.attention_forward(q3, k3, v3, m4, scale, is_causal, dropout_p, seed, offset)
        ctx.save_for_backward(q3, k3, v3, out, lse, m4)
        ctx.args = (scale, is_causal, dropout_p, seed, offset, q.shape, k.shape, v.shape)
        ctx.mask_shape = None if mask is None else mask.shape
        return out.reshape(tuple(batch) + (L, Ev))

    @staticmethod
    def backward(ctx, g):
        q3, k3, v3, out, lse, m4 = ctx.saved_tensors
        scale, is_causal, dropout_p, seed, offset, qs, ks, vs = ctx.args
        g3 = ctx.backend.xp.ascontiguousarray(g).reshape(out.shape)
        dq, dk, dv = ctx.backend.attention_backward(q3, k3, v3, m4, out, lse, g3, scale, is_causal,
                                                    dropout_p, seed, offset)
        need = ctx.needs_input_grad
        if len(need) < 4 or not need[3]:
            return dq.reshape(qs), dk.reshape(ks), dv.reshape(vs)
        if dropout_p > 0.0:
            raise NotImplementedError(f"{OP}: no gradient for a float attn_mask with dropout_p > 0")
        dmask = _mask_grad(ctx.backend.xp, q3, k3, v3, m4, out, lse, g3, scale, is_causal)
        dmask = unbroadcast(dmask.reshape(tuple(qs[:-2]) + dmask.shape[-2:]), ctx.mask_shape)
        return dq.reshape(qs), dk.reshape(ks), dv.reshape(vs), dmask


def _mask_grad(xp, q, k, v, m4, out, lse, g, scale, is_causal, budget=1 << 26):
    """d(loss)/d(additive mask) = dS = P * (dO V^T - rowsum(dO * O)), in the statistics' dtype,
    shaped (B, L, S): the one place the L x S matrix is formed, since the mask's gradient has
    that size anyway. Batch items go in chunks of about `budget` elements."""
    wide = lse.dtype
    B, L, E = q.shape
    S = k.shape[1]
    m = m4.reshape(-1, L, S) if m4.shape[0] * m4.shape[1] == B else \
        xp.broadcast_to(m4, (m4.shape[0], B // m4.shape[0], L, S)).reshape(B, L, S)
    causal = xp.tril(xp.ones((L, S), bool)) if is_causal else None
    dmask = xp.empty((B, L, S), wide)
    step = max(1, budget // max(1, L * S))
    for b0 in range(0, B, step):
        sl = slice(b0, b0 + step)
        qw, kw, vw = (a[sl].astype(wide) for a in (q, k, v))
        gw, ow = g[sl].astype(wide), out[sl].astype(wide)
        s = xp.matmul(qw, kw.transpose(0, 2, 1)) * scale + m[sl]
        if causal is not None:
            s = xp.where(causal, s, -xp.inf)
        p = xp.exp(s - lse[sl][..., None])
        dp = xp.matmul(gw, vw.transpose(0, 2, 1))
        dmask[sl] = p * (dp - (gw * ow).sum(-1, keepdims=True))
    return dmask


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0,
                                 is_causal=False, scale=None):
    """softmax(query @ key^T * scale + mask) @ value, with PyTorch's shapes: query (..., L, E),
    key (..., S, E), value (..., S, Ev). attn_mask: bool (True = may attend) or additive float,
    broadcastable to (..., L, S). is_causal: the top-left aligned lower triangle (may be
    combined with attn_mask). dropout_p is applied whenever it is positive, as in PyTorch."""
    for name, t in (("query", query), ("key", key), ("value", value)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{OP}: {name} must be a tensor, got {type(t).__name__}")
    if attn_mask is not None and not isinstance(attn_mask, Tensor):
        raise TypeError(f"{OP}: attn_mask must be a tensor, got {type(attn_mask).__name__}")
    _common_device(OP, [t for t in (query, key, value, attn_mask) if isinstance(t, Tensor)])
    check_arrays(OP, query, key, value, attn_mask, dropout_p)
    # A float mask goes in as an input, so that it gets a gradient when it requires one.
    return ScaledDotProductAttention.apply(query, key, value, attn_mask,
                                           dropout_p=float(dropout_p), is_causal=bool(is_causal),
                                           scale=scale)
