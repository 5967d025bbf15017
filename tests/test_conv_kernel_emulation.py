"""The CUDA convolution kernels checked on the CPU, with no GPU: the launchers of
kernels/conv/conv.cu run with every kernel launch replaced by a host loop over the very same
tile loaders, epilogues and element functions (tests/cuda_emulation/).

- conv_emulate.cu, built under AddressSanitizer and UBSan, runs listed and random geometries
  for every core against a direct float64 convolution (index arithmetic, tails, padding,
  stride phases, splits; any out-of-bounds access fails it);
- conv_emu_backend.py runs pydl/backend/cuda.py's conv functions over the same emulation (the
  bindings built as a module, NumPy standing in for CuPy): plans, workspaces, the 1x1 GEMM
  shortcuts, the interim routing and the errors.

The device-only parts (cp.async, ldmatrix and mma.sync fragments, barriers) are left to the
-m cuda tests. Needs nvcc; marked slow (a minute or two to build and run on two cores)."""
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMU = "tests/cuda_emulation"
KERNELS = [f"{EMU}/conv_launchers_emulated.cu", "kernels/conv/conv.cu", "csrc/tensor_view.cpp"]

pytestmark = pytest.mark.slow


def _nvcc():
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("needs nvcc")
    return nvcc


def _build(cmd):
    built = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if built.returncode != 0:
        pytest.fail(f"build failed: {' '.join(cmd)}\n{built.stderr[-4000:]}")


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    nvcc = _nvcc()
    exe = tmp_path_factory.mktemp("conv_emulate") / "conv_emulate"
    san = ["-Xcompiler", "-fsanitize=address", "-Xcompiler", "-fsanitize=undefined",
           "-Xcompiler", "-fno-omit-frame-pointer", "-Xlinker", "-lasan", "-Xlinker", "-lubsan"]
    _build([nvcc, "-std=c++17", "-O1", "-g", f"-I{ROOT}", "--expt-relaxed-constexpr", *san,
            f"{EMU}/conv_emulate.cu", *KERNELS, "-o", str(exe)])
    return exe


@pytest.mark.parametrize("args", [[], ["random", "100"]], ids=["listed", "random"])
def test_conv_kernels_index_arithmetic_on_the_host(emulator, args):
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")
    out = subprocess.run([str(emulator), *args], capture_output=True, text=True, env=env,
                         timeout=900)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert " 0 failures" in out.stdout, out.stdout[-4000:]


def test_cuda_backend_conv_glue_on_the_host(tmp_path):
    nvcc = _nvcc()
    pybind11 = pytest.importorskip("pybind11")
    module = tmp_path / f"conv_emu{sysconfig.get_config_var('EXT_SUFFIX')}"
    _build([nvcc, "-std=c++17", "-O1", f"-I{ROOT}", f"-I{sysconfig.get_paths()['include']}",
            f"-I{pybind11.get_include()}", "--expt-relaxed-constexpr", "-DPYDL_WITH_CUDA=1",
            "-shared", "-Xcompiler", "-fPIC", "-Xcompiler", "-fvisibility=hidden",
            f"{EMU}/conv_emu_module.cpp", "bindings/cuda_conv.cpp", "bindings/views.cpp", *KERNELS,
            "-o", str(module)])
    out = subprocess.run([sys.executable, str(ROOT / EMU / "conv_emu_backend.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    assert " 0 failures" in out.stdout, out.stdout[-4000:]
