"""pydl/backend/cuda.py's attention functions on the CPU: a NumPy stand-in for CuPy (arrays
that present __cuda_array_interface__ over host memory) and the `attention_emu` module
(pydl's attention bindings over the emulated kernels of kernels/attention/) in place of
pydl._C.cuda, checked against the CPU backend in float64. It covers the Python side of the
fused path: the choice between the fused kernels and the interim path (PYDL_CUDA_INTERIM,
dropout, float64, head dims, empty inputs, devices below compute capability 8.0 or with too
little shared memory), the layouts the backend passes down or copies, the mask's conversion,
the outputs and workspaces it allocates, the stream, and the errors of bad inputs; the
kernels' own arithmetic is emulated (attention_emulate.cpp checks it in depth).

    python tests/cuda_emulation/attention_emu_backend.py DIR   # DIR holds the built attention_emu

Prints one line per failure and exits nonzero if any.
"""
import math
import sys

import ml_dtypes
import numpy as np

sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else ".")
import attention_emu  # noqa: E402
import fake_cupy  # noqa: E402
from fake_cupy import dev as _dev, expect_error, failures  # noqa: E402

STREAM = 0x5EED
cp = fake_cupy.install(stream=STREAM, wrap_all=True)
from pydl import _config  # noqa: E402
from pydl._ops.attention import _mask_view  # noqa: E402
from pydl.backend import cpu, cuda as gpu  # noqa: E402

BF16 = np.dtype(ml_dtypes.bfloat16)
F16, F32, F64 = np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64)
OP = "scaled_dot_product_attention"
BWD = OP + "_backward"


def _matmul(a, b, bias=None, activation="none"):
    """pydl's GEMM, as NumPy (the interim path's products): float32 or float64 accumulation."""
    wide = np.float64 if a.dtype == F64 else np.float32
    out = np.matmul(np.asarray(a, wide), np.asarray(b, wide))
    if bias is not None:
        out = out + np.asarray(bias, wide)
    return _dev(out.astype(a.dtype))


gpu._k = attention_emu
gpu.matmul = _matmul


def eps(dtype):
    return float(ml_dtypes.finfo(dtype).eps)


def bound(ref, E, dtype, mag, scale):
    """As tests/test_cuda_attention_fused.py: 2 eps |ref| + 4 w eps max(mag, 1)."""
    w = max(math.sqrt(E), E * abs(scale))
    return 2 * eps(dtype) * np.abs(ref) + 4 * w * eps(dtype) * max(mag, 1.0)


def check(got, ref, b, dtype, what):
    got = np.asarray(got)
    if got.dtype != dtype or got.shape != ref.shape:
        failures.append(f"{what}: {got.dtype} {got.shape}, expected {dtype} {ref.shape}")
        return
    err = np.abs(got.astype(F64) - ref)
    b = np.broadcast_to(b, err.shape)
    if np.isnan(err).any() or (err > b).any():
        i = np.nanargmax(np.where(np.isnan(err), np.inf, err / (b + 1e-300)))
        failures.append(f"{what}: element {np.unravel_index(i, err.shape)} got "
                        f"{got.astype(F64).flat[i]} expected {ref.flat[i]}")


def check_lse(got, ref, w, dtype, what):
    """lse: float32 (float64 for float64 inputs), 8 w eps of that type."""
    got, want = np.asarray(got), F64 if dtype == F64 else F32
    if got.dtype != want or not np.array_equal(np.isneginf(got), np.isneginf(ref)):
        failures.append(f"{what}: dtype {got.dtype} (expected {want}) or the rows that see no "
                        "key differ")
        return
    fin = np.isfinite(ref)
    t = 8 * w * eps(want)
    if not np.allclose(got[fin], ref[fin], rtol=t, atol=t):
        failures.append(f"{what}: off by {np.abs(got[fin] - ref[fin]).max():.3g}")


# Layouts of the inputs as the backend receives them (all hold the same values).
def contiguous(a):
    return _dev(np.ascontiguousarray(a))


def padded_rows(extra):
    def put(a):
        big = np.zeros(a.shape[:-1] + (a.shape[-1] + extra,), a.dtype)
        big[..., :a.shape[-1]] = a
        return _dev(big)[..., :a.shape[-1]]
    put.__name__ = f"padded_rows({extra})"
    return put


