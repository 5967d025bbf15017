#!/usr/bin/env bash
# One command on a machine with an NVIDIA GPU and the dependencies installed
# (no network needed): build pydl in place, run the -m cuda tests, run the op and
# model benchmarks against PyTorch, and put everything under one folder.
#
#   bash benchmarks/gpu_suite.sh [OUT_DIR]        (default: benchmarks/results/gpu-<date>)
#
# PYDL_CUDA_ARCHITECTURES narrows the build (e.g. 90a-real on an H100) for speed;
# PYDL_TEST_ARGS, PYDL_BENCH_ARGS (bench ops, e.g. --quick or --suites attention,conv) and
# PYDL_MODELS_ARGS (bench models, e.g. --quick or --families mlp,resnet) pass through.
# PYDL_ZOO=1 also runs every recipe on the GPU against its bar (pydl zoo --device cuda);
# PYDL_SANITIZE=1 also runs scripts/sanitize_gpu.sh (compute-sanitizer's four tools).
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
export PYTHONUNBUFFERED=1

echo "== build"
rm -f pydl/_C*.so  # an in-place CPU build would shadow the one installed here
python3 -m pip install --no-build-isolation --no-deps -Cbuild-dir=build/gpu -e . >"$out/build.log" 2>&1 \
  || { tail -40 "$out/build.log"; echo "build failed"; exit 1; }
python3 -m pydl info | tee "$out/info.txt"

echo "== tests (-m cuda)"
timeout "${PYDL_TEST_TIMEOUT:-1800}" python3 -m pytest -m cuda -q -p no:cacheprovider -rfE \
  ${PYDL_TEST_ARGS:-} >"$out/tests.log" 2>&1
tests_rc=$?
tail -25 "$out/tests.log"

echo "== benchmarks"
python3 benchmarks/gemm_bench.py --out "$out/gemm_variants.json" >"$out/gemm_variants.log" 2>&1 \
  || tail -20 "$out/gemm_variants.log"
# All op suites (gemm, rowops, attention, conv), then the ten model families, into one
# results folder: results.json and report.md hold both.
python3 -m pydl bench ops --device cuda --out "$out" ${PYDL_BENCH_ARGS:-} >"$out/bench.log" 2>&1 \
  || tail -20 "$out/bench.log"
python3 -m pydl bench models --device cuda --out "$out" ${PYDL_MODELS_ARGS:-} >"$out/bench_models.log" 2>&1 \
  || tail -20 "$out/bench_models.log"
tail -80 "$out/report.md"

if [[ "${PYDL_ZOO:-0}" == 1 ]]; then
  echo "== zoo (--device cuda)"
  python3 -m pydl zoo --device cuda --out "$out/zoo" >"$out/zoo.log" 2>&1
  tests_rc=$(( tests_rc || $? ))
  tail -30 "$out/zoo.log"
fi
if [[ "${PYDL_SANITIZE:-0}" == 1 ]]; then
  echo "== compute-sanitizer"
  bash scripts/sanitize_gpu.sh "$out/sanitizer"
  tests_rc=$(( tests_rc || $? ))
fi
exit $tests_rc
