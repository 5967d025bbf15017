"""Loads a PyTorch twin module from benchmarks/twins/ by file path (benchmarks is not a package)."""
import importlib.util
import pathlib

_ROOT = pathlib.Path(__file__).resolve().parents[1] / "benchmarks" / "twins"


def load_twin(name):
    spec = importlib.util.spec_from_file_location(f"pydl_twin_{name}", _ROOT / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def one_blas_thread():
    """A fixture body: the recurrent tests do many tiny matrix products, which a threaded
    BLAS on a busy small machine runs many times slower than one thread."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        yield