def batch_strided(a):
    big = np.zeros((2 * a.shape[0],) + a.shape[1:], a.dtype)
    big[::2] = a
    return _dev(big)[::2]


def transposed(a):  # last dimension not contiguous: the backend copies it
    return _dev(np.ascontiguousarray(a.transpose(0, 2, 1))).transpose(0, 2, 1)


def run(batch, L, S, E, Ev, dtype, causal, mask=None, layout=contiguous, scale=None,
        expect="fused", seed=0):
    """Forward and backward through pydl/backend/cuda.py against the CPU backend in float64;
    `expect`: the path the backend must take ("fused": the emulated kernels launch)."""
    B = int(np.prod(batch))
    r = np.random.default_rng(seed)
    q, k, v, dout = (r.standard_normal(s).astype(dtype).astype(F64)
                     for s in ((B, L, E), (B, S, E), (B, S, Ev), (B, L, Ev)))
    scale = 1 / math.sqrt(E) if scale is None else scale
    m64 = None if mask is None else _mask_view(np, mask, F64, batch, L, S)
    wide = F32 if dtype in (F16, BF16) else dtype
    mg = None if mask is None else _mask_view(cp, cp.asarray(mask), wide, batch, L, S)
    out, lse = cpu.attention_forward(q, k, v, m64, scale, causal)
    grads = cpu.attention_backward(q, k, v, m64, out, lse, dout, scale, causal)
    qg, kg, vg, dog = (layout(a.astype(dtype)) for a in (q, k, v, dout))
    label = (f"{dtype} batch={batch} L={L} S={S} E={E} Ev={Ev} causal={causal} "
             f"mask={None if mask is None else mask.shape} {layout.__name__} scale={scale:g}")
    attention_emu.set_context(label)
    reason = gpu._attention_interim_reason(qg, kg, vg, 0.0)
    if (reason == "") != (expect == "fused") or (expect != "fused" and expect not in reason):
        failures.append(f"{label}: routed by '{reason}', expected {expect}")
    attention_emu.launch_streams()
    try:
        og, lg = gpu.attention_forward(qg, kg, vg, mg, scale, causal)
        dgrads = gpu.attention_backward(qg, kg, vg, mg, og, lg, dog, scale, causal)
    except Exception as e:  # noqa: BLE001
        failures.append(f"{label}: {type(e).__name__}: {e}")
        return
    streams = attention_emu.launch_streams()
    if expect == "fused" and (not streams or set(streams) != {STREAM}):
        failures.append(f"{label}: fused launches on streams {set(streams)}, expected {STREAM:#x}")
    if expect != "fused" and streams:
        failures.append(f"{label}: the interim path launched {len(streams)} fused kernels")
    w = max(math.sqrt(E), E * abs(scale))
    check(og, out, bound(out, E, dtype, np.abs(out).max(initial=0), scale), dtype, f"{label} out")
    check_lse(lg, lse, w, dtype, f"{label} lse")
    gmag = max(np.abs(g).max(initial=0) for g in grads)
    for name, dg, rg in zip("qkv", dgrads, grads):
        check(dg, rg, bound(rg, E, dtype, gmag, scale), dtype, f"{label} d{name}")


def routing():
    """What stays on the interim path, and why."""
    z = lambda shape, dtype=F32: _dev(np.zeros(shape, dtype))  # noqa: E731
    q = z((2, 5, 16))
    cases = [((q, q, q, 0.0), ""), ((q, q, q, 0.1), "dropout"),
             ((z((2, 5, 16), F64),) * 3 + (0.0,), "dtype float64"),
             ((z((2, 5, 300), F16),) * 3 + (0.0,), "head dims 1 to 256"),
             ((z((2, 0, 16)), q, q, 0.0), "empty or not 3-D"),
             ((q, z((2, 0, 16)), z((2, 0, 16)), 0.0), "empty or not 3-D")]
    for args, want in cases:
        got = gpu._attention_interim_reason(*args)
        if (want == "" and got != "") or want not in got:
            failures.append(f"interim reason for {[a.shape for a in args[:3]]} "
                            f"{args[0].dtype} dropout={args[3]}: '{got}', expected '{want}'")
    _config.CUDA_INTERIM = frozenset({"conv"})
    if gpu._attention_interim_reason(q, q, q, 0.0) != "":
        failures.append("PYDL_CUDA_INTERIM=conv moved attention to the interim path")
    _config.CUDA_INTERIM = frozenset({"attention", "conv"})
    if gpu._attention_interim_reason(q, q, q, 0.0) != "PYDL_CUDA_INTERIM=attention":
        failures.append("PYDL_CUDA_INTERIM=attention,conv kept attention on the fused kernels")
    _config.CUDA_INTERIM = frozenset()
    tiles = attention_emu.attention_tiles("float16", 33, 8)
    if tiles["head_dim"] != 64 or tiles["fwd_rows"] <= 0 or tiles["bwd_smem"] <= 0:
        failures.append(f"attention_tiles('float16', 33, 8) = {tiles}")


