"""The fused CUDA attention kernels checked on the CPU, with no GPU: the launchers and kernels
of kernels/attention/, rewritten into host C++ at test time (attention_emu_sources.py: shared
arrays, launches and the PTX wrappers of mma_sync.cuh; the tile code as written) and run
thread by thread by the emulated device of attention_emu.h (tests/cuda_emulation/).

- attention_emulate.cpp, built under AddressSanitizer and UBSan, runs forward and backward for
  float32, float16 and bfloat16 over listed and random geometries against a direct float64
  attention: head dims 1 to 256 in every padded width, E != Ev, lengths 1, primes and past the
  tiles, causal with L < S and L > S, every mask broadcast, rows and keys nobody sees, padded,
  batch-strided and misaligned inputs; outputs poisoned with NaN, any access outside a tensor
  or outside the block's shared memory fails it, and other thread orders and cp.async landing
  times run a share of the cases again (a missing barrier shows in one of them);
- attention_emu_backend.py runs pydl/backend/cuda.py's attention functions over the same
  emulation (bindings/cuda_attention.cpp built as a module, NumPy standing in for CuPy):
  the interim routing, the layouts, the stream and the errors of bad inputs.

Not covered: timing, the GPU's approximate exp2f, ordering across blocks; the -m cuda tests
run the real thing. Needs g++ (the rewritten kernels are host C++; nvcc is not used); marked
slow (about a minute to build and run on two cores)."""
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EMU = ROOT / "tests" / "cuda_emulation"
_spec = importlib.util.spec_from_file_location("attention_emu_sources",
                                               EMU / "attention_emu_sources.py")
attention_emu_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(attention_emu_sources)

pytestmark = pytest.mark.slow

SANITIZE = ["-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
            "-fno-omit-frame-pointer"]
RUN_ENV = dict(os.environ, ASAN_OPTIONS="detect_leaks=0:abort_on_error=0",
               UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1")


def _cxx():
    cxx = shutil.which("g++")
    if cxx is None:
        pytest.skip("needs g++ (the emulated kernels are compiled as host C++)")
    return cxx


def _sanitizers(cxx, tmp):
    """Skips when the compiler has no AddressSanitizer / UBSan runtime to link."""
    src = tmp / "probe.cpp"
    src.write_text("int main() { return 0; }\n")
    probe = subprocess.run([cxx, *SANITIZE, str(src), "-o", str(tmp / "probe")],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"needs g++ with AddressSanitizer and UBSan: {probe.stderr.strip()[-300:]}")


def _tail(text, n=6000):
    return text if len(text) <= n else "...\n" + text[-n:]


def _compile(jobs, log_dir, parallel=2):
    """Runs the compile commands, `parallel` at a time (the compiler's output to a log file
    each); fails with the first error's output."""
    pending, running = list(enumerate(jobs)), []
    while pending or running:
        while pending and len(running) < parallel:
            i, cmd = pending.pop(0)
            log = log_dir / f"build{i}.log"
            with open(log, "w") as f:
                running.append((cmd, log, subprocess.Popen(cmd, cwd=ROOT, stdout=f,
                                                           stderr=subprocess.STDOUT)))
        for job in list(running):
            cmd, log, proc = job
            if proc.poll() is None:
                continue
            running.remove(job)
            if proc.returncode != 0:
                for _, _, other in running:
                    other.kill()
                    other.wait()
                pytest.fail(f"build failed: {' '.join(map(str, cmd))}\n{_tail(log.read_text())}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The ASan/UBSan driver and the (unsanitised) Python module, compiled side by side from
    freshly rewritten kernel sources."""
    cxx = _cxx()
    pybind11 = pytest.importorskip("pybind11")
    out = tmp_path_factory.mktemp("attention_emulation")
    _sanitizers(cxx, out)
    gen = out / "gen"
    kernels = attention_emu_sources.write_sources(gen, ROOT)
    inc = ["-std=c++17", f"-I{gen}", f"-I{EMU}", f"-I{ROOT}"]
    shared = kernels + [EMU / "attention_emu_device.cpp", ROOT / "csrc" / "tensor_view.cpp"]
    glue = ["-O1", "-fPIC", "-fvisibility=hidden", "-DPYDL_WITH_CUDA=1",
            f"-I{sysconfig.get_paths()['include']}", f"-I{pybind11.get_include()}"]
    san_objs, glue_objs, jobs = [], [], []
    for src in shared + [EMU / "attention_emulate.cpp"]:
        obj = out / "san" / (src.stem + ".o")
        san_objs.append(obj)
        jobs.append([cxx, *inc, *SANITIZE, "-c", str(src), "-o", str(obj)])
    for src in shared + [EMU / "attention_emu_module.cpp", ROOT / "bindings" / "cuda_attention.cpp",
                         ROOT / "bindings" / "views.cpp"]:
        obj = out / "glue" / (src.stem + ".o")
        glue_objs.append(obj)
        jobs.append([cxx, *inc, *glue, "-c", str(src), "-o", str(obj)])
    (out / "san").mkdir()
    (out / "glue").mkdir()
    _compile(jobs, out)
    exe = out / "attention_emulate"
    module = out / f"attention_emu{sysconfig.get_config_var('EXT_SUFFIX')}"
    _compile([[cxx, *SANITIZE, *map(str, san_objs), "-o", str(exe)],
              [cxx, "-shared", *map(str, glue_objs), "-o", str(module)]], out)
    return exe, out


def _check_run(cmd, **kw):
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT, **kw)
    report = _tail(done.stdout) + ("\n" + _tail(done.stderr) if done.stderr.strip() else "")
    assert done.returncode == 0, f"exit status {done.returncode}\n{report}"
    assert " 0 failures" in done.stdout, report


@pytest.mark.parametrize("args", [
    [],
    ["random", "150", "--seed", "11"],
    ["--schedule", "warp-reversed", "--copies", "issue", "--seed", "3"],
    ["--schedule", "warp", "--every", "2", "--seed", "5"],
], ids=["listed", "random", "warps-reversed-copies-at-issue", "warp-by-warp"])
def test_attention_kernels_on_the_host(built, args):
    exe, _ = built
    _check_run([str(exe), *args], env=RUN_ENV)


def test_cuda_backend_attention_glue_on_the_host(built):
    _, out = built
    _check_run([sys.executable, str(EMU / "attention_emu_backend.py"), str(out)])


def test_source_rewriting_refuses_what_it_cannot_emulate():
    """A PTX wrapper the emulation lacks, or a launch the rewriting misses, stops the build
    instead of leaving device code untested."""
    header = (ROOT / "kernels" / "common" / "mma_sync.cuh").read_text()
    attention_emu_sources.rewrite_mma_sync(header, "mma_sync.cuh")
    fence = '__device__ __forceinline__ void fence_proxy() { asm volatile("fence.proxy.async;"); }'
    extra = header.replace("namespace pydl::cuda::mma {", "namespace pydl::cuda::mma {\n" + fence, 1)
    with pytest.raises(ValueError, match="fence_proxy is PTX"):
        attention_emu_sources.rewrite_mma_sync(extra, "mma_sync.cuh")
    kernel = (ROOT / "kernels" / "attention" / "attention_simt.cu").read_text()
    assert "<<<" not in attention_emu_sources.rewrite_kernel(kernel, "attention_simt.cu")
    with pytest.raises(ValueError, match="misses"):
        attention_emu_sources.rewrite_kernel(kernel + '\nvoid f() { asm("trap;"); }\n',
                                             "attention_simt.cu")
