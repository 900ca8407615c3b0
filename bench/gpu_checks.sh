#!/usr/bin/env bash
# The GPU checks of the trainer and the quality benchmark, as one prepared run on a CUDA machine:
#   1. training throughput, resnet32x4 -> resnet8x4, CIFAR-shaped data on the GPU, bf16 + channels_last
#      (images/s, VRM vs KD, engine vs a hand-written loop, projected 240-epoch time);
#   2. the relation core on the GPU (vrm_loss vs the materialising implementation);
#   3. a small quality benchmark (digits) on the GPU, to compare with the same command on the CPU.
# Usage (repository root): OUT=/some/dir bash bench/gpu_checks.sh
# Needs torch with CUDA and the project's dependencies; wheels placed in .whl/ are installed first.
set -u
OUT=${OUT:-/tmp/vrm_gpu_checks}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD"
fi
{
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, kornia; print('torch', torch.__version__, 'kornia', kornia.__version__, torch.cuda.get_device_name(0))"
} 2>&1 | tee "$OUT/gpu.txt"

timeout 120 python3 -m bench.throughput --device cuda --teacher resnet32x4 --student resnet8x4 --amp bf16 \
    --channels-last --steps 40 --repeats 7 --section throughput_gpu 2>&1 | tee "$OUT/throughput.log"
cp docs/benchmarks.md "$OUT/benchmarks.md"

timeout 280 python3 -m bench.quality --dataset digits --teacher-per-class 110 --teacher-epochs 30 \
    --per-class 90 --val-per-class 20 --epochs 15 --seeds 0 1 2 --no-sweep --jobs 8 \
    --out /tmp/quality_digits_gpu --section quality_digits_gpu 2>&1 | grep -v "it/s" | tee "$OUT/quality.log"
cp docs/benchmarks.md "$OUT/benchmarks.md"
cp /tmp/quality_digits_gpu/runs.csv "$OUT/quality_runs.csv" 2>/dev/null
# every run's per-epoch metrics (grad_norm_max shows where a run blew up; see docs/benchmarks.md, "open problem")
(cd /tmp/quality_digits_gpu && find . -name metrics.csv | tar czf "$OUT/quality_metrics.tgz" -T -) 2>/dev/null

timeout 80 python3 -m bench.relations --device cuda 2>&1 | tee "$OUT/relations.log"
cp docs/benchmarks.md "$OUT/benchmarks.md"
