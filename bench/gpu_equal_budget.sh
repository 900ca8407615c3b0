#!/usr/bin/env bash
# The equal-budget table's top rows on one GPU, as one prepared run of at most 8 minutes (issue 11, §4):
# stage 2 of bench/equal_budget.py (every seed of the top methods, paired differences) at the configurations
# the CPU study chose on validation (--choices-from bench/results/equal_budget), with its own teacher and
# results folder, 8 runs at a time; no run starts after 6 minutes, so the section (equal_budget_gpu) is
# written from what finished, whatever that is. The small files of every finished run come back in
# $OUT/equal_budget_gpu.tgz; docs/benchmarks.md in $OUT.
# Usage (repository root): OUT=/some/dir bash bench/gpu_equal_budget.sh
# Needs torch with CUDA and the project's dependencies; wheels placed in .whl/ are installed first.
set -u
OUT=${OUT:-/tmp/vrm_gpu_equal_budget}
RES=/tmp/equal_budget_gpu
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
fi
nvidia-smi --query-gpu=name,memory.total --format=csv 2>&1 | tee "$OUT/gpu.txt"
timeout 450 python3 -m bench.equal_budget --jobs 8 --minutes 6 --out "$RES" --section equal_budget_gpu \
    --choices-from bench/results/equal_budget 2>&1 \
    | grep -v "it/s" | tee "$OUT/equal_budget.log"
cp docs/benchmarks.md "$OUT/benchmarks.md"
(cd "$RES" && find . \( -name config.yaml -o -name metrics.csv -o -name summary.json \) \
    | tar czf "$OUT/equal_budget_gpu.tgz" -T -) 2>/dev/null
