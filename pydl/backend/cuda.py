"""CUDA backend: CuPy arrays (CuPy's memory pool, CuPy's current stream), the
hand-written kernels of pydl._C.cuda on the hot path, and the Numba kernels
of numba_kernels.py for the irregular ops. Outputs and workspaces are
allocated here, never in the compiled module."""
from __future__ import annotations

import cupy
import cupyx
import cupyx.scipy.special
import numpy as np

from .. import _C, _config
from .. import dtypes as dt
from . import numba_kernels

name = "cuda"
xp = cupy
_k = _C.cuda
_KERNEL_FLOATS = (dt.float32, dt.float16, dt.bfloat16, dt.float64)
_GEMM_DTYPES = (dt.float32, dt.float16, dt.bfloat16)


def _stream() -> int:
    return cupy.cuda.get_current_stream().ptr


def asarray(data, dtype=None):
    return cupy.asarray(data, dtype=dtype)


def to_numpy(a):
    if a.dtype == dt.bfloat16:
        return cupy.asnumpy(a.view(cupy.uint16)).view(dt.bfloat16)
    return cupy.asnumpy(a)


def from_numpy(a):
    if isinstance(a, cupy.ndarray):
        return a
    a = np.asarray(a)
    if a.dtype == dt.bfloat16:
        return cupy.asarray(np.ascontiguousarray(a).view(np.uint16)).view(dt.bfloat16)
    return cupy.asarray(a)


def ascontiguous(a):
    return cupy.ascontiguousarray(a)


def _stat_dtype(dtype):
    """Dtype of saved statistics and per-row losses: float32 for the half types."""
    return dt.float32 if dtype in (dt.float16, dt.bfloat16) else dtype


# ---- matrix products ---------------------------------------------------------------

def _gemm_ok(a, b):
    return a.dtype in _GEMM_DTYPES and a.dtype == b.dtype and a.ndim <= 3 and b.ndim <= 3 \
        and a.ndim >= 2 and b.ndim >= 2


def _gemm_operand(x):
    """A view the GEMM takes: row- or column-major in the last two dims."""
    if x.strides[-1] == x.itemsize or x.strides[-2] == x.itemsize:
        return x
    return cupy.ascontiguousarray(x)


def matmul(a, b, bias=None, activation="none"):
    if not _gemm_ok(a, b):
        out = cupy.matmul(a, b)
        return out if bias is None else out + bias
    m, k, n = a.shape[-2], a.shape[-1], b.shape[-1]
    if a.ndim == 3 and b.ndim == 3 and a.shape[0] != b.shape[0]:
        if a.shape[0] != 1 and b.shape[0] != 1:
            raise ValueError("matmul: batch dimensions do not broadcast")
        batch = max(a.shape[0], b.shape[0])
        a = cupy.broadcast_to(a, (batch, m, k)) if a.shape[0] == 1 else a
        b = cupy.broadcast_to(b, (batch, k, n)) if b.shape[0] == 1 else b
    batch = a.shape[0] if a.ndim == 3 else (b.shape[0] if b.ndim == 3 else None)
    out = cupy.empty((m, n) if batch is None else (batch, m, n), a.dtype)
    if out.size == 0:
        return out
    if k == 0:
        out.fill(0)
        if bias is not None:
            out += bias
        return out
    _k.gemm(_gemm_operand(a), _gemm_operand(b), out, bias, 1.0, 0.0, activation,
            _config.ALLOW_TF32, stream=_stream())
    return out


def linear(x, weight, bias=None):
    lead = x.shape[:-1]
    x2 = x.reshape(-1, x.shape[-1])
    if not _gemm_ok(x2, weight):
        y = cupy.matmul(x2, weight.T)
        if bias is not None:
            y += bias
    else:
        y = matmul(x2, weight.T, bias=bias)
    return y.reshape(lead + (weight.shape[0],))


