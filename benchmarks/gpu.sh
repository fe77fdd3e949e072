#!/usr/bin/env bash
# The README's GPU figures, on a machine with a CUDA GPU:
#
#   bash benchmarks/gpu.sh [KERMANY_DIR] [RESULTS_DIR]
#
# 0. With KERMANY_DIR (e.g. ../shared/data/kermany-224): register it and prepare it at 224 px
#    with configs/kermany-gpu.yaml, so that the benchmarks read real cached images.
# bench (part 1): benchmarks/train_throughput.py, densenet121 at 224 px, eager then --compile:
#    end-to-end training vs the bare step on in-memory tensors and their ratio (target >= 0.85);
#    the eager run also profiles a few steps (operator table, share of time the GPU was busy).
# recipe (part 2, needs KERMANY_DIR): configs/kermany-gpu.yaml end to end: train, evaluate on
#    val and on the held-out test split, and the test evaluation again with the GPU hidden, to
#    show that the probabilities agree; run folder and evaluations packed in kermany-gpu.tar.gz.
#
# PARTS="bench recipe" (the default) picks the parts. On an H100 (2026-11-26) the bench part
# took about 4.5 min and the recipe about 5.5 min, so run them as separate calls where a call
# is limited to 10 minutes. Each step has a time limit (seconds, variables below) and a failed
# step does not stop the next; everything is logged to RESULTS_DIR/log.txt. PNEUMO_ROOT
# defaults to a fresh temporary folder, so nothing of an existing root is touched. OVERRIDES
# (dotted config overrides for prepare, train and evaluate) and BENCH_ARGS (extra benchmark
# arguments) shrink it for a dry run on a CPU, e.g.
#   OVERRIDES="prepare.image_size=64 train.backbone=resnet18 train.epochs=1" \
#   BENCH_ARGS="--steps 4 --rounds 1" bash benchmarks/gpu.sh ../shared/data/kermany-224
set -uo pipefail

data=${1:-}
results=${2:-gpu-results}
mkdir -p "$results"
results=$(cd "$results" && pwd)
export PNEUMO_ROOT=${PNEUMO_ROOT:-$(mktemp -d)/pneumo-root}
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
log="$results/log.txt"
parts=" ${PARTS:-bench recipe} "
: "${EAGER_S:=200}" "${COMPILE_S:=240}" "${RECIPE_S:=300}"
read -r -a overrides <<<"${OVERRIDES:-}"
read -r -a bench_args <<<"${BENCH_ARGS:-}"

step() {  # step NAME SECONDS COMMAND...: run with a limit, log it, never stop the script
  local name=$1 limit=$2 started rc
  shift 2
  started=$(date +%s)
  echo "=== $name (limit ${limit}s): $*" | tee -a "$log"
  timeout "$limit" "$@" 2>&1 | tee -a "$log"
  rc=${PIPESTATUS[0]}
  echo "=== $name: exit $rc after $(($(date +%s) - started))s" | tee -a "$log"
  return "$rc"
}

step environment 60 "$python" -c "import torch, sys; print(sys.version.split()[0], 'torch', \
torch.__version__, 'cuda', torch.version.cuda, torch.cuda.is_available() and \
torch.cuda.get_device_name(0))"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv >>"$log" 2>&1

dataset=()
if [ -n "$data" ]; then
  step fetch 60 "$python" -m pneumo fetch local "$data" --name kermany-gpu &&
    step prepare 180 "$python" -m pneumo prepare -c configs/kermany-gpu.yaml "${overrides[@]}" &&
    dataset=(--dataset kermany-gpu)
fi

if [[ $parts == *" bench "* ]]; then
  step throughput-eager "$EAGER_S" "$python" benchmarks/train_throughput.py "${dataset[@]}" \
    "${bench_args[@]}" --profile "$PNEUMO_ROOT/profile" --json "$results/throughput-eager.json"
  step throughput-compile "$COMPILE_S" "$python" benchmarks/train_throughput.py \
    "${dataset[@]}" "${bench_args[@]}" --compile --json "$results/throughput-compile.json"
fi

if [[ $parts == *" recipe "* ]] && [ ${#dataset[@]} -gt 0 ]; then
  run_root="$PNEUMO_ROOT"
  recipe=(-c configs/kermany-gpu.yaml "${overrides[@]}")
  if step train "$RECIPE_S" "$python" -m pneumo train "${recipe[@]}"; then
    step evaluate-val 120 "$python" -m pneumo evaluate last "${recipe[@]}" \
      --split val --out "$run_root/evaluation-val"
    step evaluate-test 120 "$python" -m pneumo evaluate last "${recipe[@]}" \
      --out "$run_root/evaluation-test"
    # The same evaluation with the GPU hidden: evaluation runs in float32 without TF32, so the
    # probabilities must agree with the CPU's (and so with the float32 ONNX model served).
    CUDA_VISIBLE_DEVICES="" step evaluate-test-cpu 180 "$python" -m pneumo evaluate last \
      "${recipe[@]}" --out "$run_root/evaluation-test-cpu" &&
      step gpu-vs-cpu 30 "$python" -c "import pandas as pd, json, sys; r = sys.argv[1]; \
g, c = (pd.read_parquet(f'{r}/evaluation-test{s}/predictions.parquet') for s in ('', '-cpu')); \
m = [json.load(open(f'{r}/evaluation-test{s}/metrics.json')) for s in ('', '-cpu')]; \
print('images', len(g), 'max |p_gpu - p_cpu|', float((g.probability - c.probability).abs().max()), \
'AUROC gpu', m[0]['auroc']['value'], 'cpu', m[1]['auroc']['value'])" "$run_root"
  fi
  tar -czf "$results/kermany-gpu.tar.gz" -C "$run_root" --exclude='*.pt' --exclude='*.npy' \
    --exclude='mlartifacts' --exclude='data' --exclude='profile' . 2>>"$log"
fi

echo "=== summary" | tee -a "$log"
grep -h -E "^(=== .*exit|ratio|bare step|end-to-end|round|.*ms/step|images [0-9])" "$log" |
  tee "$results/summary.txt"
