#!/usr/bin/env bash
# The GPU path in one run: install from the carried wheels (no network), print the device, then
# each step under its own time budget — the GPU tests, torch-on-device parity with the CPU,
# `agecast bench` at 1080p30 with 1, 4 and 8 generated cameras (frame→packet p50/p95/p99, drops,
# copies per frame, GPU memory), NVENC vs libx264, CUDA graphs on vs off, fp16 vs fp32, the demo
# identity and a 224-px model, 8 cameras with their faces batched into one call, the same bench
# on the CPU, every copy CUDA records, faces per call 1/4/8, and a short
# `agecast train` (steps/s). A summary JSON is written whatever fails.
#
#   bash bench/gpu/run.sh            on the GPU machine (python3 = the image's; ≤ 8 minutes)
#   bash bench/gpu/run.sh --dry      here, on the CPU, tiny sizes (CI: tests/bench_gpu)
#   options: --out DIR (default $OUT, else out/gpu-kit)   --budget SECONDS (whole run)
#            --wheels (with --dry: install bench/gpu/wheels first, as the GPU run does; a
#            rehearsal in an environment holding only the image's packages)
#
# In $OUT: summary.json (every result, the steps' exit codes and times, the goals checked),
# results.tar.gz (each result as its own JSON, for bench/results/), run.log.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
root=$PWD

dry=0
wheels=0
out=${OUT:-out/gpu-kit}
budget=""
while [ $# -gt 0 ]; do
  case "$1" in
    --dry) dry=1; shift ;;
    --wheels) wheels=1; shift ;;
    --out) out=$2; shift 2 ;;
    --budget) budget=$2; shift 2 ;;
    *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done

mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/gpukit.XXXXXX")
res=$work/results
mkdir -p "$res"
exec > >(tee "$out/run.log") 2>&1
tee_pid=$!
started=$(date +%s)
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
export GPUKIT_COMMIT=${GPUKIT_COMMIT:-$(git describe --always --dirty --abbrev=12 2>/dev/null || echo unknown)}
export AGECAST_STATE_DIR=$work/state XDG_STATE_HOME=$work/state

if [ "$dry" = 1 ]; then
  mode=cpu-dry
  py=${PYTHON:-$root/.venv/bin/python}
  budget=${budget:-170}
  export OMP_NUM_THREADS=1
  res_wh=320x180 seconds=1 warmup=0.5 cams_many=3 cams_mid=2 dims=8 size=64
  train_size=64 train_steps=4 train_batch=2 face_frames=8 repeats=2 train_dims=8
  tests_budget=60 bench_budget=40
else
  mode=gpu
  py=${PYTHON:-python3}
  budget=${budget:-450}
  res_wh=1920x1080 seconds=5 warmup=3 cams_many=8 cams_mid=4 dims=64 size=224
  train_size=128 train_steps=300 train_batch=16 face_frames=40 repeats=20 train_dims=32
  tests_budget=100 bench_budget=45
fi
export PYTHONPATH=$root/server${PYTHONPATH:+:$PYTHONPATH}

# one step: its name, its time budget (seconds), its command; the exit code and time go to
# steps.jsonl. A step that cannot have its budget before the run's end gets what is left (less
# a reserve for the summary), or is skipped when too little is left.
step() {
  local name=$1 want=$2 rc note="" t0 t1 ms left give
  shift 2
  left=$((budget - ($(date +%s) - started) - 15))
  give=$((want < left ? want : left))
  t0=$(date +%s%N)
  if [ "$give" -lt 5 ]; then
    rc=-1 note="skipped: the run's ${budget}s budget is spent"
    echo "==> $name: $note"
  else
    echo "==> $name (budget ${give}s): $*"
    timeout -k 5 "$give" "$@"
    rc=$?
    [ "$rc" = 124 ] || [ "$rc" = 137 ] && note="timed out after ${give}s"
  fi
  t1=$(date +%s%N)
  ms=$(((t1 - t0) / 1000000))
  printf '{"name": "%s", "rc": %s, "seconds": %d.%03d, "budget_s": %s, "note": "%s", "argv": %s}\n' \
    "$name" "$rc" $((ms / 1000)) $((ms % 1000)) "$give" "$note" \
    "$("$py" -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@" 2>/dev/null || echo '[]')" \
    >>"$res/steps.jsonl"
  return 0
}

# skipped with a reason, recorded like a step (a comparison that cannot run here is not a number)
skip() {
  printf '{"name": "%s", "rc": null, "seconds": 0, "budget_s": 0, "note": "skipped: %s", "argv": []}\n' \
    "$1" "$2" >>"$res/steps.jsonl"
  echo "==> $1: skipped: $2"
}