# ---- softmax -----------------------------------------------------------------------

def _check_float(op, a):
    if a.dtype not in _KERNEL_FLOATS:
        raise TypeError(f"{op}: unsupported dtype {a.dtype} on the GPU")


def softmax_forward(x, log: bool):
    _check_float("softmax", x)
    x = cupy.ascontiguousarray(x)
    y = cupy.empty_like(x)
    _k.softmax_forward(x, y, log, _stream())
    return y


def softmax_backward(y, dy, log: bool):
    dy = cupy.ascontiguousarray(dy)
    dx = cupy.empty_like(y)
    _k.softmax_backward(y, dy, dx, log, _stream())
    return dx


# ---- normalisation -----------------------------------------------------------------

def layer_norm_forward(x, weight, bias, eps: float, rms: bool = False):
    _check_float("layer_norm", x)
    x = cupy.ascontiguousarray(x)
    rows = x.shape[0]
    sd = _stat_dtype(x.dtype)
    y = cupy.empty_like(x)
    mean = cupy.empty(rows, sd)
    rstd = cupy.empty(rows, sd)
    w = None if weight is None else cupy.ascontiguousarray(weight)
    b = None if bias is None else cupy.ascontiguousarray(bias)
    _k.layer_norm_forward(x, w, b, y, mean, rstd, float(eps), rms, _stream())
    return y, mean, rstd


def layer_norm_backward(x, weight, mean, rstd, dy, rms: bool, need_weight: bool, need_bias: bool):
    dy = cupy.ascontiguousarray(dy)
    rows, cols = x.shape
    dx = cupy.empty_like(x)
    pdt = x.dtype if weight is None else weight.dtype
    dw = cupy.empty(cols, pdt) if need_weight else None
    db = cupy.empty(cols, pdt) if need_bias else None
    ws = cupy.empty(max(_k.layer_norm_backward_workspace_size(rows, cols), 1), cupy.float32)
    w = None if weight is None else cupy.ascontiguousarray(weight)
    _k.layer_norm_backward(x, w, mean, rstd, dy, dx, dw, db, ws, rms, _stream())
    return dx, dw, db


# ---- losses ------------------------------------------------------------------------

def cross_entropy_forward(logits, target, ignore_index: int, label_smoothing: float):
    _check_float("cross_entropy", logits)
    logits = cupy.ascontiguousarray(logits)
    n = logits.shape[0]
    sd = _stat_dtype(logits.dtype)
    loss = cupy.empty(n, sd)
    lse = cupy.empty(n, sd)
    flag = cupy.zeros(1, cupy.int32)
    target = cupy.ascontiguousarray(target, dtype=cupy.int64)
    _k.cross_entropy_forward(logits, target, loss, lse, flag, int(ignore_index),
                             float(label_smoothing), _stream())
    bad = int(flag.get()[0])  # one small read: an out-of-range class must not pass silently
    if bad:
        row = bad - 1
        raise IndexError(f"cross_entropy: target {int(target[row].get())} at position {row} is "
                         f"out of range for {logits.shape[1]} classes")
    return loss, lse


def cross_entropy_backward(logits, target, lse, dloss, ignore_index: int, label_smoothing: float):
    dx = cupy.empty_like(logits)
    dloss = cupy.ascontiguousarray(dloss, dtype=lse.dtype)
    _k.cross_entropy_backward(logits, target, lse, dloss, dx, int(ignore_index),
                              float(label_smoothing), _stream())
    return dx


# ---- elementwise helpers -----------------------------------------------------------

def erf(x):
    if x.dtype in (dt.float16, dt.bfloat16):
        return cupyx.scipy.special.erf(x.astype(cupy.float32)).astype(x.dtype)
    return cupyx.scipy.special.erf(x)


# ---- scatter / gather --------------------------------------------------------------

def index_add_rows(out, index, src):
    numba_kernels.index_add_rows(out, index, src)
    return out


