"""GPU tests of the fused attention kernels (kernels/attention/: tensor cores for float16 and
bfloat16, exact float32 FMA for float32), called through pydl.backend.cuda and pydl._C.cuda
against the CPU backend in float64 on the same dtype-rounded inputs: output, log-sum-exp and
the three input gradients, over head dims 16 to 256 (each padded instantiation, E != Ev),
lengths 1, primes and tile multiples, causal with L < S and L > S, bool and additive masks in
every broadcast pattern, rows that see no key, strided and non-contiguous inputs, outputs
poisoned with NaN before the call, bad inputs, and the interim path (PYDL_CUDA_INTERIM).

Tolerance, as in test_cuda_conv_attn.py: the result's own rounding plus
4 sqrt(E) eps * max |ref| for the arithmetic. Here eps is the input type's for every result:
the fused kernels round P to the input type before P V (and dS before dS K, dS^T Q), as
tensor-core flash attention does, so the half types' forward carries eps(dtype) where the
interim path, which multiplies in float32, carries eps(float32). The three gradients share one
scale, the largest of them (dK vanishes with a single key, its rounding error does not). The
log-sum-exp comes from float32 scores and sums: 8 sqrt(E) eps(float32).
"""
import math

import ml_dtypes
import numpy as np
import pytest

import pydl

if not pydl.cuda.is_available():
    pytest.skip(f"needs a GPU: {pydl.cuda.unavailable_reason()}", allow_module_level=True)

import cupy as cp  # noqa: E402

from pydl import _C, _config  # noqa: E402
from pydl._ops.attention import _mask_view  # noqa: E402
from pydl.backend import cpu, cuda as gpu  # noqa: E402

from helpers import fresh_rng  # noqa: E402

pytestmark = pytest.mark.cuda

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
OP = "scaled_dot_product_attention"


def _bf16_round_trips():
    a = np.arange(4, dtype=np.float32).astype(BF16)
    try:
        return np.array_equal(gpu.to_numpy(gpu.from_numpy(a)), a)
    except Exception:  # a CuPy without ml_dtypes' bfloat16
        return False


DTYPES = [pytest.param(F32, id="float32"), pytest.param(F16, id="float16"),
          pytest.param(BF16, id="bfloat16", marks=pytest.mark.skipif(not _bf16_round_trips(),
                                                                     reason="CuPy lacks bfloat16"))]


def eps(dtype):
    return float(ml_dtypes.finfo(dtype).eps)


def _bound(ref, E, dtype, scale=1.0, softmax_scale=None):
    """|err| <= 2 eps |ref| + 4 w eps max(|ref|, scale, 1): w = sqrt(E) at the usual softmax
    scale 1/sqrt(E), E * softmax_scale when that is larger (the scores' rounding grows too)."""
    w = math.sqrt(E) if softmax_scale is None else max(math.sqrt(E), E * abs(softmax_scale))
    mag = max(np.abs(ref).max(initial=0), scale, 1.0)
    return 2 * eps(dtype) * np.abs(ref) + 4 * w * eps(dtype) * mag


def _grad_scale(grads):
    """The three gradients share one scale: dK can vanish (one key: dS = P (dP - D) = 0) while
    its rounding error, from dP - rowsum(dO * O), does not."""
    return max(np.abs(g).max(initial=0) for g in grads)


def _rounded(rng, shape, dtype):
    """Random values already representable in dtype, as float64 (the reference's input)."""
    return rng.standard_normal(shape).astype(dtype).astype(F64)


def _g(a, dtype):
    return gpu.from_numpy(np.ascontiguousarray(a.astype(dtype)))


def _nan(shape, dtype):
    """A GPU array of NaN (all-ones bits for the 16-bit types, which CuPy may not fill)."""
    if np.dtype(dtype).itemsize == 2:
        return cp.full(shape, 0xFFFF, cp.uint16).view(dtype)
    return cp.full(shape, np.nan, dtype)