# shellcheck disable=SC2317  # run by the EXIT trap
finish() {
  "$py" bench/gpu/steps.py summary --results "$res" --json "$out/summary.json" --mode "$mode" ||
    echo "run.sh: the summary failed: the results are in results.tar.gz" >&2
  tar -C "$res" -czf "$out/results.tar.gz" .
  echo "==> done in $(($(date +%s) - started)) s: $out/summary.json, $out/results.tar.gz"
  rm -rf "$work"
  exec >&- 2>&-
  wait "$tee_pid" 2>/dev/null || true # run.log complete before the run returns
}
trap finish EXIT

echo "==> agecast GPU kit ($mode), commit $GPUKIT_COMMIT, $(date -u +%FT%TZ)"
if [ "$dry" = 0 ] || [ "$wheels" = 1 ]; then
  wheel_dir=${GPUKIT_WHEELS:-bench/gpu/wheels}
  if ls "$wheel_dir"/*.whl >/dev/null 2>&1; then
    step install-wheels 90 "$py" -m pip install -q --no-index --no-deps --no-compile \
      --no-cache-dir --target "$work/site" "$wheel_dir"/*.whl
    export PYTHONPATH=$PYTHONPATH:$work/site
  else
    skip install-wheels "no bench/gpu/wheels/*.whl: run bench/gpu/wheelhouse.sh here and carry it"
  fi
fi
[ "$dry" = 0 ] && { nvidia-smi || true; }
step device 60 "$py" bench/gpu/steps.py device --json "$res/device.json"
"$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
  torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")' || true

step tests-gpu "$tests_budget" "$py" -m pytest -m gpu -q -p no:cacheprovider -o addopts="" \
  --junitxml "$res/pytest-gpu.xml" tests/compose tests/pipeline tests/media tests/inference \
  tests/faces tests/bench_gpu

df=$work/models/df$size
step model-df$size 90 "$py" bench/gpu/steps.py model224 --out "$df" --size "$size" --dims "$dims" \
  --json "$res/model-df$size.json"
step parity 90 "$py" bench/gpu/steps.py parity --json "$res/parity.json" \
  --identity "$df" --identity models/demo-aged

# agecast bench: generated 1080p30 cameras, live (paced, drops counted), each output encoded
bench() {
  local name=$1
  shift
  step "$name" "$bench_budget" "$py" -m agecast.cli bench --live --seconds "$seconds" \
    --warmup "$warmup" --resolution "$res_wh" --fps 30 --json "$res/$name.json" "$@"
}
gpu_backend=(--backend torch)
bench bench-1cam-df$size --identity "$df" "${gpu_backend[@]}" --encoder nvenc
bench bench-1cam-df$size-libx264 --identity "$df" "${gpu_backend[@]}" --encoder libx264
bench bench-1cam-df$size-nographs --identity "$df" "${gpu_backend[@]}" --no-cuda-graphs
if [ "$dry" = 0 ]; then
  bench bench-1cam-df$size-fp32 --identity "$df" "${gpu_backend[@]}" --precision fp32
else
  skip bench-1cam-df$size-fp32 "fp16 runs on CUDA only: fp16 vs fp32 needs the GPU"
fi
bench bench-1cam-df$size-aged-only --identity "$df" "${gpu_backend[@]}" --layout aged
bench bench-1cam-demo-aged --identity demo-aged "${gpu_backend[@]}"
bench bench-${cams_mid}cam-df$size --identity "$df" "${gpu_backend[@]}" --cameras "$cams_mid"
bench bench-${cams_many}cam-df$size --identity "$df" "${gpu_backend[@]}" --cameras "$cams_many"
bench bench-${cams_many}cam-df$size-batched --identity "$df" "${gpu_backend[@]}" \
  --cameras "$cams_many" --batch-faces
bench bench-1cam-df$size-cpu --identity "$df" --backend onnxruntime --device cpu --encoder libx264

step copies 45 "$py" bench/gpu/steps.py copies --json "$res/copies.json" --identity "$df" \
  --resolution "$res_wh" --seconds "$seconds" --warmup "$warmup"
step batching 60 "$py" bench/gpu/steps.py batching --json "$res/batching.json" \
  --identity "$df" --identity models/demo-aged --repeats "$repeats"

fs=$work/faceset
step faceset 60 "$py" -m agecast.cli faceset extract --source demo --out "$fs" \
  --size "$train_size" --limit "$face_frames" --min-sharpness 0 --backend torch
step train 90 "$py" -m agecast.cli train --src "$fs" --dst "$fs" --out "$work/run" \
  --resolution "$train_size" --steps "$train_steps" --batch "$train_batch" \
  --encoder-dims "$train_dims" --decoder-dims "$train_dims" \
  --preview-every 100000 --save-every 100000 --minutes 0.5
[ -f "$work/run/run.json" ] &&
  step train-rate 20 "$py" bench/gpu/steps.py train-rate "$work/run" --json "$res/train.json"
exit 0
