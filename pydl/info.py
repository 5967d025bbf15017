"""`pydl info`: what this installation of pydl was built with and can see."""
from __future__ import annotations

import importlib.metadata
import platform


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def collect() -> dict:
    from . import __version__, _C, cuda

    build = _C.build_info()
    gpu = f"none ({cuda.unavailable_reason()})"
    if cuda.is_available():
        import cupy

        props = cupy.cuda.runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        major, minor = cuda.get_device_capability(0)
        gpu = f"{name} (sm_{major}{minor}, {props['totalGlobalMem'] / 2**30:.0f} GiB)"
    elif cuda.device_count() > 0:
        gpu = f"{cuda.device_count()} visible but unusable: {cuda.unavailable_reason()}"
    cupy_v = _version("cupy-cuda13x")
    if cupy_v == "not installed":
        cupy_v = _version("cupy-cuda12x")
    if cupy_v == "not installed":
        cupy_v = _version("cupy")
    numba_cuda = _version("numba-cuda")
    return {
        "pydl": __version__,
        "python": platform.python_version(),
        "cuda kernels compiled": "yes" if build["cuda_compiled"] else "no",
        "cuda architectures": build["cuda_archs"] or "-",
        "cuda compiler": build["cuda_version"] or "-",
        "host compiler": build["compiler"],
        "openmp threads": build["openmp_threads"],
        "cpu kernels": build["cpu_kernels"],
        "gpu": gpu,
        "numpy": _version("numpy"),
        "cupy": cupy_v,
        "numba": _version("numba") + ("" if numba_cuda == "not installed"
                                      else f" (numba-cuda {numba_cuda})"),
    }


def main():
    from rich.console import Console
    from rich.table import Table

    table = Table(title="pydl", show_header=False)
    for k, v in collect().items():
        table.add_row(k, str(v))
    Console().print(table)
