#!/usr/bin/env bash
# The GPU checks, as one prepared run of at most 8 minutes on a CUDA machine (issue 9, §5):
#   1. duplicated images: for each image whose virtual view equals its real view, are the student's and
#      the teacher's logits of the two copies bit-identical on this GPU? With and without TF32, fp32 and
#      bf16 (bench/view_duplicates.py; the cause of the undefined-edge rule, spec §2.4);
#   2. the digits quality command (3 seeds, the baselines and every VRM ablation) with the rule: how many
#      runs collapse (expected 0; 4 of 12 ablation runs did before the rule) and the gap to the CPU table
#      (the rows of that table only: the feature/contrastive/LS rows added later do not fit in 240 s);
#   3. where the GPU time goes: the relation core at B = 64, C = 100 (shipped dense path, Gram path,
#      torch.compile, one CUDA graph, against the materialising code) and the engine's KD step against a
#      hand-written loop with the profiler's table of the extra time (bench/gpu_profile.py);
#   4. training throughput, resnet32x4 -> resnet8x4, bf16 + channels_last (3 repeats).
# Budget (timeouts): 10 + 60 + 240 + 5 + 90 + 60 s = 465 s. bench.relations at B = 256, C = 1000 is left
# out to stay within 8 minutes (run it alone: python -m bench.relations --device cuda).
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

# 1. duplicated views: exact equality of the two copies' logits, per image and setting
timeout 60 python3 -m bench.view_duplicates --device cuda --batches 8 --out "$OUT/view_duplicates.csv" \
    2>&1 | tee "$OUT/view_duplicates.log"

# 2. digits quality with the rule; every run's metrics kept (undefined_edges, view gaps, grad_norm_max)
timeout 240 python3 -m bench.quality --dataset digits --teacher-per-class 110 --teacher-epochs 30 \
    --per-class 90 --val-per-class 20 --epochs 15 --seeds 0 1 2 --no-sweep --jobs 8 \
    --only student_alone kd dkd dist rkd sp pkt cc vrm vrm_no_virtual vrm_no_rep vrm_no_uep vrm_no_ic \
    vrm_delta2_cosine vrm_huber_delta1 vrm_no_zscore \
    --out /tmp/quality_digits_gpu --section quality_digits_gpu 2>&1 | grep -v "it/s" | tee "$OUT/quality.log"
cp docs/benchmarks.md "$OUT/benchmarks.md"
cp /tmp/quality_digits_gpu/runs.csv "$OUT/quality_runs.csv" 2>/dev/null
(cd /tmp/quality_digits_gpu && find . -name metrics.csv | tar czf "$OUT/quality_metrics.tgz" -T -) 2>/dev/null
timeout 5 python3 - "$OUT/quality_runs.csv" <<'EOF' 2>&1 | tee "$OUT/collapses.txt"
import sys
import pandas as pd
runs = pd.read_csv(sys.argv[1])
bad = runs[~(runs.last_test >= 50)]  # chance is 10 %; a collapsed run ends near it
vrm = runs[runs.label.str.startswith("vrm")]
print(f"collapsed runs (last test top-1 < 50 %): {len(bad)} of {len(runs)}; VRM runs: {len(bad[bad.label.str.startswith('vrm')])} of {len(vrm)}")
print(bad.to_string(index=False) if len(bad) else "none")
EOF

# 3. profiles: relation core variants and the KD step's extra time
timeout 90 python3 -m bench.gpu_profile --device cuda 2>&1 | tee "$OUT/gpu_profile.log"

# 4. throughput (updates the throughput_gpu section of docs/benchmarks.md)
timeout 60 python3 -m bench.throughput --device cuda --teacher resnet32x4 --student resnet8x4 --amp bf16 \
    --channels-last --steps 40 --repeats 3 --section throughput_gpu 2>&1 | tee "$OUT/throughput.log"
cp docs/benchmarks.md "$OUT/benchmarks.md"