def _check(out_gpu, ref, bound, dtype, what):
    out = gpu.to_numpy(out_gpu)
    assert out.dtype == dtype, f"{what}: dtype {out.dtype}, expected {dtype}"
    out = out.astype(F64)
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    assert np.array_equal(np.isnan(out), np.isnan(ref)), f"{what}: NaN where the reference has none"
    err = np.abs(np.nan_to_num(out - ref))
    bound = np.broadcast_to(bound + 1e-300, err.shape)
    worst = (err / bound).argmax()
    assert (err <= bound).all(), f"{what}: error {err.flat[worst]:.3g} > {bound.flat[worst]:.3g} " \
                                 f"at {np.unravel_index(worst, err.shape)}"


def _check_lse(lse_gpu, lse, E, what="lse"):
    got = cp.asnumpy(lse_gpu)
    assert got.dtype == F32, f"{what}: dtype {got.dtype}"
    np.testing.assert_array_equal(np.isneginf(got), np.isneginf(lse), err_msg=f"{what}: -inf rows")
    fin = np.isfinite(lse)
    t = 8 * math.sqrt(E) * eps(F32)
    np.testing.assert_allclose(got[fin], lse[fin], rtol=t, atol=t, err_msg=what)


def _expect_fused(qg, kg, vg):
    """The backend must pick the fused kernels wherever this device can run them (unless the
    whole run is on the interim path: PYDL_CUDA_INTERIM=attention checks it at these bounds)."""
    E, Ev = qg.shape[-1], vg.shape[-1]
    if "attention" in _config.CUDA_INTERIM:
        return
    if _C.cuda.attention_unsupported(qg.dtype.name, E, Ev) == "":
        assert gpu._attention_interim_reason(qg, kg, vg, 0.0) == ""


def _case(batch, L, S, E, Ev, dtype, causal, mask=None, scale=None, layout=None):
    """Forward and backward through the cuda backend against the CPU kernel in float64.
    layout(array, dtype) -> GPU array lets a test pass strided or non-contiguous views."""
    B = int(np.prod(batch))
    r = fresh_rng()
    q, k, v = (_rounded(r, (B, n, e), dtype) for n, e in ((L, E), (S, E), (S, Ev)))
    dout = _rounded(r, (B, L, Ev), dtype)
    wide = F32 if dtype in (F16, BF16) else dtype
    m64 = None if mask is None else _mask_view(np, mask, F64, batch, L, S)
    mg = None if mask is None else _mask_view(cp, cp.asarray(mask), wide, batch, L, S)
    scale = 1 / math.sqrt(E) if scale is None else scale
    out, lse = cpu.attention_forward(q, k, v, m64, scale, causal)
    grads = cpu.attention_backward(q, k, v, m64, out, lse, dout, scale, causal)
    put = layout or _g
    qg, kg, vg, dog = (put(a, dtype) for a in (q, k, v, dout))
    _expect_fused(qg, kg, vg)
    og, lg = gpu.attention_forward(qg, kg, vg, mg, scale, causal)
    _check(og, out, _bound(out, E, dtype, softmax_scale=scale), dtype, "out")
    _check_lse(lg, lse, max(E, (E * scale) ** 2))
    dgrads = gpu.attention_backward(qg, kg, vg, mg, og, lg, dog, scale, causal)
    for name, dg, ref in zip("qkv", dgrads, grads):
        _check(dg, ref, _bound(ref, E, dtype, _grad_scale(grads), scale), dtype, f"d{name}")
    return (out, lse, grads), (og, lg, dgrads)


# ---- head dims: every padded instantiation (32, 64, 128, 256) and widths inside each -------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("E", [16, 32, 48, 64, 80, 128, 200, 256])
def test_head_dims_match_cpu_float64(E, causal, dtype):
    _case((3,), 37, 45, E, E, dtype, causal)


# ---- shapes: lengths 1, primes, tile multiples and one past, E != Ev, many key tiles -------

