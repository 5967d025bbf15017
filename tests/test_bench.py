"""`pydl bench ops --quick` and `pydl bench models --quick` on the CPU: every row checked
then timed, reports written, and a wrong kernel or model reported as wrong instead of timed."""
import json

import pytest

pytest.importorskip("torch")

import pydl.backend.cpu as cpu_backend  # noqa: E402
from pydl import bench  # noqa: E402
from pydl.bench.models import TwinsNotFound  # noqa: E402
from pydl.cli import main  # noqa: E402


def test_quick_cpu_run_writes_checked_rows(tmp_path):
    rc = main(["bench", "ops", "--device", "cpu", "--quick", "--out", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["environment"]["commit"] and res["command"].startswith("pydl bench ops")
    ops = {r["op"] for r in res["rows"]}
    assert {"matmul", "softmax_fwd", "layer_norm_bwd", "cross_entropy_fwd", "attention_fwd",
            "attention_bwd", "conv2d_fwd", "conv2d_bwd_input", "conv2d_bwd_weight"} <= ops
    for r in res["rows"]:
        assert r["status"] == "ok" and r["pydl_ms"] > 0 and r["torch_ms"] > 0
        assert r["rel_error"] <= 1e-4
        if r["suite"] in ("attention", "conv"):
            assert r["unit"] == "TFLOP/s" and r["pydl_rate"] > 0
    shapes = {r["shape"] for r in res["rows"] if r["suite"] == "attention"}
    assert any("causal" in s for s in shapes) and any(s.endswith("x128") for s in shapes)
    kernels = {r["extra"]["torch_kernel"] for r in res["rows"] if r["suite"] == "attention"}
    assert kernels and all(k.startswith("cpu ") for k in kernels)
    assert (tmp_path / "report.md").read_text().count("| ok |") == len(res["rows"])
    for png in ("ratio.png", "roofline.png"):
        if (tmp_path / png).exists():
            assert (tmp_path / png).read_bytes()[:4] == b"\x89PNG"


def test_wrong_kernel_is_reported_not_timed(monkeypatch):
    real = cpu_backend.softmax_forward
    monkeypatch.setattr(cpu_backend, "softmax_forward", lambda x, log: real(x, log) * 1.01)
    res = bench.run_ops("cpu", quick=True, suites=["rowops"], progress=False)
    by_op = {}
    for r in res["rows"]:
        by_op.setdefault(r["op"], []).append(r)
    for r in by_op["softmax_fwd"] + by_op["log_softmax_fwd"]:
        assert r["status"] == "wrong" and "pydl_ms" not in r
    for r in by_op["layer_norm_fwd"]:
        assert r["status"] == "ok"


def test_missing_kernels_are_reported_unsupported(monkeypatch, tmp_path):
    monkeypatch.delattr(cpu_backend, "attention_backward")
    monkeypatch.delattr(cpu_backend, "conv2d_forward")
    res = bench.run_ops("cpu", quick=True, suites=["attention", "conv"], progress=False)
    assert res["rows"]
    for r in res["rows"]:
        assert r["status"] == "unsupported" and "pydl_ms" not in r
        assert "has no" in r["reason"]
    bench.write(res, str(tmp_path))
    assert "unsupported: the cpu backend has no attention_backward" in (tmp_path / "report.md").read_text()


def test_compare_two_runs(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        res = bench.run_ops("cpu", quick=True, suites=["gemm"], progress=False)
        bench.write(res, str(d))
    assert main(["bench", "compare", str(a), str(b)]) == 0


def test_quick_models_run_checks_then_times(tmp_path):
    ops_rows = [{"suite": "gemm", "op": "matmul", "dtype": "float32", "shape": "8x8x8", "status": "ok",
                 "rel_error": 0.0, "pydl_ms": 1.0, "torch_ms": 1.0, "ratio": 1.0, "unit": "TFLOP/s",
                 "pydl_rate": 1.0, "torch_rate": 1.0, "fraction_of_ceiling": 0.5}]
    res = bench.run_models("cpu", families=["mlp"], quick=True, progress=False)
    bench.write(dict(res, kind="ops", rows=ops_rows, command="pydl bench ops"), str(tmp_path))
    rc = main(["bench", "models", "--device", "cpu", "--quick", "--families", "mlp,gnn,word2vec",
               "--out", str(tmp_path)])
    assert rc == 0
    merged = json.loads((tmp_path / "results.json").read_text())
    assert merged["kind"] == "models+ops" and [r["kind"] for r in merged["runs"]] == ["ops", "models"]
    rows = [r for r in merged["rows"] if r["suite"] == "models"]
    assert {(r["family"], r["pass"]) for r in rows} == {("mlp", "train"), ("mlp", "infer"),
                                                        ("gnn", "train"), ("gnn", "infer"),
                                                        ("word2vec", "train")}
    assert any(r["op"] == "matmul" for r in merged["rows"])  # the ops run in the folder stays
    for r in rows:
        assert r["status"] == "ok" and r["rel_error"] < 1e-3
        assert r["pydl_ms"] > 0 and r["torch_ms"] > 0 and r["unit"] == "samples/s"
        assert r["pydl_rate"] == pytest.approx(r["batch"] / (r["pydl_ms"] * 1e-3))
    md = (tmp_path / "report.md").read_text()
    assert "## Ops" in md and "## Models" in md and "| word2vec | train |" in md


def test_wrong_model_is_reported_not_timed(monkeypatch):
    from pydl.models import MLP

    real = MLP.forward
    monkeypatch.setattr(MLP, "forward", lambda self, x: real(self, x) + x[:, :10])
    res = bench.run_models("cpu", families=["mlp"], quick=True, progress=False)
    assert {r["pass"] for r in res["rows"]} == {"train", "infer"}
    for r in res["rows"]:
        assert r["status"] == "wrong" and r["rel_error"] > 1e-3 and "pydl_ms" not in r


def test_models_without_twins_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(TwinsNotFound, match="source checkout"):
        bench.run_models("cpu", families=["mlp"], quick=True, progress=False, twins_dir=str(tmp_path))
    assert main(["bench", "models", "--device", "cpu", "--quick", "--twins", str(tmp_path)]) == 2
    assert "benchmarks/twins" in capsys.readouterr().out


def test_model_the_backend_cannot_run_is_unsupported(monkeypatch):
    monkeypatch.delattr(cpu_backend, "conv2d_forward")
    res = bench.run_models("cpu", families=["cnn", "mlp"], quick=True, progress=False)
    by_family = {r["family"]: r for r in res["rows"] if r["pass"] == "train"}
    assert by_family["cnn"]["status"] == "unsupported" and "conv2d_forward" in by_family["cnn"]["reason"]
    assert by_family["mlp"]["status"] == "ok"


def test_time_budget_stops_the_run_and_says_where(tmp_path):
    rc = main(["bench", "ops", "--device", "cpu", "--quick", "--suites", "rowops,gemm",
               "--max-minutes", "0", "--out", str(tmp_path)])
    assert rc == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["rows"] == []
    assert res["stopped"].startswith("time budget of 0 s spent: stopped before rowops ")
    assert res["runs"][0]["stopped"] == res["stopped"]
    assert res["stopped"] in (tmp_path / "report.md").read_text()
    # With room to spare, every case runs and nothing is said.
    res = bench.run_ops("cpu", quick=True, suites=["gemm"], progress=False, max_seconds=3600)
    assert "stopped" not in res and res["rows"] and all(r["status"] == "ok" for r in res["rows"])


def test_rerunning_a_suite_in_one_dtype_keeps_its_other_dtypes(tmp_path):
    res = bench.run_ops("cpu", quick=True, suites=["gemm"], progress=False)
    n = len(res["rows"])
    bench.write(res, str(tmp_path))
    other = json.loads(json.dumps(res))
    for r in other["rows"]:
        r["dtype"] = "float64"
    bench.write(other, str(tmp_path))
    merged = json.loads((tmp_path / "results.json").read_text())
    assert sorted({r["dtype"] for r in merged["rows"]}) == ["float32", "float64"]
    assert len(merged["rows"]) == 2 * n
    bench.write(res, str(tmp_path))  # float32 again: replaces the float32 rows only
    merged = json.loads((tmp_path / "results.json").read_text())
    assert len(merged["rows"]) == 2 * n and len(merged["runs"]) == 3
