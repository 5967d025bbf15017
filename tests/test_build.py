"""The installed package: the compiled module, build facts and `pydl info`."""
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