SHAPES = [  # batch dims, L, S, E, Ev
    ((1,), 1, 1, 16, 16),
    ((2,), 1, 67, 64, 64),
    ((2,), 67, 1, 64, 64),
    ((1, 3), 37, 53, 20, 72),
    ((2,), 131, 67, 130, 7),
    ((1,), 64, 128, 64, 64),
    ((1,), 65, 129, 32, 32),
    ((1,), 63, 127, 128, 96),
    ((2, 2), 300, 1031, 64, 64),
    ((1,), 257, 97, 256, 256),
    ((1,), 97, 257, 200, 40),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", SHAPES, ids=lambda c: "x".join(map(str, c[1:])))
def test_shapes_match_cpu_float64(case, causal, dtype):
    _case(*case, dtype, causal)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("scale", [0.0, 0.05, 3.0])
def test_scales(scale, dtype):
    _case((2,), 50, 70, 64, 64, dtype, False, scale=scale)


# ---- masks: bool and additive, every broadcast pattern, rows that see nothing --------------

MASK_SHAPES = [(53, 71), (1, 53, 71), (3, 53, 71), (2, 1, 53, 71), (2, 3, 53, 71), (71,),
               (53, 1), (2, 1, 1, 71), (3, 1, 71), (1, 3, 53, 1), (1, 1, 1, 1)]


def _mask(r, shape, kind):
    if kind == "bool":
        m = r.random(shape) > 0.3
        if len(shape) >= 2 and shape[-2] > 1 and shape[-1] > 1:
            m[..., 5, :] = False  # a row that sees no key
        return m
    m = r.standard_normal(shape).astype(F32).astype(F64)  # what the kernels read, exactly
    if len(shape) >= 2 and shape[-2] > 1 and shape[-1] > 1:
        m[..., 7, :] = -np.inf  # a row that sees no key
        m[..., :, 3] = -np.inf  # a key nobody sees
    return m


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("kind", ["bool", "additive"])
@pytest.mark.parametrize("mshape", MASK_SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_masks_match_cpu_float64(mshape, kind, causal, dtype):
    _case((2, 3), 53, 71, 48, 40, dtype, causal, mask=_mask(fresh_rng(), mshape, kind))


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_row_masked(dtype):
    """No row sees a key: zero output, lse -inf, zero gradients, never NaN."""
    m = np.zeros((40, 70), bool)
    (out, lse, grads), (og, lg, dgrads) = _case((2,), 40, 70, 32, 32, dtype, False, mask=m)
    assert np.isneginf(cp.asnumpy(lg)).all()
    assert not np.isnan(gpu.to_numpy(og).astype(F64)).any()
    for g in dgrads:
        assert (gpu.to_numpy(g).astype(F64) == 0).all()


@pytest.mark.parametrize("dtype", DTYPES)
def test_causal_and_mask_hide_whole_key_tiles(dtype):
    """Causal with S far beyond L (key tiles no row sees), a mask hiding key 0 from some rows."""
    m = np.ones((33, 300), bool)
    m[3, 0] = False  # row 3 sees keys 1..3 only; row 0 sees nothing
    m[0, 0] = False
    _case((2,), 33, 300, 64, 64, dtype, True, mask=m)


# ---- layouts: strided views (aligned and not), non-contiguous last dims ---------------------

def _padded_rows(extra):
    """A view whose rows are `extra` elements longer than its width (last dim contiguous)."""
    def put(a, dtype):
        big = np.zeros(a.shape[:-1] + (a.shape[-1] + extra,), dtype)
        big[..., :a.shape[-1]] = a.astype(dtype)
        return gpu.from_numpy(big)[..., :a.shape[-1]]
    return put


def _batch_strided(a, dtype):
    """Every other batch entry of a larger array (batch stride twice the item's size)."""
    big = np.zeros((2 * a.shape[0],) + a.shape[1:], dtype)
    big[::2] = a.astype(dtype)
    return gpu.from_numpy(big)[::2]


def _transposed(a, dtype):
    """Last dim not contiguous: the backend makes a contiguous copy."""
    t = np.ascontiguousarray(a.astype(dtype).transpose(0, 2, 1))
    return gpu.from_numpy(t).transpose(0, 2, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", [_padded_rows(8), _padded_rows(3), _padded_rows(1),
                                    _batch_strided, _transposed],
                         ids=["pad8", "pad3", "pad1", "batch", "transposed"])
@pytest.mark.parametrize("E", [24, 64, 100])
def test_strided_inputs(E, layout, dtype):
    m = fresh_rng().random((45, 61)) > 0.2
    _case((2,), 45, 61, E, E, dtype, True, mask=m, layout=layout)


# ---- outputs poisoned before the call are fully overwritten --------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("case", [(3, 37, 131, 48, 80), (2, 130, 33, 256, 16), (1, 1, 1, 8, 8)])
def test_outputs_poisoned_with_nan_are_overwritten(case, causal, dtype):
    B, L, S, E, Ev = case
    r = fresh_rng()
    q, k, v = (_rounded(r, (B, n, e), dtype) for n, e in ((L, E), (S, E), (S, Ev)))
    dout = _rounded(r, (B, L, Ev), dtype)
    scale = 0.3
    out, lse = cpu.attention_forward(q, k, v, None, scale, causal)
    grads = cpu.attention_backward(q, k, v, None, out, lse, dout, scale, causal)
    qg, kg, vg, dog = (_g(a, dtype) for a in (q, k, v, dout))
    og, lg = _nan((B, L, Ev), dtype), _nan((B, L), F32)
    _C.cuda.attention_forward(qg, kg, vg, None, og, lg, scale, causal, gpu._stream())
    _check(og, out, _bound(out, E, dtype), dtype, "poisoned out")
    _check_lse(lg, lse, E, "poisoned lse")
    dq, dk, dv = _nan((B, L, E), dtype), _nan((B, S, E), dtype), _nan((B, S, Ev), dtype)
    dsum = _nan((B, L), F32)
    if dtype == F32:
        dq.fill(0)  # float32 sums straight into dq
        acc = None
    else:
        acc = cp.zeros((B, L, E), cp.float32)
    _C.cuda.attention_backward(qg, kg, vg, None, og, lg, dog, dq, dk, dv, acc, dsum, scale, causal,
                               gpu._stream())
    for name, dg, ref in zip("qkv", (dq, dk, dv), grads):
        _check(dg, ref, _bound(ref, E, dtype, _grad_scale(grads)), dtype, f"poisoned d{name}")


# ---- the interim path and the choice between the two ---------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
def test_interim_path_gives_the_same_results(monkeypatch, causal, dtype):
    m = fresh_rng().random((2, 1, 61, 77)) > 0.25
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset({"attention"}))
    r = fresh_rng()
    B, L, S, E = 6, 61, 77, 64
    q, k, v, dout = (_rounded(r, s, dtype) for s in ((B, L, E), (B, S, E), (B, S, E), (B, L, E)))
    qg, kg, vg, dog = (_g(a, dtype) for a in (q, k, v, dout))
    assert gpu._attention_interim_reason(qg, kg, vg, 0.0) == "PYDL_CUDA_INTERIM=attention"
    wide = F32 if dtype in (F16, BF16) else dtype
    mg = _mask_view(cp, cp.asarray(m), wide, (2, 3), L, S)
    m64 = _mask_view(np, m, F64, (2, 3), L, S)
    out, lse = cpu.attention_forward(q, k, v, m64, 0.125, causal)
    grads = cpu.attention_backward(q, k, v, m64, out, lse, dout, 0.125, causal)
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset())
    of, lf = gpu.attention_forward(qg, kg, vg, mg, 0.125, causal)
    gf = gpu.attention_backward(qg, kg, vg, mg, of, lf, dog, 0.125, causal)
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset({"attention"}))
    oi, li = gpu.attention_forward(qg, kg, vg, mg, 0.125, causal)
    gi = gpu.attention_backward(qg, kg, vg, mg, oi, li, dog, 0.125, causal)
    for what, (o, l, g) in (("fused", (of, lf, gf)), ("interim", (oi, li, gi))):
        _check(o, out, _bound(out, E, dtype), dtype, f"{what} out")
        _check_lse(l, lse, E, f"{what} lse")
        for name, dg, rg in zip("qkv", g, grads):
            _check(dg, rg, _bound(rg, E, dtype, _grad_scale(grads)), dtype, f"{what} d{name}")


