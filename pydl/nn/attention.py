"""MultiheadAttention with PyTorch's parameters, initialisation and masks. Without
need_weights it runs the fused scaled_dot_product_attention; with it, the explicit
softmax(Q K^T) path that can return the weights."""
from __future__ import annotations

import math

from .. import dtypes as dt
from ..tensor import Tensor, empty
from . import functional as F
from . import init
from .layers import Linear
from .module import Module
from .parameter import Parameter

OP = "MultiheadAttention"


def _additive(xp, mask, dtype):
    """A float mask stays as it is; a bool mask (True = masked out, PyTorch's MHA sense)
    becomes 0 / -inf."""
    if mask.dtype == dt.bool_:
        return xp.where(mask, xp.asarray(-math.inf, dtype), xp.asarray(0.0, dtype))
    return mask.astype(dtype, copy=False)


def _merge_masks(op, xp, attn_mask, key_padding_mask, n, h, L, S, dtype):
    """PyTorch's MHA masks (attn_mask (L, S) or (N*H, L, S); key_padding_mask (N, S); bool
    True = masked out, or float added) -> one mask for scaled_dot_product_attention,
    broadcastable to (N, H, L, S): bool True = may attend when both are bool, else additive."""
    parts = []
    if attn_mask is not None:
        m = attn_mask._data
        if m.dtype != dt.bool_ and not dt.is_floating(m.dtype):
            raise TypeError(f"{op}: attn_mask must be bool or floating point, got {m.dtype}")
        if m.ndim == 2 and tuple(m.shape) == (L, S):
            m = m.reshape(1, 1, L, S)
        elif m.ndim == 3 and tuple(m.shape) == (n * h, L, S):
            m = m.reshape(n, h, L, S)
        else:
            raise ValueError(f"{op}: attn_mask must have shape ({L}, {S}) or ({n * h}, {L}, {S}), "
                             f"got {tuple(m.shape)}")
        parts.append(m)
    if key_padding_mask is not None:
        m = key_padding_mask._data
        if m.dtype != dt.bool_ and not dt.is_floating(m.dtype):
            raise TypeError(f"{op}: key_padding_mask must be bool or floating point, got {m.dtype}")
        if tuple(m.shape) != (n, S):
            raise ValueError(f"{op}: key_padding_mask must have shape ({n}, {S}), got "
                             f"{tuple(m.shape)}")
        parts.append(m.reshape(n, 1, 1, S))
    if not parts:
        return None
    if all(p.dtype == dt.bool_ for p in parts):
        allowed = ~parts[0]
        for p in parts[1:]:
            allowed = allowed & ~p
        return Tensor._wrap(allowed)
    total = _additive(xp, parts[0], dtype)
    for p in parts[1:]:
        total = total + _additive(xp, p, dtype)
    return Tensor._wrap(total)


