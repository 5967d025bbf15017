"""The `pydl bench ops` cases as a pytest-benchmark suite, for tracking
regressions with pytest-benchmark's own tooling:

    python -m pytest benchmarks/test_ops_benchmark.py --benchmark-only [--device cuda]

Each case (gemm, rowops, attention, conv; the quick sizes) is checked against PyTorch
before it is timed; one whose kernel the backend lacks is skipped."""
import pytest

pytest.importorskip("pytest_benchmark")
pytest.importorskip("torch")

from pydl.bench.ops import SUITES, TOLERANCE, rel_error  # noqa: E402


def pytest_generate_tests(metafunc):
    if "case" in metafunc.fixturenames:
        import pydl

        device = "cuda" if pydl.cuda.is_available() else "cpu"
        dtypes = ["float32", "float16", "bfloat16"] if device == "cuda" else ["float32"]
        cases = [c for suite in SUITES.values() for dt in dtypes for c in suite(device, dt, True)]
        metafunc.parametrize("case", cases, ids=[f"{c.op}-{c.dtype}-{c.shape}" for c in cases])


def test_op(benchmark, case):
    if case.unsupported:
        pytest.skip(case.unsupported)
    got, want = case.outputs()
    assert rel_error(got, want) <= TOLERANCE[case.dtype]
    import pydl

    def run():
        case.pydl_fn()
        pydl.cuda.synchronize()  # GPU work is asynchronous: time it to completion

    benchmark(run)
