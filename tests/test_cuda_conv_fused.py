"""GPU tests of pydl's conv2d kernels (kernels/conv/): the implicit GEMM on tensor cores
(float16, bfloat16, TF32) and on CUDA cores (float32), the depthwise direct kernels, and the
1x1 shortcut through pydl's GEMM; forward, input gradient and weight gradient against the CPU
backend in float64 on the same dtype-rounded inputs.

The kernels are called both through pydl.backend.cuda (with the interim xp_conv path made to
fail, so a pass that silently fell back would show) and through pydl._C.cuda directly with
NaN-poisoned outputs and workspaces (every element must be written; the launchers run even
the 1x1 shapes Python sends to the GEMM through the implicit GEMM).

Tolerance (as tests/test_cuda_conv_attn.py): |out - ref| <= K * eps(dtype) * mag, mag the op
on |inputs| (the magnitude of the terms that made each value); K = 8, and 8 + taps for the
input gradient. eps is the dtype's, 2^-10 for float32 on TF32 tensor cores.
"""
import math
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import pydl

if not pydl.cuda.is_available():
    pytest.skip(f"needs a GPU: {pydl.cuda.unavailable_reason()}", allow_module_level=True)

import cupy as cp  # noqa: E402

from pydl import _C, _config  # noqa: E402
from pydl.backend import cpu, cuda as gpu  # noqa: E402
from pydl.bench.conv import LAYERS  # noqa: E402

from helpers import fresh_rng  # noqa: E402

pytestmark = pytest.mark.cuda

K = _C.cuda
BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
PASSES = ("forward", "backward_input", "backward_weight")


def _bf16_round_trips():
    a = np.arange(4, dtype=np.float32).astype(BF16)
    try:
        return np.array_equal(gpu.to_numpy(gpu.from_numpy(a)), a)
    except Exception:  # a CuPy without ml_dtypes' bfloat16
        return False


_NO_BF16 = pytest.mark.skipif(not _bf16_round_trips(), reason="CuPy lacks bfloat16")
# (dtype, allow_tf32): every core of the implicit GEMM.
KINDS = [pytest.param((F32, False), id="float32-simt"),
         pytest.param((F32, True), id="float32-tf32"),
         pytest.param((F16, False), id="float16"),
         pytest.param((BF16, False), id="bfloat16", marks=_NO_BF16)]


@pytest.fixture
def kind(request, monkeypatch):
    dtype, tf32 = request.param
    monkeypatch.setattr(_config, "ALLOW_TF32", tf32)
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset())
    return dtype, tf32


@pytest.fixture
def no_interim(monkeypatch):
    """The interim path (xp_conv) fails if it runs."""
    def fail(*args, **kwargs):
        raise AssertionError("the interim conv path ran")
    for name in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        monkeypatch.setattr(gpu.xp_conv, name, fail)


def eps(dtype, tf32):
    if dtype == F32 and tf32:
        return 2.0 ** -10
    return float(ml_dtypes.finfo(dtype).eps)


# Spacing of each dtype's subnormals: below the normal range rounding is absolute (an output
# made of a few tiny products can land there in float16).
TINY = {F32: 2.0 ** -149, F16: 2.0 ** -24, BF16: 2.0 ** -133}


# ---- geometry ----------------------------------------------------------------------------