def index_add_at(out, index, values):
    cupyx.scatter_add(out, index, values)
    return out


def embedding_backward(grad_out, indices, num_embeddings: int, padding_idx=None):
    dim = grad_out.shape[-1]
    g2 = cupy.ascontiguousarray(grad_out.reshape(-1, dim))
    idx = cupy.ascontiguousarray(indices.reshape(-1).astype(cupy.int64, copy=False))
    if g2.dtype in (dt.float16, dt.bfloat16):  # accumulate in float32
        gw = numba_kernels.embedding_backward(g2.astype(cupy.float32), idx, num_embeddings, padding_idx)
        return gw.astype(g2.dtype)
    return numba_kernels.embedding_backward(g2, idx, num_embeddings, padding_idx)


# ---- random ------------------------------------------------------------------------

def dropout(x, p: float, seed: int, offset: int):
    y, mask = numba_kernels.dropout(cupy.ascontiguousarray(x), p, seed, offset)
    return y, mask.astype(cupy.bool_, copy=False)


# ---- convolution and attention -----------------------------------------------------
# Fused kernels of kernels/conv/ and kernels/attention/ for float32 and the half types. The
# interim path, xp_conv and xp_attention over CuPy (every product on pydl's GEMM through matmul
# above, which hands float64 to cupy.matmul; attention widens half types to float32 chunk by
# chunk), takes what those kernels do not: float64, attention dropout, sizes or devices they
# do not cover, and whatever PYDL_CUDA_INTERIM names.
from . import xp_attention, xp_conv  # noqa: E402


def _check_same(op, x, **others):
    _check_float(op, x)
    for name, a in others.items():
        if a is not None and a.dtype != x.dtype:
            raise TypeError(f"{op}: {name} has dtype {a.dtype}, input has {x.dtype}")


def _conv_kernel_plan(pass_, inp, weight, out, stride, padding, dilation, groups):
    """(variant, workspace) of pydl's conv kernels for one pass (see kernels/conv/conv.h):
    "gemm" (1x1, stride 1, unpadded, one group: pydl's GEMM on the arrays themselves),
    "implicit_mma" / "implicit_tf32" / "implicit_simt" (implicit GEMM), "depthwise"; or
    "interim" (xp_conv): with PYDL_CUDA_INTERIM=conv, for float64, and for sizes past the
    kernels' 32-bit in-image indexing or grid limits."""
    if "conv" in _config.CUDA_INTERIM or inp.dtype not in _GEMM_DTYPES:
        return "interim", None
    variant, size, ws_dtype, _ = _k.conv2d_plan(pass_, inp, weight, out, *stride, *padding,
                                                *dilation, groups, _config.ALLOW_TF32)
    if variant in ("interim", "gemm") or size == 0:
        return variant, None
    return variant, cupy.empty(size, dt.float32 if ws_dtype == "float32" else inp.dtype)


def _conv_4d(op, *arrays):
    for a in arrays:
        if a.ndim != 4:
            raise ValueError(f"{op}: expected 4-D arrays, got shape {tuple(a.shape)}")


def conv2d_forward(x, weight, bias, stride, padding, dilation, groups, out_hw):
    _check_same("conv2d", x, weight=weight, bias=bias)
    _conv_4d("conv2d", x, weight)
    x, weight = cupy.ascontiguousarray(x), cupy.ascontiguousarray(weight)
    y = cupy.empty((x.shape[0], weight.shape[0]) + tuple(out_hw), x.dtype)
    variant, ws = _conv_kernel_plan("forward", x, weight, y, stride, padding, dilation, groups)
    if variant == "interim":
        return xp_conv.conv2d_forward(cupy, matmul, x, weight, bias, stride, padding, dilation,
                                      groups, out_hw)
    if variant == "gemm":  # y (N, OC, HW) = W (OC, C) @ x (N, C, HW)
        n, c, h, w = x.shape
        y = matmul(weight.reshape(weight.shape[0], c), x.reshape(n, c, h * w)).reshape(y.shape)
        return y if bias is None else xp_conv._add_bias(cupy, y, bias)
    bias = None if bias is None else cupy.ascontiguousarray(bias)
    _k.conv2d_forward(x, weight, bias, y, ws, *stride, *padding, *dilation, groups,
                      _config.ALLOW_TF32, _stream())
    return y


