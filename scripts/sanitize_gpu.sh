#!/usr/bin/env bash
# Run the CUDA kernel tests (-m cuda) under NVIDIA compute-sanitizer: memcheck, racecheck,
# synccheck and initcheck, one pytest run per tool. Exits nonzero on a test failure or on any
# sanitizer report.
#
#   scripts/sanitize_gpu.sh LOG_DIR [pytest args...]
#
#   LOG_DIR          gets <tool>.<pid>.log (the sanitizer's reports, one file per process)
#                    and <tool>.pytest.log (the test output) for each tool
#   pytest args      default: the test files with CUDA kernel tests (see TESTS below)
#   SANITIZER_TOOLS  env, default "memcheck racecheck synccheck initcheck"
#   COMPUTE_SANITIZER env, the executable (default: compute-sanitizer on PATH, else
#                    $CUDA_HOME/bin/compute-sanitizer)
#
# Needs a GPU and pydl built with its CUDA kernels (pip install -e . or the in-tree build);
# the build's -lineinfo lets the reports name source lines.
#
# Choices:
# - CuPy's memory pool is switched off for the run (cupy.cuda.set_allocator(None), from a
#   pytest plugin written below; CuPy has no environment variable for it): with the pool,
#   each array is a slice of a larger cached block, so memcheck cannot see an access past
#   the end of an array and initcheck takes bytes written by an earlier test as
#   initialised. Without it every array is its own cudaMalloc, checked exactly.
#   PyTorch's caching allocator likewise (PYTORCH_NO_CUDA_MEMORY_CACHING=1).
# - --target-processes all: pytest may start subprocesses; they are checked too.
# - --report-api-errors no: CuPy, Numba and PyTorch probe the driver with calls that fail
#   by design (cuGetProcAddress, attribute queries); those would count as errors. pydl's
#   launchers check every launch and raise, so a failed launch still fails its test.
# - --launch-timeout 0: importing CuPy, Numba and torch can take longer than the default
#   wait for the process to connect.
set -uo pipefail

if [[ $# -lt 1 ]]; then
  echo "usage: $0 LOG_DIR [pytest args...]" >&2
  exit 2
fi
LOG_DIR="$1"; shift
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
TOOLS="${SANITIZER_TOOLS:-memcheck racecheck synccheck initcheck}"
SAN="${COMPUTE_SANITIZER:-$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")}"
TESTS=(tests/test_cuda_rowops.py tests/test_cuda_gemm.py tests/test_numba_kernels.py
       tests/test_cuda_attention_fused.py tests/test_cuda_conv_attn.py tests/test_cuda_conv_fused.py
       tests/test_conv.py tests/test_attention.py tests/test_pool.py tests/test_ops_interop.py)
if [[ $# -gt 0 ]]; then TESTS=("$@"); fi

if [[ ! -x "$SAN" ]]; then
  echo "sanitize_gpu: compute-sanitizer not found (set COMPUTE_SANITIZER)" >&2
  exit 2
fi
mkdir -p "$LOG_DIR"
LOG_DIR="$(cd "$LOG_DIR" && pwd)"
cd "$ROOT"
if ! python -c "import sys, pydl; sys.exit(0 if pydl.cuda.is_available() else 1)"; then
  echo "sanitize_gpu: no usable GPU, or pydl was built without CUDA kernels" >&2
  exit 2
fi

PLUGIN_DIR="$(mktemp -d "${TMPDIR:-/tmp}/pydl-cusan.XXXXXX")"
trap 'rm -rf "$PLUGIN_DIR"' EXIT
cat > "$PLUGIN_DIR/pydl_no_memory_pool.py" <<'PY'
"""Loaded with -p: every CuPy array its own cudaMalloc, so the sanitizers check it exactly."""
try:
    import cupy
except ImportError:
    cupy = None
if cupy is not None:
    cupy.cuda.set_allocator(None)
    cupy.cuda.set_pinned_memory_allocator(None)
PY
export PYTHONPATH="$PLUGIN_DIR${PYTHONPATH:+:$PYTHONPATH}"
export PYTORCH_NO_CUDA_MEMORY_CACHING=1
unset NUMBA_ENABLE_CUDASIM

status=0
for tool in $TOOLS; do
  case "$tool" in memcheck|racecheck|synccheck|initcheck) ;;
    *) echo "sanitize_gpu: unknown tool $tool" >&2; exit 2 ;;
  esac
  rm -f "$LOG_DIR/$tool".*.log
  echo "== $tool"
  extra=()
  [[ "$tool" == racecheck ]] && extra=(--racecheck-report all)
  "$SAN" --tool "$tool" "${extra[@]}" --target-processes all --error-exitcode 1 \
         --report-api-errors no --launch-timeout 0 --print-limit 100 \
         --log-file "$LOG_DIR/$tool.%p.log" \
         python -m pytest -m cuda -q -p no:cacheprovider -p pydl_no_memory_pool "${TESTS[@]}" \
         2>&1 | tee "$LOG_DIR/$tool.pytest.log"
  rc=${PIPESTATUS[0]}
  # The summaries, in case an exit status was lost on the way (a subprocess, a crash).
  reports=$(grep -hE "(ERROR SUMMARY|RACECHECK SUMMARY): [1-9]" "$LOG_DIR/$tool".[0-9]*.log 2>/dev/null)
  if [[ $rc -ne 0 || -n "$reports" ]]; then
    echo "sanitize_gpu: $tool failed (exit status $rc)${reports:+; $reports}" >&2
    status=1
  fi
done
if [[ $status -eq 0 ]]; then echo "sanitize_gpu: clean ($TOOLS); logs in $LOG_DIR"; fi
exit $status
