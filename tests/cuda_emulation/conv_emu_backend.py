"""pydl/backend/cuda.py's conv functions on the CPU: a NumPy stand-in for CuPy (arrays that
present __cuda_array_interface__ over host memory) and the `conv_emu` module (pydl's conv
bindings and planner over the emulated launchers) in place of pydl._C.cuda, checked against
the CPU backend in float64. It covers the Python side of the fused path: plans and
workspaces, the 1x1 GEMM shortcuts, the interim routing (PYDL_CUDA_INTERIM, float64) and
the errors; the kernels' own arithmetic is emulated (conv_launchers_emulated.cu).

    python tests/cuda_emulation/conv_emu_backend.py DIR    # DIR holds the built conv_emu module

Prints one line per failure and exits nonzero if any.
"""
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
import conv_emu  # noqa: E402
import fake_cupy  # noqa: E402
from fake_cupy import dev as _dev, expect_error, failures  # noqa: E402

fake_cupy.install(
    zeros=lambda shape, dtype=np.float64: _dev(np.zeros(shape, dtype)),
    empty_like=lambda a, dtype=None: _dev(np.empty_like(a, dtype)),
    asarray=lambda a, dtype=None: _dev(np.asarray(a, dtype)),
    ascontiguousarray=lambda a, dtype=None: _dev(np.ascontiguousarray(a, dtype)))
from pydl import _config  # noqa: E402
from pydl.backend import cpu, cuda as gpu  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
TINY = {F32: 2.0 ** -149, F16: 2.0 ** -24, BF16: 2.0 ** -133, F64: 0.0}
GEMM_CALLS = []


def _matmul(a, b, bias=None, activation="none"):
    """pydl's GEMM, as NumPy: float32 accumulation, the result in the inputs' dtype."""
    GEMM_CALLS.append((a.shape, b.shape))
    wide = np.float64 if a.dtype == F64 else np.float32
    out = np.matmul(np.asarray(a, wide), np.asarray(b, wide))
    if bias is not None:
        out = out + np.asarray(bias, wide)
    return _dev(out.astype(a.dtype))


gpu._k = conv_emu
gpu.matmul = _matmul