def conv2d_backward_input(dy, weight, in_shape, stride, padding, dilation, groups):
    _check_same("conv2d_backward_input", dy, weight=weight)
    _conv_4d("conv2d_backward_input", dy, weight)
    dy, weight = cupy.ascontiguousarray(dy), cupy.ascontiguousarray(weight)
    dx = cupy.empty(tuple(in_shape), dy.dtype)
    variant, ws = _conv_kernel_plan("backward_input", dx, weight, dy, stride, padding, dilation,
                                    groups)
    if variant == "interim":
        return xp_conv.conv2d_backward_input(cupy, matmul, dy, weight, in_shape, stride, padding,
                                             dilation, groups)
    if variant == "gemm":  # dx (N, C, HW) = W^T (C, OC) @ dy (N, OC, HW)
        n, c, h, w = dx.shape
        oc = weight.shape[0]
        return matmul(weight.reshape(oc, c).T, dy.reshape(n, oc, h * w)).reshape(dx.shape)
    _k.conv2d_backward_input(dy, weight, dx, ws, *stride, *padding, *dilation, groups,
                             _config.ALLOW_TF32, _stream())
    return dx


def conv2d_backward_weight(x, dy, weight_shape, stride, padding, dilation, groups):
    _check_same("conv2d_backward_weight", x, grad_output=dy)
    _conv_4d("conv2d_backward_weight", x, dy)
    x, dy = cupy.ascontiguousarray(x), cupy.ascontiguousarray(dy)
    dw = cupy.empty(tuple(weight_shape), x.dtype)
    variant, ws = _conv_kernel_plan("backward_weight", x, dw, dy, stride, padding, dilation,
                                    groups)
    if variant == "interim":
        return xp_conv.conv2d_backward_weight(cupy, matmul, x, dy, weight_shape, stride, padding,
                                              dilation, groups)
    if variant == "gemm":  # one image: dW (OC, C) = dy (OC, HW) @ x (C, HW)^T
        oc, c = dw.shape[:2]
        hw = x.shape[2] * x.shape[3]
        return matmul(dy.reshape(oc, hw), x.reshape(c, hw).T).reshape(dw.shape)
    _k.conv2d_backward_weight(x, dy, dw, ws, *stride, *padding, *dilation, groups,
                              _config.ALLOW_TF32, _stream())
    return dw


_ATTN_FUSED = {}  # (dtype name, E, Ev, device id) -> why the fused kernels cannot run them


def _attention_interim_reason(q, k, v, dropout_p):
    """Why these inputs stay on the interim path (xp_attention); '' when the fused kernels of
    kernels/attention/ take them. Interim: PYDL_CUDA_INTERIM containing "attention",
    dropout_p > 0 (its Philox mask is drawn there), float64, head dims 0 or above 256, an
    empty batch or sequence, and devices the kernels do not cover (compute capability below
    8.0, or less shared memory per block than the head dim's tiles need)."""
    if "attention" in _config.CUDA_INTERIM:
        return "PYDL_CUDA_INTERIM=attention"
    if dropout_p > 0:
        return "dropout"
    if q.dtype not in _GEMM_DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        return f"dtype {q.dtype}"
    if q.ndim != 3 or k.ndim != 3 or v.ndim != 3 or 0 in q.shape + k.shape + v.shape:
        return "empty or not 3-D"
    key = (q.dtype.name, q.shape[2], v.shape[2], cupy.cuda.Device().id)
    if key not in _ATTN_FUSED:
        _ATTN_FUSED[key] = _k.attention_unsupported(*key[:3])
    return _ATTN_FUSED[key]


