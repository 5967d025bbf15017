"""Irregular GPU kernels written with Numba CUDA, each beside its exact NumPy twin.

Kernels (one thread per element, grid-stride loops, launched on CuPy's
current stream; NumPy arrays only under the CUDA simulator):

- index_add_rows / embedding_backward: out[index[i], :] += src[i, :] with
  atomics, so duplicate indices accumulate (embedding backward, GCN
  aggregation by destination node). The order of the atomic adds varies, so
  the GPU result matches the twin to rounding, not bit for bit.
- dropout / dropout_backward: Philox-4x32-10 keep mask (see pydl.backend.rng);
  one thread per Philox block of four counters. The mask and y equal the
  twin's bit for bit.
- adam_step: torch.optim.Adam / AdamW (and amsgrad) in one pass over param,
  grad and state. The GPU may fuse multiply-adds, so it matches the twin to
  a few ulps.
- random_uint32: the raw Philox stream, the device twin of rng.random_uint32.

Numba is imported lazily (`from numba import cuda` needs the CUDA runtime
even in the simulator), and the kernels are compiled once per process.
"""

import functools
import math

import numpy as np

from pydl.backend import rng

_THREADS = 256
_SIM_THREADS = 32  # the simulator runs one Python thread per CUDA thread
_MAX_BLOCKS = 16384

_FLOATS = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_ACCUMULATE = (np.dtype(np.float32), np.dtype(np.float64))

# Philox constants as uint64 so that Numba types every step as uint64.
_M0 = np.uint64(rng.PHILOX_M0)
_M1 = np.uint64(rng.PHILOX_M1)
_W0 = np.uint64(rng.PHILOX_W0)
_W1 = np.uint64(rng.PHILOX_W1)
_LO32 = np.uint64(0xFFFFFFFF)
_U0 = np.uint64(0)
_S32 = np.uint64(32)
_S_UNIFORM = np.uint64(32 - rng.UNIFORM_BITS)
_ROUNDS = rng.PHILOX_ROUNDS

# numba.cuda, bound by _kernels() on first use. It must be a module global:
# the simulator runs a kernel by swapping the globals that name numba.cuda.
cuda = None


# ---------------------------------------------------------------- launching

def simulator_enabled():
    """Return True when Numba runs CUDA kernels in its CPU simulator (NUMBA_ENABLE_CUDASIM=1)."""
    import numba

    return bool(numba.config.ENABLE_CUDASIM)


def _array_module(a):
    """Return cupy for a CuPy array, numpy otherwise."""
    if type(a).__module__.split(".")[0] == "cupy":
        import cupy

        return cupy
    return np


def _require_device_arrays(op, *arrays):
    """Raise TypeError unless the arrays live where the kernels run (CuPy, or NumPy in the simulator)."""
    sim = simulator_enabled()
    for a in arrays:
        if sim and not isinstance(a, np.ndarray):
            raise TypeError(f"{op}: the CUDA simulator takes NumPy arrays, got {type(a).__name__}")
        if not sim and not hasattr(a, "__cuda_array_interface__"):
            raise TypeError(f"{op}: expects CuPy arrays, got {type(a).__name__} (use {op}_cpu for NumPy)")