def test_what_stays_on_the_interim_path(monkeypatch):
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset())
    q = cp.zeros((2, 5, 16), cp.float32)
    assert gpu._attention_interim_reason(q, q, q, 0.0) == ""
    assert gpu._attention_interim_reason(q, q, q, 0.1) == "dropout"
    q64 = q.astype(cp.float64)
    assert gpu._attention_interim_reason(q64, q64, q64, 0.0).startswith("dtype")
    big = cp.zeros((2, 5, 300), cp.float16)
    assert "head dims 1 to 256" in gpu._attention_interim_reason(big, big, big, 0.0)
    empty = cp.zeros((2, 0, 16), cp.float32)
    assert gpu._attention_interim_reason(empty, q, q, 0.0) != ""
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset({"attention", "conv"}))
    assert gpu._attention_interim_reason(q, q, q, 0.0) == "PYDL_CUDA_INTERIM=attention"


def test_tiles_and_support_queries():
    for dt, E, Ev, D in (("float16", 16, 16, 32), ("bfloat16", 33, 8, 64),
                         ("float32", 100, 128, 128), ("float16", 1, 256, 256)):
        t = _C.cuda.attention_tiles(dt, E, Ev)
        assert t["head_dim"] == D and t["fwd_rows"] > 0 and t["bwd_keys"] > 0
    with pytest.raises(ValueError, match="head dims 1 to 256"):
        _C.cuda.attention_tiles("float16", 257, 16)
    with pytest.raises(TypeError, match="float32, float16 and bfloat16"):
        _C.cuda.attention_tiles("float64", 16, 16)


