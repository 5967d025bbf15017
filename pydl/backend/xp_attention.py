"""Scaled-dot-product attention written once against an array namespace `xp` (NumPy or CuPy)
and a batched matrix product `gemm`: the interim attention of the cuda backend, tested on the
CPU with xp=numpy. The fused tensor-core kernels planned for kernels/attention/ are to replace it.

Flash-style, with the loops in Python: a chunk of (heads, query rows) walks the keys in blocks
of KEY_BLOCK; one batched GEMM gives a score tile, an online softmax (running max and sum per
row) folds it in and P V accumulates. The forward saves only the per-row log-sum-exp; the
backward recomputes P = exp(S - lse) block by block. No L x S matrix is formed: a chunk's
tiles and their temporaries stay under TEMP_BYTES. Causal attention (top-left aligned) skips
the rows above the diagonal of each block and the blocks wholly above it. Dropout draws the
Philox stream at counter offset + (b*L + i)*S + j, as the CPU kernel does, so both devices
drop the same elements. Half types are widened to float32 chunk by chunk, as on the CPU.
Arguments and results are those of pydl.backend.cpu's attention_forward / attention_backward,
after `xp` and `gemm`; lse is (B, L) in the widened dtype, -inf on rows with nothing to attend.
"""
from __future__ import annotations

import math

from .. import dtypes as dt
from . import rng

KEY_BLOCK = 512
TEMP_BYTES = 256 << 20  # one chunk's score tiles and their temporaries
_TILE_ARRAYS = 8        # tile-sized temporaries alive at once, at most
_DROPOUT_BYTES = 128    # per tile element for the uint64 Philox rounds


def _wide(dtype):
    return dt.float32 if dtype in (dt.float16, dt.bfloat16) else dtype


def _bits(xp, a):
    """a as 16-bit words when it is bfloat16: data movement without relying on CuPy's bfloat16."""
    return a.view(xp.uint16) if a.dtype == dt.bfloat16 else a


def _check(op, q, k, v, mask, dropout_p):
    """The shape checks of the CPU kernel, with the same messages' substance."""
    if q.ndim != 3 or k.ndim != 3 or v.ndim != 3:
        raise ValueError(f"{op}: query, key and value must be 3-D (batch*heads, seq, dim), got "
                         f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}")
    B, L, E = q.shape
    S = k.shape[1]
    if k.shape[0] != B or v.shape[0] != B or k.shape[2] != E or v.shape[1] != S:
        raise ValueError(f"{op}: query {tuple(q.shape)}, key {tuple(k.shape)} and value "
                         f"{tuple(v.shape)} must be (B, L, E), (B, S, E), (B, S, Ev)")
    if mask is not None and (mask.ndim != 4 or tuple(mask.shape[2:]) != (L, S)
                             or mask.shape[0] * mask.shape[1] != B):
        raise ValueError(f"{op}: attn_mask view must be (B1, B2, L, S) with B1*B2 = {B}, "
                         f"L = {L}, S = {S}; got {tuple(mask.shape)}")
    if not 0.0 <= dropout_p < 1.0:
        raise ValueError(f"{op}: dropout_p must be in [0, 1), got {dropout_p}")


