"""GPU tests of pydl._C.cuda.gemm: every kernel variant and dtype against a
float64 NumPy reference computed from the same (rounded) inputs, at awkward
sizes, with transposed views, padded leading dimensions, broadcast batches,
bias, activations, alpha/beta, and outputs poisoned with NaN."""
from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

pytestmark = pytest.mark.cuda

cupy = pytest.importorskip("cupy")
ml_dtypes = pytest.importorskip("ml_dtypes")
from pydl import _C  # noqa: E402

if not getattr(_C.cuda, "compiled", False) or _C.cuda.device_count() == 0:
    pytest.skip("no GPU visible to pydl", allow_module_level=True)

K = _C.cuda
BF16 = np.dtype(ml_dtypes.bfloat16)
NP_DTYPES = {"float32": np.dtype(np.float32), "float16": np.dtype(np.float16), "bfloat16": BF16}

# (variant, dtype, allow_tf32, relative Frobenius tolerance)
CASES = [
    ("simt_f32", "float32", False, 1e-5),
    ("mma_sync", "float32", True, 5e-3),
    ("mma_sync", "float16", False, 5e-3),
    ("mma_sync", "bfloat16", False, 2e-2),
]
CASE_IDS = [f"{v}-{d}{'-tf32' if t else ''}" for v, d, t, _ in CASES]

SHAPES = [(1, 1, 1), (1, 37, 5), (37, 1, 129), (127, 129, 33), (128, 256, 64), (250, 130, 17),
          (300, 200, 257)]


def _rng(*key):
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _empty(shape, dtype):
    if dtype == "bfloat16":
        return cupy.empty(shape, dtype=cupy.uint16).view(BF16)
    return cupy.empty(shape, dtype=NP_DTYPES[dtype])


def _poison(out, dtype):
    if dtype == "bfloat16":
        out.view(cupy.uint16).fill(0x7FC0)  # a bfloat16 NaN
    else:
        out.fill(float("nan"))


def _host(shape, dtype, rng, low=-1.0, high=1.0):
    """Random values in the dtype, kept away from zero."""
    x = rng.uniform(low, high, size=shape)
    x = np.where(np.abs(x) < 0.05, 0.05 + np.abs(x), x)
    return x.astype(NP_DTYPES[dtype])


def _to_gpu(x):
    if x.dtype == BF16:
        return cupy.asarray(np.ascontiguousarray(x).view(np.uint16)).view(BF16)
    return cupy.asarray(x)


def _to_host(x):
    if x.dtype == BF16:
        return cupy.asnumpy(x.view(cupy.uint16)).view(BF16)
    return cupy.asnumpy(x)


def _view(host, layout, rng, dtype):
    """A GPU view with the logical values of `host` (..., R, C) in the given layout:
    'row' contiguous, 'col' a transposed view, 'padded' a slice of a wider row-major array."""
    if layout == "row":
        return _to_gpu(host)
    if layout == "col":
        t = _to_gpu(np.ascontiguousarray(np.swapaxes(host, -1, -2)))
        return cupy.swapaxes(t, -1, -2)
    if layout == "padded":
        wide_shape = host.shape[:-1] + (host.shape[-1] + 7,)
        wide = _host(wide_shape, dtype, rng)
        wide[..., : host.shape[-1]] = host
        return _to_gpu(wide)[..., : host.shape[-1]]
    raise ValueError(layout)


def _gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def _reference(a, b, out_old, bias, alpha, beta, activation):
    r = alpha * np.matmul(a.astype(np.float64), b.astype(np.float64))
    if beta != 0.0:
        r = r + beta * out_old.astype(np.float64)
    if bias is not None:
        r = r + bias.astype(np.float64)
    if activation == "relu":
        r = np.maximum(r, 0.0)
    elif activation == "gelu":
        r = _gelu(r)
    return r