class MultiheadAttention(Module):
    """Multi-head attention (Vaswani et al.) with PyTorch's names: in_proj_weight (3E, E) and
    in_proj_bias, or q/k/v_proj_weight when kdim/vdim differ from embed_dim; out_proj."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True, add_bias_kv=False,
                 add_zero_attn=False, kdim=None, vdim=None, batch_first=False, device=None,
                 dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(f"{OP}: embed_dim and num_heads must be positive, got {embed_dim} "
                             f"and {num_heads}")
        if embed_dim % num_heads:
            raise ValueError(f"{OP}: embed_dim {embed_dim} must be divisible by num_heads "
                             f"{num_heads}")
        if add_bias_kv or add_zero_attn:
            raise NotImplementedError(f"{OP}: add_bias_kv and add_zero_attn are not supported")
        self.embed_dim = embed_dim
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.num_heads = num_heads
        self.dropout = dropout
        self.batch_first = batch_first
        self.head_dim = embed_dim // num_heads
        kw = dict(dtype=dtype, device=device)
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(empty(3 * embed_dim, embed_dim, **kw))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(empty(embed_dim, embed_dim, **kw))
            self.k_proj_weight = Parameter(empty(embed_dim, self.kdim, **kw))
            self.v_proj_weight = Parameter(empty(embed_dim, self.vdim, **kw))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(empty(3 * embed_dim, **kw))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, **kw)
        self.bias_k = self.bias_v = None
        self.add_zero_attn = False
        self._reset_parameters()

    def _reset_parameters(self):
        # PyTorch's: Xavier-uniform projections, zero biases; out_proj.weight keeps Linear's init.
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _projections(self):
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            ws = (w[:e], w[e:2 * e], w[2 * e:])
        else:
            ws = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        bs = (None, None, None) if b is None else (b[:e], b[e:2 * e], b[2 * e:])
        return ws, bs

    def forward(self, query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None,
                average_attn_weights=True, is_causal=False):
        for name, t in (("query", query), ("key", key), ("value", value)):
            if not isinstance(t, Tensor):
                raise TypeError(f"{OP}: {name} must be a tensor, got {type(t).__name__}")
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(f"{OP}: query, key and value must all be 3-D (batched) or 2-D "
                             f"(unbatched), got shapes {tuple(query.shape)}, {tuple(key.shape)}, "
                             f"{tuple(value.shape)}")
        if is_causal and attn_mask is None:
            raise RuntimeError(f"{OP}: is_causal is a hint that attn_mask is the causal mask; "
                               "pass attn_mask too")
        if not batched:  # (L, E) -> (L, 1, E)
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:  # (N, L, E) -> (L, N, E)
            query, key, value = (t.transpose(0, 1) for t in (query, key, value))
        L, n, e = query.shape
        S = key.shape[0]
        if e != self.embed_dim:
            raise ValueError(f"{OP}: query has embedding dim {e}, expected {self.embed_dim}")
        if key.shape[-1] != self.kdim or value.shape[-1] != self.vdim:
            raise ValueError(f"{OP}: key and value must have dims {self.kdim} and {self.vdim}, "
                             f"got {key.shape[-1]} and {value.shape[-1]}")
        if key.shape[:2] != value.shape[:2] or key.shape[1] != n:
            raise ValueError(f"{OP}: key {tuple(key.shape)} and value {tuple(value.shape)} must "
                             f"match in sequence length and batch ({n})")
        h, d = self.num_heads, self.head_dim
        (wq, wk, wv), (bq, bk, bv) = self._projections()

        def heads(x, w, b, length):  # (len, N, E) -> (N, H, len, D)
            return F.linear(x, w, b).reshape(length, n, h, d).permute(1, 2, 0, 3)

        q, k, v = heads(query, wq, bq, L), heads(key, wk, bk, S), heads(value, wv, bv, S)
        xp = q._backend.xp
        mask = _merge_masks(OP, xp, attn_mask, key_padding_mask, n, h, L, S, q.dtype)
        p = self.dropout if self.training else 0.0
        weights = None
        if need_weights:
            s = q.matmul(k.transpose(-1, -2)) * (1.0 / math.sqrt(d))
            if mask is not None:
                m = mask._data
                if m.dtype == dt.bool_:
                    m = xp.where(m, xp.asarray(0.0, q.dtype), xp.asarray(-math.inf, q.dtype))
                s = s + Tensor._wrap(m.astype(q.dtype, copy=False))
            w = F.softmax(s, dim=-1)
            w = F.dropout(w, p, True) if p > 0 else w
            o = w.matmul(v)
            weights = w.mean(dim=1) if average_attn_weights else w
            if not batched:
                weights = weights.squeeze(0)
        else:
            causal_only = is_causal and key_padding_mask is None
            o = F.scaled_dot_product_attention(q, k, v, attn_mask=None if causal_only else mask,
                                               dropout_p=p, is_causal=causal_only)
        o = o.permute(2, 0, 1, 3).reshape(L, n, e)  # (N, H, L, D) -> (L, N, E)
        o = self.out_proj(o)
        if not batched:
            o = o.squeeze(1)
        elif self.batch_first:
            o = o.transpose(0, 1)
        return o, weights

    def extra_repr(self) -> str:
        return f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, " \
               f"batch_first={self.batch_first}"
