"""The installed package: the compiled module, build facts and `pydl info`."""
import os
import subprocess
import sys

import pydl
from pydl import _C


def test_compiled_module_imports_and_reports_build():
    info = _C.build_info()
    assert isinstance(info["cuda_compiled"], bool)
    if info["cuda_compiled"]:
        assert "90a" in info["cuda_archs"] and "80" in info["cuda_archs"]
        assert info["cuda_version"]
    assert info["openmp_threads"] >= 1
    assert info["cpu_kernels"] in ("sse2", "avx2", "avx512")


def test_cpu_kernel_choice_can_be_capped():
    """PYDL_CPU_ISA caps the micro-kernels (read once per process), never widens them."""
    code = "from pydl import _C; print(_C.build_info()['cpu_kernels'])"
    best = _C.build_info()["cpu_kernels"]
    for cap, want in (("generic", "sse2"), ("avx2", "sse2" if best == "sse2" else "avx2"),
                      ("avx512", best)):
        env = dict(os.environ, PYDL_CPU_ISA=cap)
        got = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True).stdout.strip()
        assert got == want, (cap, got, want)


def test_cuda_availability_is_consistent():
    avail = pydl.cuda.is_available()
    assert isinstance(avail, bool)
    if not avail:
        assert pydl.cuda.unavailable_reason()
    if _C.cuda.device_count() == 0:
        assert not avail


def test_pydl_info_command_prints_versions():
    out = subprocess.run([sys.executable, "-m", "pydl", "info"], capture_output=True, text=True,
                         check=True).stdout
    for key in ("pydl", "cuda kernels compiled", "gpu", "numpy", "cupy", "numba", pydl.__version__):
        assert key in out