def geom(n, c, h, w, oc, k, s=(1, 1), p=0, d=(1, 1), g=1):
    if p == "same":
        pad = [(di * (ki - 1) // 2, di * (ki - 1) - di * (ki - 1) // 2) for di, ki in zip(d, k)]
    else:
        pp = (p, p) if isinstance(p, int) else p
        pad = [(pp[0], pp[0]), (pp[1], pp[1])]
    ohw = tuple((size + lo + hi - di * (ki - 1) - 1) // si + 1
                for size, (lo, hi), di, ki, si in zip((h, w), pad, d, k, s))
    args = (tuple(s), (pad[0][0], pad[1][0]), tuple(d), g)
    return (n, c, h, w, oc, tuple(k), g), args, ohw


CASES = [
    geom(2, 3, 9, 7, 5, (3, 3), p=1),
    geom(2, 8, 6, 5, 12, (1, 1)),                    # 1x1: the GEMM shortcuts
    geom(1, 8, 6, 5, 12, (1, 1)),                    # one image: the weight gradient too
    geom(3, 8, 7, 9, 12, (1, 1), (2, 2), g=2),       # 1x1 strided, grouped: implicit
    geom(2, 6, 9, 9, 6, (3, 3), p=2, d=(2, 2), g=6),  # depthwise
    geom(2, 4, 9, 8, 4, (4, 4), p="same", g=2),
    geom(2, 4, 11, 9, 6, (3, 5), (2, 1), (1, 2), (1, 2), g=2),
    geom(1, 2, 4, 4, 3, (3, 3), (3, 3)),
    geom(2, 70, 5, 4, 66, (3, 3), (2, 2), 1),
    geom(0, 3, 8, 8, 4, (3, 3)),                     # empty batch
]


def check(out, ref, mag, dtype, what):
    out = np.asarray(out)
    if out.dtype != dtype or out.shape != ref.shape:
        failures.append(f"{what}: {out.dtype} {out.shape}, expected {dtype} {ref.shape}")
        return
    err = np.abs(out.astype(F64) - ref)
    eps = float(ml_dtypes.finfo(dtype).eps)
    # As the GPU tests: the 1x1 shortcut with a bias rounds twice (the GEMM's result, then the
    # sum with the bias), so the bound follows the magnitude of the terms, not the result.
    bound = 8 * eps * mag + 1e-5 * mag + TINY[dtype]
    if np.isnan(err).any() or (err > bound).any():
        i = np.nanargmax(np.where(np.isnan(err), np.inf, err / (bound + 1e-300)))
        failures.append(f"{what}: element {np.unravel_index(i, err.shape)} got {out.flat[i]} "
                        f"expected {ref.flat[i]}")


def run(case, dtype, tf32, interim):
    (n, c, h, w, oc, k, g), args, ohw = case
    r = np.random.default_rng(n * 1000 + c * 10 + oc)
    x, wt, b, dy = (r.standard_normal(s).astype(dtype).astype(F64)
                    for s in ((n, c, h, w), (oc, c // g) + k, (oc,), (n, oc) + ohw))
    def passes(back, x, wt, b, dy):
        return (back.conv2d_forward(x, wt, b, *args, ohw),
                back.conv2d_backward_input(dy, wt, x.shape, *args),
                back.conv2d_backward_weight(x, dy, wt.shape, *args))

    ref = passes(cpu, x, wt, b, dy)
    mag = passes(cpu, *(np.abs(a) for a in (x, wt, b, dy)))
    _config.ALLOW_TF32 = tf32
    _config.CUDA_INTERIM = frozenset({"conv"}) if interim else frozenset()
    xg, wg, bg, dyg = (_dev(a.astype(dtype)) for a in (x, wt, b, dy))
    label = f"{case[0]} {args} {dtype}{' tf32' if tf32 else ''}{' interim' if interim else ''}"
    try:
        outs = passes(gpu, xg, wg, bg, dyg)
    except Exception as e:  # noqa: BLE001
        failures.append(f"{label}: {type(e).__name__}: {e}")
        return
    for out, rr, mm, what in zip(outs, ref, mag, ("forward", "backward_input", "backward_weight")):
        check(out, rr, mm, dtype, f"{label} {what}")


def main():
    for case in CASES:
        for dtype, tf32 in ((F32, False), (F32, True), (F16, False), (BF16, False)):
            run(case, dtype, tf32, interim=False)
        run(case, F32, False, interim=True)
        run(case, F64, False, interim=False)  # float64: the interim path
    # The 1x1 shortcuts go to the GEMM: forward and input gradient always, the weight
    # gradient for one image.
    GEMM_CALLS.clear()
    _config.CUDA_INTERIM = frozenset()
    run(CASES[2], F32, False, interim=False)
    if len(GEMM_CALLS) != 3:
        failures.append(f"1x1 one-image case made {len(GEMM_CALLS)} GEMM calls, expected 3")
    GEMM_CALLS.clear()
    run(CASES[0], F32, False, interim=False)
    if GEMM_CALLS:
        failures.append(f"3x3 case made {len(GEMM_CALLS)} GEMM calls, expected none")

    # Zero channels: the output is the bias (C == 0), the input gradient zero (OC == 0).
    _config.CUDA_INTERIM, _config.ALLOW_TF32 = frozenset(), False
    for dtype in (F32, F16, BF16):
        x, w, b = (_dev(np.zeros(s, dtype)) for s in ((2, 0, 5, 5), (3, 0, 3, 3), (3,)))
        b[:] = np.arange(3)
        y = gpu.conv2d_forward(x, w, b, (1, 1), (0, 0), (1, 1), 1, (3, 3))
        want = np.broadcast_to(np.arange(3.0).reshape(1, 3, 1, 1), y.shape)
        if not np.array_equal(np.asarray(y, F64), want):
            failures.append(f"{dtype} forward with no input channels is not the bias")
        dy, w = _dev(np.zeros((2, 0, 3, 3), dtype)), _dev(np.zeros((0, 4, 3, 3), dtype))
        dx = gpu.conv2d_backward_input(dy, w, (2, 4, 6, 5), (2, 2), (1, 1), (1, 1), 1)
        if not np.array_equal(np.asarray(dx, F64), np.zeros((2, 4, 6, 5))):
            failures.append(f"{dtype} input gradient with no output channels is not zero")

    z = _dev(np.zeros((1, 2, 5, 5), F32))
    expect_error(TypeError, "conv2d", lambda: gpu.conv2d_forward(
        _dev(np.zeros((1, 2, 5, 5), np.int32)), _dev(np.zeros((3, 2, 3, 3), np.int32)), None,
        (1, 1), (0, 0), (1, 1), 1, (3, 3)))
    expect_error(TypeError, "conv2d: weight has dtype", lambda: gpu.conv2d_forward(
        z, _dev(np.zeros((3, 2, 3, 3), F16)), None, (1, 1), (0, 0), (1, 1), 1, (3, 3)))
    expect_error(ValueError, "conv2d: bias has shape", lambda: gpu.conv2d_forward(
        z, _dev(np.zeros((3, 2, 3, 3), F32)), _dev(np.zeros(4, F32)), (1, 1), (0, 0), (1, 1), 1,
        (3, 3)))
    expect_error(ValueError, "conv2d: weight (3, 2, 3, 3) does not fit", lambda: gpu.conv2d_forward(
        z, _dev(np.zeros((3, 2, 3, 3), F32)), None, (1, 1), (0, 0), (1, 1), 2, (3, 3)))
    expect_error(ValueError, "conv2d_backward_input: expected 4-D", lambda: gpu.conv2d_backward_input(
        _dev(np.zeros((1, 3, 3), F32)), _dev(np.zeros((3, 2, 3, 3), F32)), (1, 2, 5, 5), (1, 1),
        (0, 0), (1, 1), 1))

    for f in failures:
        print("FAIL", f)
    print(f"{len(CASES)} geometries, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