def test_dropout_and_float64_still_run_on_the_interim_path():
    r = fresh_rng()
    q = r.standard_normal((2, 9, 16))
    out, _ = gpu.attention_forward(_g(q, F64), _g(q, F64), _g(q, F64), None, 0.25, False)
    ref, _ = cpu.attention_forward(q, q, q, None, 0.25, False)
    np.testing.assert_allclose(cp.asnumpy(out), ref, rtol=1e-10, atol=1e-12)
    qg = _g(q, F32)
    out, lse = gpu.attention_forward(qg, qg, qg, None, 0.25, True, 0.3, 7, 0)
    ref, _ = cpu.attention_forward(q.astype(F32).astype(F64), q.astype(F32).astype(F64),
                                   q.astype(F32).astype(F64), None, 0.25, True, 0.3, 7, 0)
    _check(out, ref, _bound(ref, 16, F32), F32, "dropout out")


# ---- through autograd: a float mask that requires grad --------------------------------------

@pytest.mark.parametrize("causal", [False, True])
def test_sdpa_autograd_with_a_float_mask_matches_the_cpu(causal):
    """F.scaled_dot_product_attention on the GPU (fused forward and backward; the mask's own
    gradient from pydl/_ops/attention.py) against the CPU, float32."""
    import pydl.nn.functional as F

    r = fresh_rng()
    shapes = [(2, 3, 29, 40), (2, 3, 43, 40), (2, 3, 43, 24)]
    arrays = [r.standard_normal(s).astype(np.float32) for s in shapes]
    mask = r.standard_normal((3, 29, 43)).astype(np.float32)
    w = np.linspace(-1, 1, 2 * 3 * 29 * 24).reshape(2, 3, 29, 24).astype(np.float32)
    grads = {}
    for dev in ("cpu", "cuda"):
        q, k, v = (pydl.tensor(a, device=dev, requires_grad=True) for a in arrays)
        m = pydl.tensor(mask, device=dev, requires_grad=True)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=m, is_causal=causal)
        (out * pydl.tensor(w, device=dev)).sum().backward()
        grads[dev] = [out.detach().numpy()] + [t.grad.numpy() for t in (q, k, v, m)]
    for name, c, g in zip(["out", "dq", "dk", "dv", "dmask"], grads["cpu"], grads["cuda"]):
        scale = np.abs(c).max() + 1e-6
        np.testing.assert_allclose(g, c, rtol=1e-3, atol=1e-4 * scale, err_msg=name)


