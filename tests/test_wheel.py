"""The wheel: built from this checkout, installed into a fresh virtual
environment with no compiler flags or CUDA, it imports, reports no GPU, and
passes the CPU test suite. Slow (it compiles everything): run with -m slow."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"
    return r.stdout


@pytest.mark.slow
def test_wheel_installs_and_passes_cpu_tests_in_a_fresh_venv(tmp_path):
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-w", str(dist)])
    wheels = list(dist.glob("pydl-*.whl"))
    assert len(wheels) == 1
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    py = venv / "bin" / "python"
    _run([str(py), "-m", "pip", "install", "-q", str(wheels[0]) + "[test]", "torch==2.13.0"])
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["CUDA_VISIBLE_DEVICES"] = ""
    out = _run([str(py), "-c", "import pydl, pydl._C; print(pydl.cuda.is_available(), "
                "pydl._C.build_info()['cuda_compiled'])"], cwd=tmp_path, env=env)
    assert out.split()[0] == "False"
    info = _run([str(py), "-m", "pydl", "info"], cwd=tmp_path, env=env)
    assert "cuda architectures" in info
    # The test suite against the installed wheel, from a folder without the source tree.
    shutil.copytree(ROOT / "tests", tmp_path / "tests")
    shutil.copytree(ROOT / "benchmarks", tmp_path / "benchmarks")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    _run([str(py), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "tests",
          "--ignore=tests/test_wheel.py"], cwd=tmp_path, env=env)