def errors():
    """Bad inputs: errors that name the op, from the backend and from the bindings."""
    _config.CUDA_INTERIM = frozenset()
    z = lambda shape, dtype=F16: _dev(np.zeros(shape, dtype))  # noqa: E731
    i32 = (z((1, 4, 8), np.int32),) * 3
    expect_error(TypeError, OP, lambda: gpu.attention_forward(*i32, None, 1.0, False))
    expect_error(TypeError, f"{OP}: key has dtype", lambda: gpu.attention_forward(
        z((1, 4, 8)), z((1, 4, 8), F32), z((1, 4, 8)), None, 1.0, False))
    expect_error(ValueError, f"{OP}: query, key and value must have the same batch",
                 lambda: gpu.attention_forward(z((2, 4, 8)), z((3, 5, 8)), z((3, 5, 8)), None,
                                               1.0, False))
    expect_error(ValueError, f"{OP}: query and key head dims differ",
                 lambda: gpu.attention_forward(z((2, 4, 8)), z((2, 5, 16)), z((2, 5, 8)), None,
                                               1.0, False))
    expect_error(ValueError, f"{OP}: key and value lengths differ",
                 lambda: gpu.attention_forward(z((2, 4, 8)), z((2, 5, 8)), z((2, 6, 8)), None,
                                               1.0, False))
    expect_error(ValueError, f"{OP}: attn_mask view must be",
                 lambda: gpu.attention_forward(z((2, 4, 8)), z((2, 5, 8)), z((2, 5, 8)),
                                               z((1, 2, 4, 6), F32), 1.0, False))
    q, lse = z((2, 4, 8)), z((2, 4), F32)

    def fwd(q=q, k=q, v=q, mask=None, out=None, lse=lse):
        out = z((2, 4, 8)) if out is None else out
        attention_emu.attention_forward(q, k, v, mask, out, lse, 1.0, False, STREAM)

    expect_error(ValueError, f"{OP}: output has shape", lambda: fwd(out=z((2, 4, 9))))
    expect_error(TypeError, f"{OP}: lse must be float32", lambda: fwd(lse=z((2, 4))))
    expect_error(ValueError, f"{OP}: output must be contiguous",
                 lambda: fwd(out=z((2, 8, 4)).transpose(0, 2, 1)))
    expect_error(ValueError, f"{OP}: query must be contiguous in its last dimension",
                 lambda: fwd(q=z((2, 8, 4)).transpose(0, 2, 1)))
    expect_error(ValueError, f"{OP}: query must be 3-D", lambda: fwd(q=z((2, 4, 8, 1))))
    expect_error(TypeError, f"{OP}: query must be a GPU array",
                 lambda: fwd(q=np.zeros((2, 4, 8), np.float16)))
    expect_error(TypeError, f"{OP}: attn_mask must be an additive float32",
                 lambda: fwd(mask=z((2, 1, 4, 4))))
    expect_error(ValueError, f"{OP}: the fused GPU kernels take head dims 1 to 256", lambda: fwd(
        q=z((1, 2, 300)), k=z((1, 2, 300)), v=z((1, 2, 300)), out=z((1, 2, 300)),
        lse=z((1, 2), F32)))
    expect_error(TypeError, f"{OP}: the fused GPU kernels take float32, float16 and bfloat16",
                 lambda: fwd(q=z((2, 4, 8), F64), k=z((2, 4, 8), F64), v=z((2, 4, 8), F64),
                             out=z((2, 4, 8), F64)))

    def grads(dq=None, dk=None, acc=z((2, 4, 8), F32), dout=q, dsum=z((2, 4), F32)):
        dq = z((2, 4, 8)) if dq is None else dq
        dk = z((2, 4, 8)) if dk is None else dk
        attention_emu.attention_backward(q, q, q, None, q, lse, dout, dq, dk, z((2, 4, 8)), acc,
                                         dsum, 1.0, False, STREAM)

    expect_error(ValueError, f"{BWD}: a zero-filled float32 dq_acc workspace",
                 lambda: grads(acc=None))
    expect_error(ValueError, f"{BWD}: grad_key has shape", lambda: grads(dk=z((2, 5, 8))))
    expect_error(ValueError, f"{BWD}: grad_output has shape", lambda: grads(dout=z((2, 4, 7))))
    expect_error(TypeError, f"{BWD}: dsum must be float32", lambda: grads(dsum=z((2, 4))))
    expect_error(TypeError, f"{BWD}: grad_query must be float16",
                 lambda: grads(dq=z((2, 4, 8), F32)))
    f = z((2, 4, 8), F32)
    expect_error(ValueError, f"{BWD}: dq_acc must be None for float32", lambda: (
        attention_emu.attention_backward(f, f, f, None, f, lse, f, f, f, f, z((2, 4, 8), F32),
                                         z((2, 4), F32), 1.0, False, STREAM)))
    expect_error(ValueError, f"{BWD}: grad_output has shape", lambda: gpu.attention_backward(
        q, q, q, None, q, lse, z((2, 4, 7)), 1.0, False))