class Geom:
    """One convolution: padding an int (both sides), a pair, or 'same' (the odd one at the end)."""

    def __init__(self, n, c, h, w, oc, k, s=(1, 1), p=0, d=(1, 1), g=1):
        self.n, self.c, self.h, self.w, self.oc = n, c, h, w, oc
        self.k, self.s, self.d, self.g = k, s, d, g
        if p == "same":
            tot = [di * (ki - 1) for di, ki in zip(d, k)]
            self.pad = [(t // 2, t - t // 2) for t in tot]
        else:
            pp = (p, p) if isinstance(p, int) else p
            self.pad = [(pp[0], pp[0]), (pp[1], pp[1])]
        self.ohw = tuple((size + lo + hi - di * (ki - 1) - 1) // si + 1
                         for size, (lo, hi), di, ki, si in zip((h, w), self.pad, d, k, s))
        self.args = (tuple(s), (self.pad[0][0], self.pad[1][0]), tuple(d), g)

    @property
    def flat(self):
        s, p, d, g = self.args
        return (*s, *p, *d, g)

    def shapes(self):
        return ((self.n, self.c, self.h, self.w), (self.oc, self.c // self.g) + tuple(self.k),
                (self.oc,), (self.n, self.oc) + self.ohw)

    def variant(self, pass_, dtype, tf32):
        if self.c // self.g == 1:
            return "depthwise"
        direct = (tuple(self.k) == (1, 1) and tuple(self.s) == (1, 1) and self.args[1] == (0, 0)
                  and self.ohw == (self.h, self.w) and self.g == 1)
        if direct and (pass_ != "backward_weight" or self.n == 1):
            return "gemm"
        if dtype == F32:
            return "implicit_tf32" if tf32 else "implicit_simt"
        return "implicit_mma"

    def __repr__(self):
        (pt, pb), (pl, pr) = self.pad
        return (f"n{self.n}c{self.c}-{self.h}x{self.w}-oc{self.oc}-k{self.k[0]}x{self.k[1]}"
                f"-s{self.s[0]}{self.s[1]}-p{pt}{pb}{pl}{pr}-d{self.d[0]}{self.d[1]}-g{self.g}")


CASES = [
    Geom(2, 3, 9, 7, 5, (3, 3), p=1),                              # odd sizes, 3 -> 5 channels
    Geom(1, 1, 5, 5, 1, (1, 1)),                                   # all ones (one channel: depthwise)
    Geom(1, 1, 7, 6, 3, (5, 5), p="same"),                         # one input channel: depthwise, x3
    Geom(2, 17, 11, 13, 17, (3, 3), (2, 2), 1),                    # stride 2, 17 channels
    Geom(1, 5, 13, 10, 3, (7, 7), (2, 2), 3),                      # 7x7 stride 2 (a stem)
    Geom(2, 4, 9, 9, 6, (5, 5), p=2, g=2),                         # 5x5, groups 2
    Geom(2, 6, 9, 9, 6, (3, 3), p=2, d=(2, 2), g=6),               # depthwise, dilation 2
    Geom(1, 4, 8, 7, 8, (3, 3), (2, 2), 1, g=4),                   # depthwise x2, stride 2
    Geom(2, 4, 9, 8, 4, (4, 4), p="same", g=2),                    # 'same', even window
    Geom(2, 6, 10, 9, 8, (3, 3), p="same", d=(2, 2), g=2),         # 'same', dilation 2
    Geom(2, 8, 12, 12, 16, (1, 1)),                                # 1x1: GEMM (weight grad implicit)
    Geom(3, 8, 7, 9, 12, (1, 1), (2, 2), g=2),                     # 1x1 stride 2, grouped
    Geom(2, 6, 11, 9, 9, (3, 2), (3, 3), 1, (2, 2), g=3),          # stride 3, dilation 2, 3x2
    Geom(2, 4, 11, 9, 6, (3, 5), (2, 1), (1, 2), (1, 2), g=2),     # per-dimension pairs
    Geom(1, 3, 3, 3, 2, (3, 3), p=2, d=(3, 3)),                    # padding past the image
    Geom(1, 2, 4, 4, 3, (3, 3), (3, 3)),                           # stride 3: phases without taps
    Geom(2, 20, 6, 6, 130, (3, 3), p=1),                           # 130 channels: two row tiles
    Geom(2, 40, 9, 9, 24, (3, 3), p=1),                            # 162 pixels: two column tiles
    Geom(4, 3, 64, 64, 8, (3, 3), p=1),                            # weight gradient split 32 ways
    Geom(1, 9, 17, 17, 10, (5, 5), (2, 2), 2),                     # 5x5 stride 2
    Geom(2, 64, 14, 14, 256, (1, 1)),                              # ResNet 1x1, two images
    Geom(2, 5, 7, 7, 5, (1, 1), g=5),                              # depthwise 1x1
    Geom(1, 2, 1, 1, 3, (1, 1)),                                   # 1x1 image
    Geom(1, 3, 5, 5, 4, (3, 3), p=1),                              # batch 1
    Geom(2, 16, 10, 10, 48, (3, 3), (2, 2), 1, g=2),               # grouped, 24 per group
]


def _resnet_geoms():
    out = []
    for c, hw, oc, k, s, p in LAYERS:
        n = 1 if hw >= 56 else 2
        out.append(Geom(n, c, hw, hw, oc, (k, k), (s, s), p))
    return out


RESNET = _resnet_geoms()
assert len(RESNET) == 29


# ---- data and references -------------------------------------------------------------------

def _rounded(rng, shape, dtype):
    """Normal values representable in dtype, as float64."""
    return rng.standard_normal(shape).astype(dtype).astype(F64)


def _bf16_exact(rng, shape):
    """Values exact in bfloat16, float16 and float32 alike (no float16 subnormals), so that one
    float64 reference serves every dtype."""
    a = rng.standard_normal(shape).astype(BF16).astype(F64)
    a[np.abs(a) < 2.0 ** -14] = 0.0
    return a


def _reference(geom, x, w, b, dy):
    """The three passes in float64 on the CPU, and on |inputs| (their magnitudes)."""
    def passes(x, w, b, dy):
        return (cpu.conv2d_forward(x, w, b, *geom.args, geom.ohw),
                cpu.conv2d_backward_input(dy, w, x.shape, *geom.args),
                cpu.conv2d_backward_weight(x, dy, w.shape, *geom.args))
    return passes(x, w, b, dy), passes(*(None if a is None else np.abs(a) for a in (x, w, b, dy)))


def _g(a, dtype):
    return gpu.from_numpy(np.ascontiguousarray(a.astype(dtype)))


def _empty(shape, dtype):
    if dtype == BF16:
        return cp.empty(shape, cp.uint16).view(BF16)
    return cp.empty(shape, dtype)


def _poisoned(shape, dtype):
    a = _empty(shape, dtype)
    a.view(cp.uint8).fill(0xFF)  # NaN in every float format
    return a


def _check(out_gpu, ref, bound, dtype, what):
    out = gpu.to_numpy(out_gpu)
    assert out.dtype == dtype, f"{what}: dtype {out.dtype}, expected {dtype}"
    out = out.astype(F64)
    assert out.shape == ref.shape, f"{what}: shape {out.shape} != {ref.shape}"
    assert not np.isnan(out).any(), f"{what}: NaN at {np.argwhere(np.isnan(out))[:4].tolist()}"
    err = np.abs(out - ref)
    bound = np.broadcast_to(bound + 1e-300, err.shape)
    worst = (err / bound).argmax()
    assert (err <= bound).all(), (f"{what}: error {err.flat[worst]:.3g} > "
                                  f"{bound.flat[worst]:.3g} at {np.unravel_index(worst, err.shape)}")


def _check_passes(geom, outs, ref, mag, dtype, tf32, label=""):
    e = eps(dtype, tf32)
    taps = geom.k[0] * geom.k[1]
    for out, r, m, what, kk in zip(outs, ref, mag, PASSES, (8, 8 + taps, 8)):
        _check(out, r, kk * e * m + TINY[dtype], dtype, f"{label}{what}")


def _workspace(pass_, inp, w, out, geom, tf32):
    variant, size, ws_dtype, reason = K.conv2d_plan(pass_, inp, w, out, *geom.flat, tf32)
    assert variant != "interim", reason
    ws = _poisoned((size,), F32 if ws_dtype == "float32" else inp.dtype) if size else None
    return variant, ws


def _run_kernels(geom, xg, wg, bg, dyg, tf32):
    """The three launchers of pydl._C.cuda on NaN-poisoned outputs and workspaces."""
    dtype = xg.dtype
    st = gpu._stream()
    y = _poisoned((geom.n, geom.oc) + geom.ohw, dtype)
    v0, ws = _workspace("forward", xg, wg, y, geom, tf32)
    K.conv2d_forward(xg, wg, bg, y, ws, *geom.flat, tf32, st)
    dx = _poisoned(xg.shape, dtype)
    v1, ws = _workspace("backward_input", dx, wg, dyg, geom, tf32)
    K.conv2d_backward_input(dyg, wg, dx, ws, *geom.flat, tf32, st)
    dw = _poisoned(wg.shape, dtype)
    v2, ws = _workspace("backward_weight", xg, dw, dyg, geom, tf32)
    K.conv2d_backward_weight(xg, dyg, dw, ws, *geom.flat, tf32, st)
    return (y, dx, dw), (v0, v1, v2)


def _run_backend(geom, xg, wg, bg, dyg):
    return (gpu.conv2d_forward(xg, wg, bg, *geom.args, geom.ohw),
            gpu.conv2d_backward_input(dyg, wg, xg.shape, *geom.args),
            gpu.conv2d_backward_weight(xg, dyg, wg.shape, *geom.args))


# ---- every core against the float64 CPU reference -----------------------------------------

@pytest.mark.parametrize("kind", KINDS, indirect=True)
@pytest.mark.parametrize("geom", CASES, ids=repr)
def test_kernels_match_cpu_float64(geom, kind, no_interim):
    dtype, tf32 = kind
    r = fresh_rng()
    xs, ws, bs, dys = geom.shapes()
    x, w, b, dy = (_rounded(r, s, dtype) for s in (xs, ws, bs, dys))
    ref, mag = _reference(geom, x, w, b, dy)
    xg, wg, bg, dyg = (_g(a, dtype) for a in (x, w, b, dy))

    outs, variants = _run_kernels(geom, xg, wg, bg, dyg, tf32)
    for pass_, v in zip(PASSES, variants):
        assert v == geom.variant(pass_, dtype, tf32), (pass_, v)
    _check_passes(geom, outs, ref, mag, dtype, tf32, "kernel ")
    # The backend's choice (the GEMM for 1x1 shapes), with the interim path disabled.
    _check_passes(geom, _run_backend(geom, xg, wg, bg, dyg), ref, mag, dtype, tf32, "backend ")


_RESNET_REF = {}


@pytest.mark.parametrize("kind", KINDS, indirect=True)
@pytest.mark.parametrize("geom", RESNET, ids=repr)
def test_resnet_layers_match_cpu_float64(geom, kind, no_interim):
    """The 29 distinct convolutions of ResNet-18/50 at batch 1 or 2, through the backend."""
    dtype, tf32 = kind
    key = repr(geom)
    if key not in _RESNET_REF:  # one reference for every dtype: the inputs are exact in all
        r = np.random.default_rng(len(_RESNET_REF) + 7)
        xs, ws, bs, dys = geom.shapes()
        data = tuple(_bf16_exact(r, s) for s in (xs, ws, bs, dys))
        _RESNET_REF.clear()  # keep one layer's arrays at a time
        _RESNET_REF[key] = data, _reference(geom, *data)
    (x, w, b, dy), (ref, mag) = _RESNET_REF[key]
    xg, wg, bg, dyg = (_g(a, dtype) for a in (x, w, b, dy))
    _check_passes(geom, _run_backend(geom, xg, wg, bg, dyg), ref, mag, dtype, tf32)


@pytest.mark.parametrize("kind", KINDS[:1] + KINDS[2:3], indirect=True)
def test_more_groups_than_one_grid_launch(kind, no_interim):
    """65537 groups of 2 channels: the grid's z dimension is covered in two launches."""
    dtype, tf32 = kind
    geom = Geom(1, 2 * 65537, 3, 3, 65537, (3, 3), p=1, g=65537)
    r = fresh_rng()
    xs, ws, bs, dys = geom.shapes()
    x, w, b, dy = (_rounded(r, s, dtype) for s in (xs, ws, bs, dys))
    ref, mag = _reference(geom, x, w, b, dy)
    outs, variants = _run_kernels(geom, *(_g(a, dtype) for a in (x, w, b, dy)), tf32)
    assert variants[0].startswith("implicit")
    _check_passes(geom, outs, ref, mag, dtype, tf32)


@pytest.mark.parametrize("kind", KINDS, indirect=True)
def test_weight_gradient_is_deterministic(kind):
    dtype, tf32 = kind
    geom = Geom(4, 6, 40, 40, 10, (3, 3), p=1)  # split over the pixels
    r = fresh_rng()
    xs, ws, _, dys = geom.shapes()
    xg, dyg = (_g(_rounded(r, s, dtype), dtype) for s in (xs, dys))
    first = gpu.to_numpy(gpu.conv2d_backward_weight(xg, dyg, ws, *geom.args))
    for _ in range(3):
        again = gpu.to_numpy(gpu.conv2d_backward_weight(xg, dyg, ws, *geom.args))
        assert np.array_equal(again.view(np.uint8), first.view(np.uint8))


@pytest.mark.parametrize("kind", KINDS[:1] + KINDS[2:3], indirect=True)
def test_runs_on_the_current_stream(kind, no_interim):
    dtype, tf32 = kind
    geom = Geom(2, 8, 12, 12, 16, (3, 3), (2, 2), 1)
    r = fresh_rng()
    xs, ws, bs, dys = geom.shapes()
    x, w, b, dy = (_rounded(r, s, dtype) for s in (xs, ws, bs, dys))
    ref, mag = _reference(geom, x, w, b, dy)
    stream = cp.cuda.Stream(non_blocking=True)
    with stream:
        xg, wg, bg, dyg = (_g(a, dtype) for a in (x, w, b, dy))
        outs = _run_backend(geom, xg, wg, bg, dyg)
        stream.synchronize()
    _check_passes(geom, outs, ref, mag, dtype, tf32)


def test_empty_batch_and_channels(no_interim):
    geom = Geom(0, 3, 8, 8, 4, (3, 3))
    x, w = cp.zeros((0, 3, 8, 8), cp.float32), cp.ones((4, 3, 3, 3), cp.float32)
    y = gpu.conv2d_forward(x, w, None, *geom.args, geom.ohw)
    assert y.shape == (0, 4, 6, 6)
    dy = cp.zeros((0, 4, 6, 6), cp.float32)
    assert gpu.conv2d_backward_input(dy, w, (0, 3, 8, 8), *geom.args).shape == (0, 3, 8, 8)
    dw = gpu.conv2d_backward_weight(x, dy, (4, 3, 3, 3), *geom.args)
    assert dw.shape == (4, 3, 3, 3) and not cp.any(dw)
    # No input channels: the output is the bias; no output channels: the input gradient is 0.
    args = ((1, 1), (0, 0), (1, 1), 1)
    y = _poisoned((2, 3, 3, 3), F32)
    x, w, b = cp.zeros((2, 0, 5, 5), cp.float32), cp.zeros((3, 0, 3, 3), cp.float32), cp.arange(3.0)
    K.conv2d_forward(x, w, b.astype(cp.float32), y, None, 1, 1, 0, 0, 1, 1, 1, False, gpu._stream())
    assert cp.array_equal(y, cp.broadcast_to(b.reshape(1, 3, 1, 1), y.shape))
    dx = gpu.conv2d_backward_input(cp.zeros((2, 0, 3, 3), cp.float32),
                                   cp.zeros((0, 4, 3, 3), cp.float32), (2, 4, 6, 5), (2, 2),
                                   (1, 1), (1, 1), 1)
    assert cp.array_equal(dx, cp.zeros((2, 4, 6, 5)))
    assert gpu.conv2d_forward(x, w, None, *args, (3, 3)).shape == (2, 3, 3, 3)


# ---- the interim path ------------------------------------------------------------------------

@pytest.mark.parametrize("geom", [CASES[0], CASES[4], CASES[6], CASES[10], CASES[13]], ids=repr)
def test_interim_path_gives_the_same_results(geom, monkeypatch):
    """PYDL_CUDA_INTERIM=conv (here: _config.CUDA_INTERIM) runs xp_conv, to the same tolerance."""
    r = fresh_rng()
    xs, ws, bs, dys = geom.shapes()
    x, w, b, dy = (_rounded(r, s, F32) for s in (xs, ws, bs, dys))
    ref, mag = _reference(geom, x, w, b, dy)
    xg, wg, bg, dyg = (_g(a, F32) for a in (x, w, b, dy))
    monkeypatch.setattr(_config, "ALLOW_TF32", False)
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset())
    fused = _run_backend(geom, xg, wg, bg, dyg)
    calls = []
    for name in ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_weight"):
        def counted(*a, real=getattr(gpu.xp_conv, name), name=name, **k):
            calls.append(name)
            return real(*a, **k)
        monkeypatch.setattr(gpu.xp_conv, name, counted)
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset({"conv"}))
    interim = _run_backend(geom, xg, wg, bg, dyg)
    assert len(calls) == 3
    _check_passes(geom, fused, ref, mag, F32, False, "fused ")
    _check_passes(geom, interim, ref, mag, F32, False, "interim ")


def test_interim_selected_by_the_environment():
    code = r"""
import numpy as np, pydl
from pydl import _config
from pydl.backend import cpu, cuda as gpu
assert "conv" in _config.CUDA_INTERIM
calls = []
real = gpu.xp_conv.conv2d_forward
gpu.xp_conv.conv2d_forward = lambda *a, **k: (calls.append(1), real(*a, **k))[1]
r = np.random.default_rng(0)
x = r.standard_normal((2, 3, 9, 9)).astype(np.float32)
w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
args = ((1, 1), (1, 1), (1, 1), 1, (9, 9))
y = gpu.to_numpy(gpu.conv2d_forward(gpu.from_numpy(x), gpu.from_numpy(w), None, *args))
ref = cpu.conv2d_forward(x.astype(np.float64), w.astype(np.float64), None, *args)
assert calls == [1], calls
np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
print("interim ok")
"""
    env = dict(os.environ, PYDL_CUDA_INTERIM="conv")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "interim ok" in out.stdout


def test_float64_runs_on_the_interim_path(monkeypatch):
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset())
    geom = CASES[0]
    r = fresh_rng()
    xs, ws, bs, dys = geom.shapes()
    x, w, b, dy = (r.standard_normal(s) for s in (xs, ws, bs, dys))
    ref, _ = _reference(geom, x, w, b, dy)
    xg, wg, bg, dyg = (cp.asarray(a) for a in (x, w, b, dy))
    y = cp.empty((geom.n, geom.oc) + geom.ohw)
    variant, _, _, reason = K.conv2d_plan("forward", xg, wg, y, *geom.flat)
    assert variant == "interim" and "float64" in reason
    for out, rr in zip(_run_backend(geom, xg, wg, bg, dyg), ref):
        np.testing.assert_allclose(cp.asnumpy(out), rr, rtol=1e-10, atol=1e-10)


