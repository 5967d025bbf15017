#!/usr/bin/env bash
# The GPU checks of the fused attention and convolution kernels as one command that ends within
# a fixed time: build pydl for the GPU in hand, run those kernels' -m cuda tests, run a sample of
# them under compute-sanitizer's memcheck, then time the attention and convolution suites
# against PyTorch. Each step is cut off at its share of the budget, so a slow step costs its
# own results, not the later steps'. benchmarks/gpu_suite.sh is the full run (every test, every
# suite, the model families) for when time is not short.
#
#   bash scripts/gpu_check.sh OUT_DIR
#
# OUT_DIR gets build.log, info.txt, tests.log, memcheck/ and bench/ (results.json, report.md),
# and a tarball of it all (GPU_CHECK_TAR, default OUT_DIR.tar.gz) is rewritten after every
# step, so a run stopped from outside still leaves what it had. Shares of the budget, in
# seconds (environment):
#   GPU_CHECK_BUILD 180, GPU_CHECK_TESTS 150, GPU_CHECK_MEMCHECK 45,
#   GPU_CHECK_BENCH_ATTENTION 45, GPU_CHECK_BENCH_CONV 60
# (8 minutes if every step takes its whole share; the build takes about a minute on 16
# cores). The benchmarks start no case past their share (`pydl bench ops --max-minutes`) and
# then write what they have, so a share is a little exceeded by the last case.
# PYDL_CUDA_ARCHITECTURES defaults to the GPU's own (90a-real on an H100/H200).
# Exits nonzero if the build, a test or the sanitizer failed.
set -uo pipefail
if [[ $# -ne 1 ]]; then
  echo "usage: $0 OUT_DIR" >&2
  exit 2
fi
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
mkdir -p "$1"
OUT="$(cd "$1" && pwd)"
cd "$ROOT"
export PYTHONUNBUFFERED=1
TAR="${GPU_CHECK_TAR:-$OUT.tar.gz}"
rc=0
pack() { tar -czf "$TAR" -C "$(dirname "$OUT")" "$(basename "$OUT")"; }
step() { pack; echo "== $1 ($(date +%T))"; }

cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d ' .')
case "$cap" in
  90) arch=90a-real ;;
  "") arch="80-real;90a-real" ;;
  *) arch="${cap}-real" ;;
esac
export PYDL_CUDA_ARCHITECTURES="${PYDL_CUDA_ARCHITECTURES:-$arch}"

step "build for ${PYDL_CUDA_ARCHITECTURES}"
rm -f pydl/_C*.so  # an in-place CPU build would shadow the one installed here
if ! PYDL_CUDA=ON CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" timeout "${GPU_CHECK_BUILD:-180}" \
    python3 -m pip install --no-build-isolation --no-deps -Cbuild-dir=build/gpu -e . \
    >"$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log"
  echo "build failed or ran past its share"
  pack
  exit 1
fi
python3 -m pydl info | tee "$OUT/info.txt"

FUSED=(tests/test_cuda_attention_fused.py tests/test_cuda_conv_fused.py tests/test_cuda_conv_attn.py)
step "tests (-m cuda) of the fused kernels"
timeout "${GPU_CHECK_TESTS:-150}" python3 -m pytest -m cuda -q -p no:cacheprovider -rfE \
  "${FUSED[@]}" >"$OUT/tests.log" 2>&1
t=$?
[[ $t == 124 ]] && echo "(cut off at ${GPU_CHECK_TESTS:-150} s)" >>"$OUT/tests.log"
tail -15 "$OUT/tests.log"
rc=$(( rc || t ))

step "memcheck on a sample"
SANITIZER_TOOLS=memcheck timeout "${GPU_CHECK_MEMCHECK:-45}" bash scripts/sanitize_gpu.sh \
  "$OUT/memcheck" tests/test_cuda_attention_fused.py tests/test_cuda_conv_fused.py -k \
  "test_every_row_masked or test_outputs_poisoned or test_resnet_layers or test_head_dims" \
  >"$OUT/memcheck.log" 2>&1
t=$?
[[ $t == 124 ]] && echo "(cut off at ${GPU_CHECK_MEMCHECK:-45} s)" >>"$OUT/memcheck.log"
tail -8 "$OUT/memcheck.log"
[[ $t != 124 ]] && rc=$(( rc || t ))

minutes() { python3 -c "print($1 / 60)"; }
step "attention suite (float16, bfloat16)"
python3 -m pydl bench ops --device cuda --suites attention --dtype float16,bfloat16 \
  --max-minutes "$(minutes "${GPU_CHECK_BENCH_ATTENTION:-45}")" --out "$OUT/bench" \
  >"$OUT/bench_attention.log" 2>&1 || tail -20 "$OUT/bench_attention.log"
for dt in float16 float32; do  # a run each, so float32 is reached whatever float16 takes
  step "convolution suite ($dt)"
  python3 -m pydl bench ops --device cuda --suites conv --dtype "$dt" \
    --max-minutes "$(minutes "${GPU_CHECK_BENCH_CONV:-60} / 2")" --out "$OUT/bench" \
    >"$OUT/bench_conv_$dt.log" 2>&1 || tail -20 "$OUT/bench_conv_$dt.log"
done
grep -h "^| \|stopped" "$OUT/bench/report.md" 2>/dev/null | tail -60

step "done"
exit $rc
