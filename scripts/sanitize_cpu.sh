#!/usr/bin/env bash
# Build pydl._C (CPU only) with AddressSanitizer + UndefinedBehaviorSanitizer and run the
# C++ kernel tests against it. Exits nonzero on a test failure or on any sanitizer report.
#
#   scripts/sanitize_cpu.sh [pytest args...]     (default: the CPU kernel test files below)
#
# - The build goes to build/asan; the tests run on a temporary copy of pydl/ and tests/
#   holding the sanitized module, so pydl/_C*.so in the tree is left alone.
# - Python is not built with ASan, so the runtimes are preloaded (LD_PRELOAD) from gcc.
# - detect_leaks=0: CPython keeps its interned objects and arenas alive at exit by design.
# - allocator_may_return_null=1: an absurd request (the bad-input table asks for TiBs) gets
#   NULL, which NumPy turns into MemoryError, instead of ASan aborting the process.
# - OMP_NUM_THREADS=2: the OpenMP kernels still run their parallel paths (ASan handles
#   libgomp's threads); more threads only slow the run on a small machine.
# - Reports go to log files (log_path), so one from a subprocess (tests/test_bad_input.py
#   runs its cases in a worker) fails the run as well; they are printed at the end.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$ROOT/build/asan"
JOBS="${JOBS:-$(nproc)}"

cmake -S "$ROOT" -B "$BUILD" -DPYDL_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
      -DPYDL_SANITIZE=address,undefined \
      -Dpybind11_DIR="$(python -m pybind11 --cmakedir)" >/dev/null
cmake --build "$BUILD" -j "$JOBS"

ASAN_LIB="$(gcc -print-file-name=libasan.so)"
UBSAN_LIB="$(gcc -print-file-name=libubsan.so)"
for lib in "$ASAN_LIB" "$UBSAN_LIB"; do
  [[ -e "$lib" ]] || { echo "sanitize_cpu: $lib not found (gcc's sanitizer runtimes)" >&2; exit 2; }
done

WORK="$(mktemp -d "${TMPDIR:-/tmp}/pydl-asan.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/logs"
cp -r "$ROOT/pydl" "$ROOT/tests" "$ROOT/pyproject.toml" "$WORK/"
find "$WORK" -name '__pycache__' -prune -exec rm -rf {} +
rm -f "$WORK"/pydl/_C*.so
cp "$BUILD"/_C*.so "$WORK/pydl/"

if [[ $# -eq 0 ]]; then
  set -- tests/test_cpu_kernels.py tests/test_conv.py tests/test_attention.py tests/test_pool.py \
         tests/test_errors.py tests/test_bad_input.py tests/test_properties.py \
         tests/test_functional.py tests/test_ops_interop.py tests/test_out_of_memory.py \
         tests/test_conv_kernels.py tests/test_cpu_isa.py
fi

# An editable install of pydl (pip install -e, as CI does) redirects `import pydl` through a
# finder on sys.meta_path that outranks PYTHONPATH; this sitecustomize, run after the .pth
# files, drops such finders so that the copy in $WORK is the pydl imported.
cat > "$WORK/sitecustomize.py" <<'PY'
import sys

sys.meta_path[:] = [f for f in sys.meta_path
                    if not type(f).__module__.startswith("_editable") or
                    getattr(f, "find_spec", lambda *a: None)("pydl", None) is None]
PY

cd "$WORK"
export PYTHONPATH="$WORK${PYTHONPATH:+:$PYTHONPATH}"
export LD_PRELOAD="$ASAN_LIB $UBSAN_LIB${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:halt_on_error=1:abort_on_error=1:log_path=$WORK/logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$WORK/logs/ubsan"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"

# The sanitized module must be the one imported (not an installed or in-tree pydl).
python -c "import pydl._C as c, sys; f = c.__file__; sys.exit(0 if f.startswith('$WORK') else f'sanitize_cpu: imported {f}, not the sanitized build')"

# Canary: an overflow through an intercepted memset must be reported to a log file and
# abort, or this run would prove nothing.
if (python -c "import ctypes; libc = ctypes.CDLL(None); libc.malloc.restype = ctypes.c_void_p
ctypes.memset(libc.malloc(8), 0, 64)") >/dev/null 2>&1 || ! grep -qs "ERROR: AddressSanitizer" "$WORK"/logs/asan*; then
  echo "sanitize_cpu: the ASan runtime did not report a planted overflow" >&2
  exit 2
fi
rm -f "$WORK"/logs/*

status=0
python -m pytest -q -p no:cacheprovider "$@" || status=$?

# Reports, not warnings (ASan warns of each refused allocation it turned into NULL).
if grep -qE "ERROR: |runtime error:" "$WORK"/logs/* 2>/dev/null; then
  echo "sanitize_cpu: sanitizer reports:" >&2
  cat "$WORK"/logs/* >&2
  status=1
fi
if [[ $status -eq 0 ]]; then echo "sanitize_cpu: clean"; fi
exit $status