# ---- bad input -------------------------------------------------------------------------------

def _args():
    return dict(x=cp.zeros((1, 4, 6, 6), cp.float32), w=cp.zeros((8, 4, 3, 3), cp.float32),
                y=cp.zeros((1, 8, 4, 4), cp.float32))


def _fwd(x, w, b, y, ws, groups=1, stride=(1, 1)):
    K.conv2d_forward(x, w, b, y, ws, *stride, 0, 0, 1, 1, groups, False, gpu._stream())


def _ws(x, w, y):
    return cp.zeros(K.conv2d_plan("forward", x, w, y, 1, 1, 0, 0, 1, 1, 1, False)[1], cp.float32)


def test_bad_input_raises_errors_naming_the_op():
    a = _args()
    x, w, y = a["x"], a["w"], a["y"]
    ws = _ws(x, w, y)
    with pytest.raises(TypeError, match="conv2d: input must be a GPU array"):
        _fwd(cp.asnumpy(x), w, None, y, ws)
    with pytest.raises(TypeError, match="conv2d: weight has dtype float16"):
        _fwd(x, w.astype(cp.float16), None, y, ws)
    with pytest.raises(TypeError, match="conv2d: input must be float32"):
        _fwd(x.astype(cp.int32), w.astype(cp.int32), None, y.astype(cp.int32), ws)
    with pytest.raises(TypeError, match="conv2d: float64 runs on the interim path"):
        _fwd(x.astype(cp.float64), w.astype(cp.float64), None, y.astype(cp.float64), ws)
    with pytest.raises(ValueError, match="conv2d: output has shape"):
        _fwd(x, w, None, cp.zeros((1, 7, 4, 4), cp.float32), ws)
    with pytest.raises(ValueError, match="conv2d: .*must be 4-D"):
        _fwd(x[0], w, None, y, ws)
    with pytest.raises(ValueError, match="conv2d: input must be contiguous"):
        _fwd(cp.zeros((1, 4, 6, 6), cp.float32).transpose(0, 1, 3, 2), w, None, y, ws)
    with pytest.raises(ValueError, match="conv2d: weight .* does not fit input"):
        _fwd(x, w, None, y, ws, groups=2)
    with pytest.raises(ValueError, match="conv2d: stride, dilation and groups must be positive"):
        _fwd(x, w, None, y, ws, stride=(0, 1))
    with pytest.raises(ValueError, match="conv2d: bias has shape"):
        _fwd(x, w, cp.zeros(7, cp.float32), y, ws)
    with pytest.raises(TypeError, match="conv2d: bias has dtype"):
        _fwd(x, w, cp.zeros(8, cp.float16), y, ws)
    with pytest.raises(ValueError, match="conv2d: needs a workspace"):
        _fwd(x, w, None, y, None)
    with pytest.raises(ValueError, match="conv2d: workspace has"):
        _fwd(x, w, None, y, ws[:-1])
    with pytest.raises(TypeError, match="conv2d: workspace must be float32"):
        _fwd(x, w, None, y, ws.astype(cp.float16))
    with pytest.raises(ValueError, match="conv2d: workspace must be 16-byte aligned"):
        _fwd(x, w, None, y, cp.zeros(ws.size + 1, cp.float32)[1:])
    with pytest.raises(ValueError, match="conv2d: unknown pass"):
        K.conv2d_plan("sideways", x, w, y, 1, 1, 0, 0, 1, 1, 1, False)
    dx = cp.zeros_like(x)
    plain = (1, 1, 0, 0, 1, 1, 1, False, 0)  # stride, padding, dilation, groups, tf32, stream
    with pytest.raises(ValueError, match="conv2d_backward_input: grad_output has shape"):
        K.conv2d_backward_input(cp.zeros((1, 3, 4, 4), cp.float32), w, dx, ws, *plain)
    with pytest.raises(ValueError, match="conv2d_backward_weight: grad_weight .* does not fit input"):
        K.conv2d_backward_weight(x, y, cp.zeros((8, 3, 3, 3), cp.float32), None, *plain)
    with pytest.raises(ValueError, match="conv2d_backward_weight: needs a workspace"):
        K.conv2d_backward_weight(x, y, cp.zeros_like(w), None, *plain)


