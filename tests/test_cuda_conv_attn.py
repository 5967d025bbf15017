"""GPU tests of the cuda backend's interim conv2d and attention (xp_conv / xp_attention over
CuPy, products on pydl's GEMM), called through pydl.backend.cuda against the CPU backend in
float64 on the same (dtype-rounded) inputs, for float32, float16, bfloat16 and float64; then
the conv and attention model families, forward and gradients, on the GPU against the CPU.

Tolerance: for convolution |out - ref| <= K * eps(dtype) * mag, mag the op on |inputs| (the
magnitude of the terms that made each value), K larger for the input gradient, which sums a
rounded product per tap; for attention the output's own rounding plus sqrt(E) * eps(compute)
* max |ref|, the scores' rounding passing through exp (half types compute in float32).
"""
import math

import ml_dtypes
import numpy as np
import pytest

import pydl

if not pydl.cuda.is_available():
    pytest.skip(f"needs a GPU: {pydl.cuda.unavailable_reason()}", allow_module_level=True)

import cupy as cp  # noqa: E402

from pydl import _config  # noqa: E402
from pydl._ops.attention import _mask_view  # noqa: E402
from pydl.backend import cpu, cuda as gpu, rng as prng  # noqa: E402

from helpers import fresh_rng  # noqa: E402

pytestmark = pytest.mark.cuda

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)


def _bf16_round_trips():
    a = np.arange(4, dtype=np.float32).astype(BF16)
    try:
        return np.array_equal(gpu.to_numpy(gpu.from_numpy(a)), a)
    except Exception:  # a CuPy without ml_dtypes' bfloat16
        return False


DTYPES = [pytest.param(F32, id="float32"), pytest.param(F16, id="float16"),
          pytest.param(BF16, id="bfloat16", marks=pytest.mark.skipif(not _bf16_round_trips(),
                                                                     reason="CuPy lacks bfloat16")),
          pytest.param(F64, id="float64")]


def eps(dtype):
    # float32 products may run on TF32 tensor cores when PYDL_ALLOW_TF32=1 (10-bit mantissa)
    if dtype == F32 and _config.ALLOW_TF32:
        return 2.0 ** -10
    return float(ml_dtypes.finfo(dtype).eps)


def _rounded(rng, shape, dtype):
    """Random values already representable in dtype, as float64 (the reference's input)."""
    return rng.standard_normal(shape).astype(dtype).astype(F64)


def _check(out_gpu, ref, bound, dtype, what):
    out = gpu.to_numpy(out_gpu)
    assert out.dtype == dtype, f"{what}: dtype {out.dtype}, expected {dtype}"
    out = out.astype(F64)
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    assert not np.isnan(out).any() or np.array_equal(np.isnan(out), np.isnan(ref)), f"{what}: NaN"
    err = np.abs(np.nan_to_num(out - ref))
    bound = np.broadcast_to(bound + 1e-300, err.shape)
    worst = (err / bound).argmax()
    assert (err <= bound).all(), f"{what}: error {err.flat[worst]:.3g} > {bound.flat[worst]:.3g}"


def _attention_bound(ref, E, dtype, grad=False):
    """The result's own rounding plus the arithmetic's, in float32 for the half types: the
    scores' rounding grows with sqrt(E) and passes through exp. Gradients also see the
    forward's output rounded to dtype (in rowsum(dO * O))."""
    arith = eps(dtype) if grad or dtype not in (F16, BF16) else eps(F32)
    return 2 * eps(dtype) * np.abs(ref) + 4 * math.sqrt(E) * arith * max(np.abs(ref).max(), 1.0)


def _g(a, dtype):
    return gpu.from_numpy(np.ascontiguousarray(a.astype(dtype)))


# ---- convolution -----------------------------------------------------------------------------