def _last_dim_contiguous(a):
    """a when its last dimension is contiguous (the fused kernels take the other strides as
    they are), else a contiguous copy; bfloat16 is moved as 16-bit words."""
    if a.shape[-1] <= 1 or a.strides[-1] == a.itemsize:
        return a
    if a.dtype == dt.bfloat16:
        return cupy.ascontiguousarray(a.view(cupy.uint16)).view(dt.bfloat16)
    return cupy.ascontiguousarray(a)


def _attention_mask(mask):
    """The additive mask view as float32, the kernels' mask type (a float32 view is passed as it
    is, zero strides included)."""
    if mask is None or mask.dtype == cupy.float32:
        return mask
    return mask.astype(cupy.float32)


def attention_forward(q, k, v, mask, scale: float, is_causal: bool, dropout_p: float = 0.0,
                      seed: int = 0, offset: int = 0):
    """As pydl.backend.cpu.attention_forward: (out (B, L, Ev), lse (B, L) float32 for half
    types); the L x S scores are never stored. float32, float16 and bfloat16 at head dims
    1 to 256 run the fused kernels (tensor cores for the half types, exact float32 FMA for
    float32); what _attention_interim_reason names goes through xp_attention."""
    _check_same("scaled_dot_product_attention", q, key=k, value=v)
    if _attention_interim_reason(q, k, v, dropout_p):
        return xp_attention.attention_forward(cupy, matmul, q, k, v, mask, float(scale),
                                              bool(is_causal), float(dropout_p), int(seed),
                                              int(offset))
    q, k, v = (_last_dim_contiguous(a) for a in (q, k, v))
    B, L = q.shape[:2]
    out = cupy.empty((B, L, v.shape[2]), q.dtype)
    lse = cupy.empty((B, L), cupy.float32)
    _k.attention_forward(q, k, v, _attention_mask(mask), out, lse, float(scale), bool(is_causal),
                         _stream())
    return out, lse


def attention_backward(q, k, v, mask, out, lse, dout, scale: float, is_causal: bool,
                       dropout_p: float = 0.0, seed: int = 0, offset: int = 0):
    """Gradients (dq, dk, dv) of attention_forward, on the same path as the forward. The
    fused backward recomputes P from lse and adds dQ into a zero-filled float32 buffer (dq
    itself for float32). A float mask's own gradient is formed in pydl/_ops/attention.py
    (_mask_grad, from lse), for either path."""
    _check_same("scaled_dot_product_attention_backward", q, key=k, value=v, output=out,
                grad_output=dout)
    if _attention_interim_reason(q, k, v, dropout_p):
        return xp_attention.attention_backward(cupy, matmul, q, k, v, mask, out, lse, dout,
                                               float(scale), bool(is_causal), float(dropout_p),
                                               int(seed), int(offset))
    q, k, v, out, dout = (_last_dim_contiguous(a) for a in (q, k, v, out, dout))
    B, L, E = q.shape
    S, Ev = k.shape[1], v.shape[2]
    lse = cupy.ascontiguousarray(lse, dtype=cupy.float32)
    dk = cupy.empty((B, S, E), q.dtype)
    dv = cupy.empty((B, S, Ev), q.dtype)
    dsum = cupy.empty((B, L), cupy.float32)
    if q.dtype == dt.float32:
        dq, acc = cupy.zeros((B, L, E), cupy.float32), None
    else:
        dq, acc = cupy.empty((B, L, E), q.dtype), cupy.zeros((B, L, E), cupy.float32)
    _k.attention_backward(q, k, v, _attention_mask(mask), out, lse, dout, dq, dk, dv, acc, dsum,
                          float(scale), bool(is_causal), _stream())
    return dq, dk, dv