def test_backend_rejects_bad_dtypes():
    with pytest.raises(TypeError, match="conv2d"):
        gpu.conv2d_forward(cp.zeros((1, 1, 3, 3), cp.int32), cp.zeros((1, 1, 1, 1), cp.int32),
                           None, (1, 1), (0, 0), (1, 1), 1, (3, 3))
    with pytest.raises(TypeError, match="conv2d_backward_weight"):
        gpu.conv2d_backward_weight(cp.zeros((1, 1, 3, 3), cp.float32),
                                   cp.zeros((1, 1, 3, 3), cp.float16), (1, 1, 1, 1), (1, 1), (0, 0),
                                   (1, 1), 1)


def test_conv_modules_train_on_the_fused_kernels(no_interim, monkeypatch):
    """nn.Conv2d, F.conv1d and F.conv_transpose2d reach the kernels: gradients match the CPU."""
    monkeypatch.setattr(_config, "ALLOW_TF32", False)
    monkeypatch.setattr(_config, "CUDA_INTERIM", frozenset())
    import pydl.nn.functional as F

    r = np.random.default_rng(3)
    x = r.standard_normal((2, 6, 11, 10)).astype(np.float32)
    w = r.standard_normal((4, 3, 3, 3)).astype(np.float32)
    w1 = r.standard_normal((5, 6, 3)).astype(np.float32)
    wt = r.standard_normal((6, 2, 4, 4)).astype(np.float32)
    results = {}
    for dev in ("cpu", "cuda"):
        xs = pydl.tensor(x, device=dev, requires_grad=True)
        ws, w1s, wts = (pydl.tensor(a, device=dev, requires_grad=True) for a in (w, w1, wt))
        out = (F.conv2d(xs, ws, stride=2, padding=1, groups=2).sum()
               + F.conv1d(xs.reshape(2, 6, 110), w1s, padding=1).sum()
               + F.conv_transpose2d(xs, wts, stride=2, padding=1, groups=3).sum())
        out.backward()
        results[dev] = [t.grad.numpy() for t in (xs, ws, w1s, wts)] + [out.detach().numpy()]
    for c, g in zip(results["cpu"], results["cuda"]):
        np.testing.assert_allclose(g, c, rtol=2e-4, atol=2e-4 * (np.abs(c).max() + 1))