# (N, C, H, W, OC, (kh, kw), (sh, sw), (top, left), (dh, dw), groups, (oh, ow))
CONV = [
    (2, 8, 7, 9, 16, (1, 1), (1, 1), (0, 0), (1, 1), 1, (7, 9)),       # direct GEMM
    (2, 8, 7, 9, 16, (1, 1), (1, 1), (0, 0), (1, 1), 4, (7, 9)),       # direct, grouped
    (3, 5, 9, 7, 6, (3, 3), (1, 1), (1, 1), (1, 1), 1, (9, 7)),
    (1, 4, 11, 6, 6, (5, 5), (2, 2), (2, 2), (1, 1), 2, (6, 3)),
    (2, 6, 9, 9, 6, (3, 3), (1, 1), (2, 2), (2, 2), 6, (9, 9)),        # depthwise, dilated
    (1, 2, 13, 10, 3, (7, 7), (2, 2), (3, 3), (1, 1), 1, (7, 5)),
    (2, 4, 9, 8, 4, (4, 4), (1, 1), (1, 1), (1, 1), 2, (9, 8)),        # 'same', even window
    (2, 4, 11, 9, 6, (3, 5), (2, 1), (1, 2), (1, 2), 2, (6, 10)),      # uneven pairs
    (4, 64, 32, 32, 128, (3, 3), (1, 1), (1, 1), (1, 1), 1, (32, 32)),  # ResNet-sized
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("cfg", CONV)
def test_conv2d_matches_cpu_float64(cfg, dtype):
    n, c, h, w, oc, k, s, p, d, g, ohw = cfg
    r = fresh_rng()
    x, wt, b = _rounded(r, (n, c, h, w), dtype), _rounded(r, (oc, c // g) + k, dtype), \
        _rounded(r, (oc,), dtype)
    dy = _rounded(r, (n, oc) + ohw, dtype)
    args = (s, p, d, g)
    def passes(x, wt, b, dy):
        return (cpu.conv2d_forward(x, wt, b, *args, ohw),
                cpu.conv2d_backward_input(dy, wt, x.shape, *args),
                cpu.conv2d_backward_weight(x, dy, wt.shape, *args))

    ref, mag = passes(x, wt, b, dy), passes(*(np.abs(a) for a in (x, wt, b, dy)))
    xg, wg, bg, dyg = (_g(a, dtype) for a in (x, wt, b, dy))
    taps = k[0] * k[1]
    e = eps(dtype)
    _check(gpu.conv2d_forward(xg, wg, bg, *args, ohw), ref[0], 8 * e * mag[0], dtype, "forward")
    _check(gpu.conv2d_backward_input(dyg, wg, x.shape, *args), ref[1], (8 + taps) * e * mag[1],
           dtype, "dgrad")
    _check(gpu.conv2d_backward_weight(xg, dyg, wt.shape, *args), ref[2], 8 * e * mag[2], dtype,
           "wgrad")


def test_conv2d_rejects_an_integer_input():
    with pytest.raises(TypeError, match="conv2d"):
        gpu.conv2d_forward(cp.zeros((1, 1, 3, 3), cp.int32), cp.zeros((1, 1, 1, 1), cp.int32),
                           None, (1, 1), (0, 0), (1, 1), 1, (3, 3))


# ---- attention -------------------------------------------------------------------------------

ATTN = [  # batch dims, L, S, E, Ev
    ((1,), 1, 1, 16, 16),
    ((2, 3), 37, 53, 64, 64),
    ((1, 2), 131, 67, 100, 100),
    ((2, 2), 129, 1031, 128, 128),  # S past two key blocks
    ((1, 1), 257, 257, 256, 256),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("case", ATTN, ids=lambda c: "x".join(map(str, c[1:])))
def test_attention_matches_cpu_float64(case, masked, causal, dtype):
    batch, L, S, E, Ev = case
    B = int(np.prod(batch))
    r = fresh_rng()
    q, k, v = (_rounded(r, (B, n, e), dtype) for n, e in ((L, E), (S, E), (S, Ev)))
    dout = _rounded(r, (B, L, Ev), dtype)
    mask = None
    if masked:  # bool, broadcast over the heads, with a row that sees nothing
        mask = r.random((L, S)) > 0.3
        mask[:, 0] = True
        mask[L // 2] = False
    wide = F32 if dtype in (F16, BF16) else dtype
    m64 = None if mask is None else _mask_view(np, mask, F64, batch, L, S)
    mg = None if mask is None else _mask_view(cp, cp.asarray(mask), wide, batch, L, S)
    scale = 1 / math.sqrt(E)
    out, lse = cpu.attention_forward(q, k, v, m64, scale, causal)
    grads = cpu.attention_backward(q, k, v, m64, out, lse, dout, scale, causal)
    qg, kg, vg, dog = (_g(a, dtype) for a in (q, k, v, dout))
    og, lg = gpu.attention_forward(qg, kg, vg, mg, scale, causal)
    assert lg.dtype == wide
    _check(og, out, _attention_bound(out, E, dtype), dtype, "out")
    lse_g = cp.asnumpy(lg)
    np.testing.assert_array_equal(np.isinf(lse_g), np.isinf(lse))
    fin, t = np.isfinite(lse), 8 * math.sqrt(E) * eps(wide)
    np.testing.assert_allclose(lse_g[fin], lse[fin], rtol=t, atol=t)
    dgrads = gpu.attention_backward(qg, kg, vg, mg, og, lg, dog, scale, causal)
    for name, dg, ref in zip("qkv", dgrads, grads):
        _check(dg, ref, _attention_bound(ref, E, dtype, grad=True), dtype, f"d{name}")


@pytest.mark.parametrize("causal", [False, True])
def test_attention_dropout_drops_what_the_cpu_kernel_drops(causal):
    r = fresh_rng()
    B, L, S, E, p, seed, offset = 6, 67, 600, 32, 0.3, 1234, 11
    q, k, v = (r.standard_normal((B, n, E)) for n in (L, S, S))
    dout = r.standard_normal((B, L, E))
    out, lse = cpu.attention_forward(q, k, v, None, 0.2, causal, p, seed, offset)
    grads = cpu.attention_backward(q, k, v, None, out, lse, dout, 0.2, causal, p, seed, offset)
    qg, kg, vg, dog = (_g(a, F32) for a in (q, k, v, dout))
    og, lg = gpu.attention_forward(qg, kg, vg, None, 0.2, causal, p, seed, offset)
    _check(og, out, _attention_bound(out, E, F32), F32, "dropout out")
    dgrads = gpu.attention_backward(qg, kg, vg, None, og, lg, dog, 0.2, causal, p, seed, offset)
    for name, dg, ref in zip("qkv", dgrads, grads):
        _check(dg, ref, _attention_bound(ref, E, F32, grad=True), F32, f"dropout d{name}")
    keep = prng.dropout_keep(seed, offset, B * L * S, p)
    assert 0.6 < keep.mean() < 0.8


# ---- the model families that convolve or attend, on the GPU against the CPU ----------------

def _families():
    """name -> (build the model, run it on a device)."""
    from pydl.data.synthetic import seq2seq_digits
    from pydl.models import LeNet, Seq2SeqTransformer, resnet_small
    from pydl.models.diffusion import UNet
    from pydl.models.gan import build

    r = np.random.default_rng(0)
    x = r.standard_normal((4, 1, 8, 8)).astype(np.float32)
    z = r.standard_normal((4, 8)).astype(np.float32)
    src, tgt, _ = seq2seq_digits(4, 2, 7, seed=1)

    def image(m, dev):
        return m(pydl.tensor(x, device=dev))

    def seq2seq():
        return Seq2SeqTransformer(13, d_model=16, nhead=2, num_encoder_layers=1,
                                  num_decoder_layers=1, dim_feedforward=24, dropout=0.1,
                                  max_len=16)

    return {
        "cnn": (lambda: LeNet(1, 10, image_size=8, channels=(4, 6), hidden=(9,), dropout=0.2),
                image),
        "resnet": (lambda: resnet_small(10, 1, layers=(1, 1), widths=(4, 8)), image),
        "gan": (lambda: build("dcgan", latent=8, width=8)[0],
                lambda m, dev: m(pydl.tensor(z, device=dev))),
        "diffusion": (lambda: UNet(1, channels=4, tdim=8),
                      lambda m, dev: m(pydl.tensor(x, device=dev), np.array([1, 5, 9, 3]))),
        "transformer": (seq2seq, lambda m, dev: m(pydl.tensor(src, device=dev),
                                                  pydl.tensor(tgt[:, :-1], device=dev))),
    }


@pytest.mark.parametrize("family", ["cnn", "resnet", "gan", "diffusion", "transformer"])
def test_family_forward_and_gradients_match_the_cpu(family):
    make, run = _families()[family]
    results = {}
    for dev in ("cpu", "cuda"):
        pydl.manual_seed(0)
        m = make().to(dev)
        pydl.manual_seed(1)  # the same dropout masks on both devices
        y = run(m, dev)
        w = np.random.default_rng(2).standard_normal(tuple(y.shape)).astype(np.float32)
        w = pydl.tensor(w, device=dev)
        (y * w).sum().backward()
        results[dev] = (y.detach().numpy(), {n: p.grad.numpy() for n, p in m.named_parameters()
                                              if p.grad is not None})
    (yc, gc), (yg, gg) = results["cpu"], results["cuda"]
    np.testing.assert_allclose(yg, yc, rtol=1e-3, atol=1e-4, err_msg=f"{family} forward")
    assert set(gg) == set(gc)
    for name in gc:
        scale = np.abs(gc[name]).max() + 1e-6
        np.testing.assert_allclose(gg[name], gc[name], rtol=1e-3, atol=1e-4 * scale,
                                   err_msg=f"{family} grad {name}")
