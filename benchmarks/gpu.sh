#!/usr/bin/env bash
# Every GPU benchmark of mer-cache in one run, on CUDA device $GPU (default 0):
#  - extraction of vggface2-resnet50 (random weights) in bf16 and fp16, swept over batch
#    sizes ($BATCHES) and DataLoader workers ($WORKERS): extract_throughput.py;
#  - JPEG decoding on the GPU (torchvision.io.decode_jpeg(device="cuda")) against the CPU
#    DataLoader path, each with the trunk's forward pass: gpu_decode.py;
#  - head training, both workloads, on the GPU: heads_speed.py;
#  - cached vs end-to-end training (that script runs on the CPU): cached_vs_end_to_end.py;
# then one JSON (gpu.json) and one markdown table (gpu.md) from gpu_report.py, all in
# $OUT (default benchmarks/results/gpu-<date>).
#
#   benchmarks/gpu.sh                      # on a CUDA machine
#   DRY_RUN=1 benchmarks/gpu.sh            # on any CPU: tiny sizes, checks the scripts run
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
GPU=${GPU:-0}
OUT=${OUT:-benchmarks/results/gpu-$(date +%Y%m%d-%H%M%S)}
export MER_BENCH_RESULTS=$OUT
mkdir -p "$OUT"
if [[ -n "${DRY_RUN:-}" ]]; then
  BATCHES=${BATCHES:-4}; WORKERS=${WORKERS:-0}
  XT=(--trunk tiny-cnn --clips 2 --frames-per-clip 6 --repeats 1)
  DEC=(--device cpu --dry-run)
else
  BATCHES=${BATCHES:-"64 128 256 512"}; WORKERS=${WORKERS:-"4 8 16"}
  XT=(--trunk vggface2-resnet50 --gpu "$GPU" --clips 64 --frames-per-clip 64 --repeats 1)
  DEC=(--device "cuda:$GPU" --trunk vggface2-resnet50 --clips 64 --frames-per-clip 64)
fi
for amp in bf16 fp16; do
  for b in $BATCHES; do
    for w in $WORKERS; do
      $PY benchmarks/extract_throughput.py "${XT[@]}" --weights random --amp $amp \
          --batch-size "$b" --workers "$w" --tag "${amp}_b${b}_w${w}"
    done
    $PY benchmarks/gpu_decode.py "${DEC[@]}" --amp $amp --batch-size "$b" \
        --workers "${WORKERS##* }" --tag "${amp}_b${b}"
  done
done
if [[ -z "${DRY_RUN:-}" ]]; then
  $PY benchmarks/heads_speed.py --device "cuda:$GPU" --precision bf16 --paper-epochs 20
  $PY benchmarks/cached_vs_end_to_end.py --trunk vggface2-resnet50 --weights random \
      --subjects 2 --clips-per-class 1 --epochs 5 --e2e-batches 1
fi
$PY benchmarks/gpu_report.py --results "$OUT"