def _run(variant, dtype, tf32, tol, a_h, b_h, out_shape, *, a_layout="row", b_layout="row", bias=False,
         alpha=1.0, beta=0.0, activation="none", a_view=None, b_view=None, out_pad=0, seed=0):
    rng = _rng(variant, dtype, out_shape, a_layout, b_layout, seed)
    a = a_view if a_view is not None else _view(a_h, a_layout, rng, dtype)
    b = b_view if b_view is not None else _view(b_h, b_layout, rng, dtype)
    bias_h = _host((out_shape[-1],), dtype, rng) if bias else None
    bias_d = _to_gpu(bias_h) if bias else None
    old_h = _host(out_shape, dtype, rng)
    if out_pad:
        wide = _to_gpu(_host(out_shape[:-1] + (out_shape[-1] + out_pad,), dtype, rng))
        out = wide[..., : out_shape[-1]]
    else:
        out = _empty(out_shape, dtype)
    if beta != 0.0:
        if dtype == "bfloat16":
            out.view(cupy.uint16)[...] = _to_gpu(old_h).view(cupy.uint16)
        else:
            out[...] = _to_gpu(old_h)
    else:
        _poison(out, dtype)
    K.gemm(a, b, out, bias_d, alpha, beta, activation, tf32, cupy.cuda.get_current_stream().ptr,
           variant=variant)
    got = _to_host(out).astype(np.float64)
    ref = _reference(a_h, b_h, old_h, bias_h, alpha, beta, activation)
    assert not np.isnan(got).any(), "NaN in the output"
    err = np.linalg.norm(got - ref) / max(np.linalg.norm(ref), 1e-30)
    assert err < tol, f"relative error {err:.3e} >= {tol:.1e}"
    return out


