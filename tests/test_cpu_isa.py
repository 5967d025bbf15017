"""The CPU kernels pick their micro-kernels once per process from the CPU's features
(AVX-512, AVX2+FMA, baseline SSE2); PYDL_CPU_ISA caps the choice. These tests rerun the
convolution and attention kernel tests in fresh processes capped at AVX2 and at the
baseline, so every variant is checked against PyTorch on one machine, whatever it has; and
the convolution tests once more with the Winograd path turned off (PYDL_CPU_WINOGRAD=0)."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent


@pytest.mark.parametrize("isa", ["avx2", "generic"])
@pytest.mark.parametrize("target", ["test_conv_kernels.py", "test_attention.py"])
def test_capped_isa(target, isa):
    env = dict(os.environ, PYDL_CPU_ISA=isa)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(HERE / target)], env=env, capture_output=True, text=True,
                       timeout=900, cwd=HERE.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and " failed" not in r.stdout


def test_conv_without_winograd():
    """PYDL_CPU_WINOGRAD=0 sends the 3x3 stride-1 layers to the implicit GEMM, which the
    default run no longer takes for them."""
    env = dict(os.environ, PYDL_CPU_WINOGRAD="0")
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        str(HERE / "test_conv_kernels.py")], env=env, capture_output=True,
                       text=True, timeout=900, cwd=HERE.parent)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert " passed" in r.stdout and " failed" not in r.stdout