def main():
    routing()
    errors()
    r = np.random.default_rng(7)
    _config.CUDA_INTERIM = frozenset()
    # The fused kernels: every dtype, both masks, the layouts the backend passes down (padded
    # rows, batch strides) and the one it copies (a non-contiguous last dimension).
    bool_mask = r.random((3, 23, 29)) > 0.3
    bool_mask[:, 4] = False  # a row that sees no key
    add_mask = r.standard_normal((2, 1, 23, 1))  # float64: converted to the kernels' float32
    layouts = [contiguous, padded_rows(3), padded_rows(8), batch_strided, transposed]
    for i, dtype in enumerate((F32, F16, BF16)):
        run((2, 3), 23, 29, 24, 40, dtype, False, mask=bool_mask, layout=layouts[i])
        run((2, 3), 23, 29, 33, 33, dtype, True, mask=add_mask, layout=layouts[i + 2])
        run((2,), 17, 41, 8, 8, dtype, True, layout=transposed, scale=0.3, seed=i)
    run((1,), 1, 1, 1, 1, F32, False)
    run((2,), 19, 21, 256, 256, F16, False)
    # The interim path: PYDL_CUDA_INTERIM, float64, head dims past 256.
    _config.CUDA_INTERIM = frozenset({"attention"})
    run((2,), 13, 17, 16, 16, F32, True, mask=bool_mask[0, :13, :17], expect="PYDL_CUDA_INTERIM")
    _config.CUDA_INTERIM = frozenset()
    run((2,), 13, 17, 16, 16, F64, True, expect="dtype float64")
    run((1,), 5, 7, 300, 8, F32, False, expect="head dims 1 to 256")
    # Devices the kernels do not cover: below sm_80, or too little shared memory per block
    # for the head dim's tiles (99 KiB: sm_86 / sm_89) stay on the interim path.
    attention_emu.set_device(75, 64 * 1024)
    gpu._ATTN_FUSED.clear()
    run((2,), 13, 17, 16, 16, F16, False, expect="compute capability 8.0")
    attention_emu.set_device(86, 99 * 1024)
    gpu._ATTN_FUSED.clear()
    run((1,), 13, 17, 256, 256, F32, False, expect="shared memory per block")
    run((1,), 13, 17, 64, 64, F32, True)
    attention_emu.set_device(80, 163 * 1024)
    gpu._ATTN_FUSED.clear()
    run((1,), 13, 17, 256, 256, F32, False)

    for f in failures:
        print("FAIL", f)
    print(f"attention backend glue: {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