@pytest.mark.parametrize("variant,dtype,tf32,tol", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("m,n,k", SHAPES)
def test_shapes(variant, dtype, tf32, tol, m, n, k):
    rng = _rng("shapes", variant, dtype, m, n, k)
    a = _host((m, k), dtype, rng)
    b = _host((k, n), dtype, rng)
    _run(variant, dtype, tf32, tol, a, b, (m, n))


@pytest.mark.parametrize("variant,dtype,tf32,tol", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("a_layout", ["row", "col", "padded"])
@pytest.mark.parametrize("b_layout", ["row", "col", "padded"])
@pytest.mark.parametrize("m,n,k", [(127, 129, 33), (64, 136, 40), (5, 3, 1)])
def test_layouts(variant, dtype, tf32, tol, a_layout, b_layout, m, n, k):
    rng = _rng("layouts", variant, dtype, a_layout, b_layout, m, n, k)
    a = _host((m, k), dtype, rng)
    b = _host((k, n), dtype, rng)
    _run(variant, dtype, tf32, tol, a, b, (m, n), a_layout=a_layout, b_layout=b_layout)


@pytest.mark.parametrize("variant,dtype,tf32,tol", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("activation", ["none", "relu", "gelu"])
@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (0.5, 0.0), (1.5, -0.75)])
def test_epilogue(variant, dtype, tf32, tol, activation, alpha, beta):
    m, n, k = 130, 97, 70
    rng = _rng("epilogue", variant, dtype, activation, alpha, beta)
    a = _host((m, k), dtype, rng)
    b = _host((k, n), dtype, rng)
    _run(variant, dtype, tf32, tol, a, b, (m, n), bias=True, alpha=alpha, beta=beta, activation=activation,
         out_pad=3)


@pytest.mark.parametrize("variant,dtype,tf32,tol", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("broadcast", ["none", "a2d", "b2d", "a_stride0", "b_stride0"])
@pytest.mark.parametrize("a_layout,b_layout", [("row", "row"), ("col", "col"), ("padded", "col")])
def test_batched(variant, dtype, tf32, tol, broadcast, a_layout, b_layout):
    batch, m, n, k = 3, 65, 31, 47
    rng = _rng("batched", variant, dtype, broadcast, a_layout, b_layout)
    a = _host((batch, m, k), dtype, rng)
    b = _host((batch, k, n), dtype, rng)
    a_view = b_view = None
    if broadcast == "a2d":
        a = a[0]
    elif broadcast == "b2d":
        b = b[0]
    elif broadcast == "a_stride0":
        a = np.broadcast_to(a[:1], a.shape)
        a_view = cupy.broadcast_to(_view(a[0:1], a_layout, rng, dtype), a.shape)
        assert a_view.strides[0] == 0
    elif broadcast == "b_stride0":
        b = np.broadcast_to(b[:1], b.shape)
        b_view = cupy.broadcast_to(_view(b[0:1], b_layout, rng, dtype), b.shape)
        assert b_view.strides[0] == 0
    _run(variant, dtype, tf32, tol, a, b, (batch, m, n), a_layout=a_layout, b_layout=b_layout, a_view=a_view,
         b_view=b_view, bias=True, activation="relu")


@pytest.mark.parametrize("variant,dtype,tf32,tol", CASES, ids=CASE_IDS)
def test_misaligned_base(variant, dtype, tf32, tol):
    """Operands that start one element past a 16-byte boundary take the unaligned load path."""
    m, n, k = 67, 45, 29
    rng = _rng("misaligned", variant, dtype)
    a = _host((m, k), dtype, rng)
    b = _host((k, n), dtype, rng)
    a_flat = _to_gpu(np.concatenate([_host((1,), dtype, rng), a.reshape(-1)]))
    b_flat = _to_gpu(np.concatenate([_host((1,), dtype, rng), b.reshape(-1)]))
    a_view = a_flat[1:].reshape(m, k)
    b_view = b_flat[1:].reshape(k, n)
    _run(variant, dtype, tf32, tol, a, b, (m, n), a_view=a_view, b_view=b_view, bias=True)


@pytest.mark.parametrize("variant,dtype,tf32,tol", CASES, ids=CASE_IDS)
def test_large_k(variant, dtype, tf32, tol):
    m, n, k = 192, 160, 1500
    rng = _rng("large_k", variant, dtype)
    a = _host((m, k), dtype, rng)
    b = _host((k, n), dtype, rng)
    _run(variant, dtype, tf32, tol, a, b, (m, n))


def test_default_variant_choice():
    f32 = cupy.ones((4, 4), cupy.float32)
    f16 = cupy.ones((4, 4), cupy.float16)
    assert K.gemm_variant(f32, f32, f32) == "simt_f32"
    assert K.gemm_variant(f32, f32, f32, allow_tf32=True) == "mma_sync"
    assert K.gemm_variant(f16, f16, f16) in K.gemm_variants()
    assert set(K.gemm_variants()) >= {"simt_f32", "mma_sync"}


def test_default_call_matches_reference():
    rng = _rng("default")
    a = _host((33, 20), "float32", rng)
    b = _host((20, 17), "float32", rng)
    out = cupy.empty((33, 17), cupy.float32)
    K.gemm(_to_gpu(a), _to_gpu(b), out)
    np.testing.assert_allclose(cupy.asnumpy(out), a.astype(np.float64) @ b, rtol=1e-5, atol=1e-5)


# ---- bad inputs ------------------------------------------------------------------------

def _arr(shape, dtype="float32"):
    if dtype == "bfloat16":
        return cupy.zeros(shape, dtype=cupy.uint16).view(BF16)
    return cupy.ones(shape, dtype=NP_DTYPES[dtype])


def test_dtype_mix_is_type_error():
    with pytest.raises(TypeError, match="gemm"):
        K.gemm(_arr((4, 4)), _arr((4, 4), "float16"), _arr((4, 4)))
    with pytest.raises(TypeError, match="gemm"):
        K.gemm(_arr((4, 4), "float16"), _arr((4, 4), "float16"), _arr((4, 4)))
    with pytest.raises(TypeError, match="gemm"):
        K.gemm(_arr((4, 4)), _arr((4, 4)), _arr((4, 4)), _arr((4,), "float16"))
    with pytest.raises(TypeError, match="gemm"):
        x = cupy.ones((4, 4), cupy.float64)
        K.gemm(x, x, x)


def test_shape_mismatch_is_value_error():
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((6, 3)), _arr((4, 3)))
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((5, 3)), _arr((4, 4)))
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((2, 4, 5)), _arr((3, 5, 3)), _arr((3, 4, 3)))
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((2, 4, 5)), _arr((5, 3)), _arr((4, 3)))
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((5, 3)), _arr((4, 3)), _arr((4,)))
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((5,)), _arr((5, 3)), _arr((3,)))


def test_bad_layout_is_value_error():
    strided = _arr((8, 10))[::2, ::2]  # neither dimension contiguous
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(strided, _arr((5, 3)), _arr((4, 3)))
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((5, 3)), _arr((3, 4)).T)  # out must be row-major
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((5, 3)), _arr((4, 6))[:, ::2])


def test_unknown_activation_and_variant():
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((5, 3)), _arr((4, 3)), activation="tanh")
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((5, 3)), _arr((4, 3)), variant="nope")
    # float32 on tensor cores only with allow_tf32; simt_f32 is float32 only
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5)), _arr((5, 3)), _arr((4, 3)), variant="mma_sync")
    with pytest.raises(ValueError, match="gemm"):
        K.gemm(_arr((4, 5), "float16"), _arr((5, 3), "float16"), _arr((4, 3), "float16"), variant="simt_f32")


def test_host_array_is_rejected():
    with pytest.raises(TypeError, match="gemm"):
        K.gemm(np.ones((4, 4), np.float32), _arr((4, 4)), _arr((4, 4)))