# ---- bad input: errors that name the op ------------------------------------------------------

def test_bad_inputs_raise_errors_naming_the_op(monkeypatch):
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset())  # the fused path's own checks
    z, f, f32 = cp.zeros, cp.float16, cp.float32
    i32 = (z((1, 4, 8), cp.int32),) * 3
    with pytest.raises(TypeError, match=OP):
        gpu.attention_forward(*i32, None, 1.0, False)
    with pytest.raises(TypeError, match=OP):
        gpu.attention_forward(z((1, 4, 8), f), z((1, 4, 8), f32), z((1, 4, 8), f), None, 1.0, False)
    with pytest.raises(ValueError, match=f"^{OP}: query, key and value must have the same batch"):
        gpu.attention_forward(z((2, 4, 8), f), z((3, 5, 8), f), z((3, 5, 8), f), None, 1.0, False)
    with pytest.raises(ValueError, match=f"^{OP}: query and key head dims differ"):
        gpu.attention_forward(z((2, 4, 8), f), z((2, 5, 16), f), z((2, 5, 8), f), None, 1.0, False)
    with pytest.raises(ValueError, match=f"^{OP}: key and value lengths differ"):
        gpu.attention_forward(z((2, 4, 8), f), z((2, 5, 8), f), z((2, 6, 8), f), None, 1.0, False)
    with pytest.raises(ValueError, match=f"^{OP}: attn_mask view must be"):
        gpu.attention_forward(z((2, 4, 8), f), z((2, 5, 8), f), z((2, 5, 8), f),
                              z((1, 2, 4, 6), f32), 1.0, False)

    q, lse = z((2, 4, 8), f), z((2, 4), f32)

    def fwd(q=q, k=q, v=q, mask=None, out=None, lse=lse):
        out = z((2, 4, 8), f) if out is None else out
        _C.cuda.attention_forward(q, k, v, mask, out, lse, 1.0, False, 0)

    with pytest.raises(ValueError, match=f"^{OP}: output has shape"):
        fwd(out=z((2, 4, 9), f))
    with pytest.raises(TypeError, match=f"^{OP}: lse must be float32"):
        fwd(lse=z((2, 4), f))
    with pytest.raises(ValueError, match=f"^{OP}: output must be contiguous"):
        fwd(out=z((2, 8, 4), f).transpose(0, 2, 1))
    with pytest.raises(ValueError, match=f"^{OP}: query must be contiguous in its last dimension"):
        fwd(q=z((2, 8, 4), f).transpose(0, 2, 1))
    with pytest.raises(TypeError, match=f"^{OP}: query must be a GPU array"):
        fwd(q=np.zeros((2, 4, 8), np.float16))
    with pytest.raises(TypeError, match=f"^{OP}: attn_mask must be an additive float32"):
        fwd(mask=z((2, 1, 4, 4), f))
    with pytest.raises(ValueError, match=f"^{OP}: the fused GPU kernels take head dims 1 to 256"):
        big = z((1, 2, 300), f)
        fwd(q=big, k=big, v=big, out=z((1, 2, 300), f), lse=z((1, 2), f32))

    bwd = OP + "_backward"

    def grads(dk=None, acc=z((2, 4, 8), f32)):
        dk = z((2, 4, 8), f) if dk is None else dk
        _C.cuda.attention_backward(q, q, q, None, q, lse, q, z((2, 4, 8), f), dk, z((2, 4, 8), f),
                                   acc, z((2, 4), f32), 1.0, False, 0)

    with pytest.raises(ValueError, match=f"^{bwd}: a zero-filled float32 dq_acc workspace"):
        grads(acc=None)
    with pytest.raises(ValueError, match=f"^{bwd}: grad_key has shape"):
        grads(dk=z((2, 5, 8), f))
    with pytest.raises(ValueError, match=f"^{bwd}: grad_output has shape"):
        gpu.attention_backward(q, q, q, None, q, lse, z((2, 4, 7), f), 1.0, False)