def _launch(kernel, work, *args):
    """Launch kernel over `work` grid-stride items on the caller's stream."""
    if work <= 0:
        return
    if simulator_enabled():
        kernel[min(-(-work // _SIM_THREADS), _MAX_BLOCKS), _SIM_THREADS](*args)
    else:
        _gpu_launcher()(kernel, min(-(-work // _THREADS), _MAX_BLOCKS), args)


@functools.cache
def _gpu_launcher():
    """Return launch(kernel, blocks, args) for CuPy arrays on CuPy's current stream."""
    import cupy
    from numba import cuda

    streams = {}

    # One context check for the whole launch instead of one per Numba call in it.
    @cuda.require_context
    def launch(kernel, blocks, args):
        """Launch kernel[blocks, _THREADS] on CuPy's current stream."""
        ptr = cupy.cuda.get_current_stream().ptr
        stream = streams.get(ptr)
        if stream is None:
            if len(streams) > 64:
                streams.clear()
            stream = streams[ptr] = cuda.external_stream(ptr)
        # sync=False: the kernel runs on the stream that produced the arrays.
        args = [cuda.as_cuda_array(a, sync=False) if hasattr(a, "__cuda_array_interface__") else a
                for a in args]
        kernel[blocks, _THREADS, stream](*args)

    return launch


@functools.cache
def _kernels():
    """Compile (lazily, once) and return the Numba CUDA kernels."""
    from types import SimpleNamespace

    if not hasattr(np, "row_stack"):
        # numba-cuda 0.30 registers np.row_stack when it first compiles; NumPy 2.5
        # removed that alias of np.vstack, which fails every compilation.
        np.row_stack = np.vstack

    global cuda
    from numba import cuda

    if not simulator_enabled():
        from numba.cuda.core import config

        # Small parameters and bias vectors launch small grids by design.
        config.CUDA_LOW_OCCUPANCY_WARNINGS = False

    @cuda.jit(device=True)
    def philox4x32_10(c0, c1, c2, c3, k0, k1):
        """Philox-4x32-10 of four counter words under key (k0, k1); uint64 words holding 32 bits."""
        for _ in range(_ROUNDS):
            p0 = c0 * _M0
            p1 = c2 * _M1
            c0, c1, c2, c3 = (p1 >> _S32) ^ c1 ^ k0, p1 & _LO32, (p0 >> _S32) ^ c3 ^ k1, p0 & _LO32
            k0 = (k0 + _W0) & _LO32
            k1 = (k1 + _W1) & _LO32
        return c0, c1, c2, c3

    @cuda.jit
    def random_uint32_kernel(out, n, nblocks, block0, lane0, k0, k1):
        """Write the stream values of counters offset .. offset+n-1 into out (uint32)."""
        for t in range(cuda.grid(1), nblocks, cuda.gridsize(1)):
            b = block0 + np.uint64(t)
            w0, w1, w2, w3 = philox4x32_10(b & _LO32, b >> _S32, _U0, _U0, k0, k1)
            j = t * 4 - lane0
            if 0 <= j < n:
                out[j] = w0
            if 0 <= j + 1 < n:
                out[j + 1] = w1
            if 0 <= j + 2 < n:
                out[j + 2] = w2
            if 0 <= j + 3 < n:
                out[j + 3] = w3

    @cuda.jit(device=True)
    def dropout_one(x, y, mask, j, n, word, threshold, scale, zero):
        """Keep or drop element j by its Philox word."""
        if 0 <= j < n:
            if (word >> _S_UNIFORM) >= threshold:
                y[j] = x[j] * scale
                mask[j] = 1
            else:
                y[j] = x[j] * zero
                mask[j] = 0

    @cuda.jit
    def dropout_kernel(x, y, mask, n, nblocks, block0, lane0, k0, k1, threshold, scale, zero):
        """Dropout of the flat x into y and mask, one Philox block (four elements) per step."""
        for t in range(cuda.grid(1), nblocks, cuda.gridsize(1)):
            b = block0 + np.uint64(t)
            w0, w1, w2, w3 = philox4x32_10(b & _LO32, b >> _S32, _U0, _U0, k0, k1)
            j = t * 4 - lane0
            dropout_one(x, y, mask, j, n, w0, threshold, scale, zero)
            dropout_one(x, y, mask, j + 1, n, w1, threshold, scale, zero)
            dropout_one(x, y, mask, j + 2, n, w2, threshold, scale, zero)
            dropout_one(x, y, mask, j + 3, n, w3, threshold, scale, zero)

    @cuda.jit
    def dropout_backward_kernel(dy, mask, dx, n, scale, zero):
        """dx = dy * mask * scale over flat arrays."""
        for i in range(cuda.grid(1), n, cuda.gridsize(1)):
            if mask[i] != 0:
                dx[i] = dy[i] * scale
            else:
                dx[i] = dy[i] * zero

    @cuda.jit
    def index_add_rows_kernel(out, index, src, skip):
        """out[index[i], c] += src[i, c] atomically, skipping rows whose index equals skip."""
        n = src.shape[0]
        d = src.shape[1]
        for t in range(cuda.grid(1), n * d, cuda.gridsize(1)):
            i = t // d
            c = t - i * d
            r = index[i]
            if r != skip:
                cuda.atomic.add(out, (r, c), src[i, c])

    @cuda.jit
    def adam_kernel(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad, l2, decay,
                    w1, w1c, beta2, c2, bc2_sqrt, eps, neg_step):
        """One Adam/AdamW step over flat param and state, in place."""
        for i in range(cuda.grid(1), param.size, cuda.gridsize(1)):
            p = param[i]
            g = grad[i]
            if l2 != 0:
                g = g + l2 * p
            p = p * decay
            m = exp_avg[i]
            if w1 < 0.5:
                m = m + w1 * (g - m)
            else:
                m = g - (g - m) * w1c
            v = exp_avg_sq[i] * beta2 + c2 * g * g
            exp_avg[i] = m
            exp_avg_sq[i] = v
            if amsgrad:
                v = max(max_exp_avg_sq[i], v)
                max_exp_avg_sq[i] = v
            denom = math.sqrt(v) / bc2_sqrt + eps
            param[i] = p + neg_step * m / denom

    return SimpleNamespace(
        philox4x32_10=philox4x32_10,
        random_uint32=random_uint32_kernel,
        dropout=dropout_kernel,
        dropout_backward=dropout_backward_kernel,
        index_add_rows=index_add_rows_kernel,
        adam=adam_kernel,
    )


# ---------------------------------------------------------------- random stream

def _stream_layout(seed, offset, n):
    """Return (nblocks, block0, lane0, k0, k1) of a draw of n counters at offset."""
    offset = int(offset)
    if offset < 0:
        raise ValueError(f"random offset must be non-negative, got {offset}")
    k0, k1 = rng.split_seed(seed)
    lane0 = offset % 4
    return (lane0 + n + 3) // 4, np.uint64(offset // 4), lane0, np.uint64(k0), np.uint64(k1)


def random_uint32(out, seed, offset):
    """Fill the contiguous uint32 array out with the stream values at counters offset .. offset+out.size-1."""
    _require_device_arrays("random_uint32", out)
    if out.dtype != np.uint32 or not out.flags.c_contiguous:
        raise ValueError("random_uint32: out must be a C-contiguous uint32 array")
    flat = out.reshape(-1)
    n = flat.size
    nblocks, block0, lane0, k0, k1 = _stream_layout(seed, offset, n)
    _launch(_kernels().random_uint32, nblocks, flat, n, nblocks, block0, lane0, k0, k1)
    return out


# ---------------------------------------------------------------- dropout

def _compute_dtype(op, dtype):
    """Return the dtype an elementwise float op computes in (float32 for float16)."""
    dtype = np.dtype(dtype)
    if dtype not in _FLOATS:
        raise TypeError(f"{op}: expects float16, float32 or float64, got {dtype}")
    return np.dtype(np.float32) if dtype == np.float16 else dtype


def _dropout_special(x, p, xp):
    """Return (y, mask) for p == 0 or p == 1, else None."""
    if p == 0:
        return x.copy(), xp.ones(x.shape, dtype=xp.uint8)
    if p == 1:
        # x * 0 rather than zeros: NaN and inf stay visible, as in the general case.
        return x * x.dtype.type(0), xp.zeros(x.shape, dtype=xp.uint8)
    return None


def dropout(x, p, seed, offset):
    """Return (x * keep / (1 - p), keep as uint8) with keep = uniform(seed, offset + flat index) >= p."""
    _require_device_arrays("dropout", x)
    xp = _array_module(x)
    ct = _compute_dtype("dropout", x.dtype)
    threshold = rng.keep_threshold(p)
    special = _dropout_special(x, p, xp)
    if special is not None:
        return special
    flat = xp.ascontiguousarray(x).reshape(-1)
    y = xp.empty_like(flat)
    mask = xp.empty(flat.shape, dtype=xp.uint8)
    n = flat.size
    nblocks, block0, lane0, k0, k1 = _stream_layout(seed, offset, n)
    _launch(_kernels().dropout, nblocks, flat, y, mask, n, nblocks, block0, lane0, k0, k1,
            np.uint64(threshold), ct.type(1.0 / (1.0 - p)), ct.type(0))
    return y.reshape(x.shape), mask.reshape(x.shape)


def dropout_cpu(x, p, seed, offset):
    """NumPy twin of dropout: the same mask and the same y, bit for bit."""
    ct = _compute_dtype("dropout", x.dtype)
    special = _dropout_special(x, p, np)
    if special is not None:
        return special
    if int(offset) < 0:
        raise ValueError(f"random offset must be non-negative, got {offset}")
    keep = rng.dropout_keep(seed, offset, x.size, p).reshape(x.shape)
    factor = np.where(keep, ct.type(1.0 / (1.0 - p)), ct.type(0))
    y = (x.astype(ct, copy=False) * factor).astype(x.dtype, copy=False)
    return y, keep.astype(np.uint8)


def _check_dropout_backward(dy, mask, p):
    """Validate dropout_backward arguments; return the compute dtype."""
    ct = _compute_dtype("dropout_backward", dy.dtype)
    if dy.shape != mask.shape:
        raise ValueError(f"dropout_backward: dy {dy.shape} and mask {mask.shape} differ in shape")
    rng.keep_threshold(p)
    return ct


def dropout_backward(dy, mask, p):
    """Return dx = dy * mask / (1 - p)."""
    _require_device_arrays("dropout_backward", dy, mask)
    xp = _array_module(dy)
    ct = _check_dropout_backward(dy, mask, p)
    if p == 1:
        return dy * dy.dtype.type(0)
    flat_dy = xp.ascontiguousarray(dy).reshape(-1)
    flat_mask = xp.ascontiguousarray(mask).reshape(-1)
    dx = xp.empty_like(flat_dy)
    _launch(_kernels().dropout_backward, flat_dy.size, flat_dy, flat_mask, dx, flat_dy.size,
            ct.type(1.0 / (1.0 - p)), ct.type(0))
    return dx.reshape(dy.shape)


def dropout_backward_cpu(dy, mask, p):
    """NumPy twin of dropout_backward, bit for bit."""
    ct = _check_dropout_backward(dy, mask, p)
    if p == 1:
        return dy * dy.dtype.type(0)
    factor = np.where(mask != 0, ct.type(1.0 / (1.0 - p)), ct.type(0))
    return (dy.astype(ct, copy=False) * factor).astype(dy.dtype, copy=False)


# ---------------------------------------------------------------- index_add_rows / embedding

def _check_index_add(op, out, index, src, xp):
    """Validate shapes, dtypes and index range of out[index] += src; return index as int64."""
    if out.ndim != 2 or src.ndim != 2 or index.ndim != 1:
        raise ValueError(f"{op}: expects out (R, D), index (n,), src (n, D); got out {out.shape}, "
                         f"index {index.shape}, src {src.shape}")
    if src.shape[0] != index.shape[0] or src.shape[1] != out.shape[1]:
        raise ValueError(f"{op}: shapes do not match: out {out.shape}, index {index.shape}, src {src.shape}")
    if out.dtype not in _ACCUMULATE or src.dtype != out.dtype:
        raise TypeError(f"{op}: out and src must share a float32 or float64 dtype, got {out.dtype} and {src.dtype}")
    if index.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must be an integer array, got {index.dtype}")
    index = index.astype(xp.int64, copy=False)
    rows = out.shape[0]
    # One reduction: negative indices wrap to huge values in the unsigned view.
    if index.size and int(index.view(xp.uint64).max()) >= rows:
        lo, hi = int(index.min()), int(index.max())
        raise IndexError(f"{op}: index out of range for {rows} rows (min {lo}, max {hi})")
    return index


def _index_add_rows(op, out, index, src, skip):
    """Launch out[index[i]] += src[i] for rows whose index is not skip."""
    _require_device_arrays(op, out, index, src)
    index = _check_index_add(op, out, index, src, _array_module(out))
    _launch(_kernels().index_add_rows, src.size, out, index, src, np.int64(skip))
    return out


def index_add_rows(out, index, src):
    """out[index[i], :] += src[i, :] in place on the GPU, duplicates accumulating; returns out."""
    return _index_add_rows("index_add_rows", out, index, src, -1)


def index_add_rows_cpu(out, index, src):
    """NumPy twin of index_add_rows (accumulates duplicates in index order); returns out."""
    index = _check_index_add("index_add_rows", out, index, src, np)
    np.add.at(out, index, src)
    return out


def _embedding_args(grad_out, indices, num_embeddings, padding_idx):
    """Validate embedding_backward arguments; return (src rows, flat indices, skip, accumulate dtype)."""
    if grad_out.ndim < 1 or tuple(grad_out.shape[:-1]) != tuple(indices.shape):
        raise ValueError(f"embedding_backward: grad_out {grad_out.shape} does not match indices {indices.shape}")
    _compute_dtype("embedding_backward", grad_out.dtype)
    skip = -1
    if padding_idx is not None:
        skip = int(padding_idx) + (num_embeddings if padding_idx < 0 else 0)
        if not 0 <= skip < num_embeddings:
            raise ValueError(f"embedding_backward: padding_idx {padding_idx} out of range for {num_embeddings}")
    # float16 gradients accumulate in float32 and are rounded once at the end.
    acc = np.dtype(np.float32) if grad_out.dtype == np.float16 else grad_out.dtype
    src = grad_out.reshape(-1, grad_out.shape[-1]).astype(acc, copy=False)
    return src, indices.reshape(-1), skip, acc


def embedding_backward(grad_out, indices, num_embeddings, padding_idx=None):
    """Return grad_weight (num_embeddings, D): rows of grad_out (..., D) summed by indices (...)."""
    _require_device_arrays("embedding_backward", grad_out, indices)
    xp = _array_module(grad_out)
    src, index, skip, acc = _embedding_args(grad_out, indices, num_embeddings, padding_idx)
    grad_weight = xp.zeros((num_embeddings, src.shape[1]), dtype=acc)
    _index_add_rows("embedding_backward", grad_weight, index, src, skip)
    return grad_weight.astype(grad_out.dtype, copy=False)


def embedding_backward_cpu(grad_out, indices, num_embeddings, padding_idx=None):
    """NumPy twin of embedding_backward."""
    src, index, skip, acc = _embedding_args(grad_out, indices, num_embeddings, padding_idx)
    grad_weight = np.zeros((num_embeddings, src.shape[1]), dtype=acc)
    index = _check_index_add("embedding_backward", grad_weight, index, src, np)
    keep = index != skip
    np.add.at(grad_weight, index[keep], src[keep])
    return grad_weight.astype(grad_out.dtype, copy=False)


# ---------------------------------------------------------------- Adam / AdamW

def _adam_scalars(op, param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
                  decoupled, amsgrad, max_exp_avg_sq):
    """Validate an Adam step and return its scalars in the parameter dtype."""
    arrays = [param, grad, exp_avg, exp_avg_sq] + ([max_exp_avg_sq] if amsgrad else [])
    if amsgrad and max_exp_avg_sq is None:
        raise ValueError(f"{op}: amsgrad needs max_exp_avg_sq")
    if param.dtype not in _ACCUMULATE:
        raise TypeError(f"{op}: expects float32 or float64 parameters, got {param.dtype}")
    for a in arrays:
        if a.shape != param.shape:
            raise ValueError(f"{op}: shape {a.shape} does not match parameter {param.shape}")
        if a.dtype != param.dtype:
            raise TypeError(f"{op}: dtype {a.dtype} does not match parameter {param.dtype}")
        if not a.flags.c_contiguous:
            raise ValueError(f"{op}: parameter, gradient and state must be C-contiguous")
    if int(step) < 1:
        raise ValueError(f"{op}: step counts from 1, got {step}")
    t = param.dtype.type
    bias_correction1 = 1 - beta1 ** int(step)
    bias_correction2 = 1 - beta2 ** int(step)
    l2 = 0.0 if decoupled else weight_decay
    decay = 1 - lr * weight_decay if decoupled and weight_decay != 0 else 1.0
    w1 = t(1 - beta1)
    return dict(
        l2=t(l2), decay=t(decay), w1=w1, w1c=t(1) - w1, beta2=t(beta2), c2=t(1 - beta2),
        bc2_sqrt=t(bias_correction2 ** 0.5), eps=t(eps), neg_step=t(-(lr / bias_correction1)),
    )


def adam_step(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
              decoupled, amsgrad=False, max_exp_avg_sq=None):
    """One fused Adam (decoupled=False) or AdamW (decoupled=True) step, in place, in one kernel."""
    arrays = [param, grad, exp_avg, exp_avg_sq] + ([max_exp_avg_sq] if amsgrad and max_exp_avg_sq is not None else [])
    _require_device_arrays("adam_step", *arrays)
    s = _adam_scalars("adam_step", param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                      weight_decay, step, decoupled, amsgrad, max_exp_avg_sq)
    flat = [a.reshape(-1) for a in (param, grad, exp_avg, exp_avg_sq)]
    # Without amsgrad the kernel never reads its max buffer: pass an empty view, not an
    # alias of the state (the simulator copies each argument back after the launch).
    vmax = max_exp_avg_sq.reshape(-1) if amsgrad else flat[0][:0]
    _launch(_kernels().adam, param.size, *flat, vmax, bool(amsgrad), s["l2"], s["decay"], s["w1"],
            s["w1c"], s["beta2"], s["c2"], s["bc2_sqrt"], s["eps"], s["neg_step"])


def adam_step_cpu(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, weight_decay, step,
                  decoupled, amsgrad=False, max_exp_avg_sq=None):
    """NumPy twin of adam_step: the same operations in the same order, in place."""
    s = _adam_scalars("adam_step", param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps,
                      weight_decay, step, decoupled, amsgrad, max_exp_avg_sq)
    g = grad
    if s["l2"] != 0:
        g = g + s["l2"] * param
    p = param * s["decay"]
    m = exp_avg
    if s["w1"] < 0.5:
        m = m + s["w1"] * (g - m)
    else:
        m = g - (g - m) * s["w1c"]
    v = exp_avg_sq * s["beta2"] + s["c2"] * g * g
    exp_avg[...] = m
    exp_avg_sq[...] = v
    if amsgrad:
        np.maximum(max_exp_avg_sq, v, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    denom = np.sqrt(v) / s["bc2_sqrt"] + s["eps"]
    param[...] = p + s["neg_step"] * m / denom