def _work(B, L, S, itemsize, dropout_p):
    """(b0, b1, i0, i1): chunks of heads and query rows whose score tiles fit TEMP_BYTES."""
    per_row = min(max(S, 1), KEY_BLOCK) * (_TILE_ARRAYS * itemsize +
                                          (_DROPOUT_BYTES if dropout_p > 0 else 0))
    rows = max(1, TEMP_BYTES // per_row)
    if rows >= L:
        step = rows // L
        return [(b0, min(B, b0 + step), 0, L) for b0 in range(0, B, step)]
    return [(b, b + 1, i0, min(L, i0 + rows)) for b in range(B) for i0 in range(0, L, rows)]


def _tiles(xp, gemm, qs, k, mask, b0, i0, causal):
    """Masked score tiles of a chunk: yields (j0, j1, r, s) with s the scores of the chunk's
    rows r.. against keys j0:j1. qs: the chunk's queries, scaled; k: its heads' keys."""
    nb, i1 = qs.shape[0], i0 + qs.shape[1]
    S = k.shape[1]
    heads = None
    if mask is not None:  # (B1, B2, L, S) with head b at (b // B2, b % B2)
        b = xp.arange(b0, b0 + nb)
        heads = (b // mask.shape[1], b % mask.shape[1])
    for j0 in range(0, S, KEY_BLOCK):
        j1 = min(S, j0 + KEY_BLOCK)
        r0 = max(i0, j0) if causal else i0  # causal: rows above j0 see none of these keys
        if r0 >= i1:
            break
        s = gemm(qs[:, r0 - i0:], k[:, j0:j1].transpose(0, 2, 1))
        if mask is not None:
            s += mask[:, :, r0:i1, j0:j1][heads].astype(s.dtype, copy=False)
        if causal and j1 - 1 > r0:
            above = xp.arange(j0, j1) > xp.arange(r0, i1)[:, None]
            s += xp.where(above, -math.inf, 0.0).astype(s.dtype)
        yield j0, j1, r0 - i0, s


def _dropout_factor(xp, p, seed, offset, b0, b1, r0, r1, j0, j1, L, S, dtype):
    """keep / (1 - p) for heads b0:b1, rows r0:r1, keys j0:j1: the Philox word at counter
    offset + (b*L + i)*S + j, kept when its top 24 bits reach the threshold (rng.dropout_keep)."""
    u64 = xp.uint64
    b = xp.arange(b0, b1, dtype=u64)[:, None, None]
    i = xp.arange(r0, r1, dtype=u64)[:, None]
    j = xp.arange(j0, j1, dtype=u64)
    c = (b * u64(L) + i) * u64(S) + j + u64(offset)
    block, lane = c >> u64(2), c & u64(3)
    w0, w1, w2, w3 = rng.philox4x32_10((block & u64(0xFFFFFFFF), block >> u64(32), 0, 0),
                                       rng.split_seed(seed), xp)
    word = xp.where(lane == 0, w0, xp.where(lane == 1, w1, xp.where(lane == 2, w2, w3)))
    keep = (word >> u64(8)) >= u64(rng.keep_threshold(p))
    return keep.astype(dtype) * dtype.type(1.0 / (1.0 - p))


def attention_forward(xp, gemm, q, k, v, mask, scale, is_causal, dropout_p=0.0, seed=0,
                      offset=0):
    _check("scaled_dot_product_attention", q, k, v, mask, dropout_p)
    B, L, _ = q.shape
    S, Ev = k.shape[1], v.shape[2]
    cd = _wide(q.dtype)
    out = xp.empty((B, L, Ev), q.dtype)
    lse = xp.empty((B, L), cd)
    ninf = cd.type(-math.inf)
    for b0, b1, i0, i1 in _work(B, L, S, cd.itemsize, dropout_p) if B and L else ():
        qs = q[b0:b1, i0:i1].astype(cd, copy=False) * cd.type(scale)
        kc, vc = k[b0:b1].astype(cd, copy=False), v[b0:b1].astype(cd, copy=False)
        m = xp.full((b1 - b0, i1 - i0), ninf, cd)
        l = xp.zeros((b1 - b0, i1 - i0), cd)
        acc = xp.zeros((b1 - b0, i1 - i0, Ev), cd)
        for j0, j1, r, s in _tiles(xp, gemm, qs, kc, mask, b0, i0, is_causal):
            mr, lr, ar = m[:, r:], l[:, r:], acc[:, r:]
            m_new = xp.maximum(mr, s.max(-1))
            shift = xp.where(m_new == ninf, cd.type(0), m_new)  # rows with nothing yet stay 0
            p = xp.exp(s - shift[..., None])
            alpha = xp.exp(mr - shift)
            lr *= alpha
            lr += p.sum(-1)
            mr[...] = m_new
            if dropout_p > 0:
                p *= _dropout_factor(xp, dropout_p, seed, offset, b0, b1, i0 + r, i1, j0, j1,
                                     L, S, cd)
            ar *= alpha[..., None]
            ar += gemm(p, vc[:, j0:j1])
        dead = m == ninf  # no key to attend: zero output and lse -inf, like the CPU kernel
        l = xp.where(dead, cd.type(1), l)
        _bits(xp, out)[b0:b1, i0:i1] = _bits(xp, (acc / l[..., None]).astype(q.dtype))
        lse[b0:b1, i0:i1] = xp.where(dead, ninf, m + xp.log(l))
    return out, lse


def attention_backward(xp, gemm, q, k, v, mask, out, lse, dout, scale, is_causal,
                       dropout_p=0.0, seed=0, offset=0):
    _check("scaled_dot_product_attention_backward", q, k, v, mask, dropout_p)
    B, L, _ = q.shape
    S = k.shape[1]
    cd = _wide(q.dtype)
    dq = xp.zeros(q.shape, q.dtype)
    dk, dv = xp.zeros(k.shape, cd), xp.zeros(v.shape, cd)
    for b0, b1, i0, i1 in _work(B, L, S, cd.itemsize, dropout_p) if B and L else ():
        qs = q[b0:b1, i0:i1].astype(cd, copy=False) * cd.type(scale)
        kc, vc = k[b0:b1].astype(cd, copy=False), v[b0:b1].astype(cd, copy=False)
        do = dout[b0:b1, i0:i1].astype(cd, copy=False)
        dsum = (do * out[b0:b1, i0:i1].astype(cd, copy=False)).sum(-1, keepdims=True)
        ls = lse[b0:b1, i0:i1, None]
        ls = xp.where(ls == -math.inf, cd.type(math.inf), ls)  # P = 0 on rows with no key
        dqs = xp.zeros(qs.shape, cd)
        for j0, j1, r, s in _tiles(xp, gemm, qs, kc, mask, b0, i0, is_causal):
            p = xp.exp(s - ls[:, r:])
            dp = gemm(do[:, r:], vc[:, j0:j1].transpose(0, 2, 1))
            pz = p
            if dropout_p > 0:  # dV takes the dropped, rescaled P; dP the same factor
                z = _dropout_factor(xp, dropout_p, seed, offset, b0, b1, i0 + r, i1, j0, j1,
                                    L, S, cd)
                pz = p * z
                dp *= z
            dv[b0:b1, j0:j1] += gemm(pz.transpose(0, 2, 1), do[:, r:])
            dp -= dsum[:, r:]
            dp *= p  # dS / scale
            dqs[:, r:] += gemm(dp, kc[:, j0:j1])
            dk[b0:b1, j0:j1] += gemm(dp.transpose(0, 2, 1), qs[:, r:])
        _bits(xp, dq)[b0:b1, i0:i1] = _bits(xp, (dqs * cd.type(scale)).astype(q.dtype))
    return dq, dk.astype(k.dtype, copy=False), dv.astype(v.dtype, copy=False)
