#!/usr/bin/env bash
# Every GPU measurement of the project in one run on a lent H100/H200, within 8 minutes, then
# one summary table (benchmarks/gpu_summary.py). From the repository root:
#
#   bash benchmarks/gpu.sh                 # on the GPU machine (logs in $OUT or ./gpu-logs)
#   bash benchmarks/gpu.sh --dry-run       # print the steps and their time limits, run nothing
#   bash benchmarks/gpu.sh --cpu-smoke     # every step on the CPU at toy sizes (tests the plumbing)
#
# Steps (each under its own time limit, so that one slow step cannot eat the others' time):
#   1. record vs the plain loop, float32 (VGG-A and vgg_light)      record_speed.py
#   2. the same in bf16 (VGG-A)                                      record_speed.py --precision bf16
#   3. the course sweep (8 runs) cut at 100 steps, projected         record_speed.py --sweep course
#   4. curvature along training vs PyHessian (10 probed steps)      curvature.py --part training
#   5. loss surfaces vs loss-landscapes                               curvature_surfaces.py
#   6. the CUDA training step makes no host sync                      pytest tests/test_speed_choices.py
#
# The peers (PyHessian, loss-landscapes) are pip packages the GPU machine may lack and cannot
# download: set PEER_WHEELS to a folder holding their wheels (pip download pyhessian
# loss-landscapes --no-deps -d DIR on a machine with internet) to install them offline; without
# them steps 4 and 5 say so and the table shows no peer rows. PYTHON picks the interpreter
# (default: .venv/bin/python if present, else python3). Untested on a GPU so far.
set -u
cd "$(dirname "$0")/.."
MODE=gpu
case "${1:-}" in
  --dry-run) MODE=dry ;;
  --cpu-smoke) MODE=cpu ;;
  "") ;;
  *) echo "usage: bash benchmarks/gpu.sh [--dry-run | --cpu-smoke]" >&2; exit 2 ;;
esac
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
LOGS="${OUT:-gpu-logs}"
mkdir -p "$LOGS"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if [ "$MODE" != cpu ]; then
  DEV=cuda
  STEPS=(
    "record_fp32|100|benchmarks/record_speed.py --device cuda --model vgg,vgg_light --steps 50 --warmup 5"
    "record_bf16|45|benchmarks/record_speed.py --device cuda --model vgg --steps 50 --warmup 5 --precision bf16"
    "sweep_course|90|benchmarks/record_speed.py --device cuda --sweep course --steps 100"
    "curvature_training|140|benchmarks/curvature.py --part training --device cuda"
    "surfaces|45|benchmarks/curvature_surfaces.py --device cuda --repeats 2"
    "no_sync|30|-m pytest -q -p no:cacheprovider tests/test_speed_choices.py -k cuda"
  )
else
  DEV=cpu
  STEPS=(
    "record_fp32|300|benchmarks/record_speed.py --device cpu --model vgg_light --width 0.25 --steps 3 --warmup 1"
    "record_bf16|300|benchmarks/record_speed.py --device cpu --model vgg_light --width 0.25 --steps 3 --warmup 1 --precision bf16"
    "sweep_course|300|benchmarks/record_speed.py --device cpu --sweep demo-course --steps 2"
    "curvature_training|600|benchmarks/curvature.py --part training --device cpu --models vgg_light --batch 32 --probes 2 --every 2 --warm-steps 2 --trace-se 0.3 --max-samples 20 --deflate 3"
    "surfaces|300|benchmarks/curvature_surfaces.py --device cpu --points 3 --images 64 --train-steps 1 --repeats 1"
    "no_sync|120|-m pytest -q -p no:cacheprovider tests/test_speed_choices.py -k cuda"
  )
fi

if [ "$MODE" != dry ] && [ -n "${PEER_WHEELS:-}" ]; then
  "$PYTHON" -m pip install --quiet --no-index --find-links "$PEER_WHEELS" pyhessian loss-landscapes \
    || echo "could not install the peers from $PEER_WHEELS" >&2
fi

total=0
for step in "${STEPS[@]}"; do
  IFS='|' read -r name limit command <<< "$step"
  total=$((total + limit))
  if [ "$MODE" = dry ]; then
    printf '%-20s <= %4ss  %s %s\n' "$name" "$limit" "$PYTHON" "$command"
    continue
  fi
  echo "== $name (limit ${limit}s): $PYTHON $command" | tee "$LOGS/$name.log"
  start=$(date +%s)
  # shellcheck disable=SC2086  # the command is a list of words
  timeout --signal=INT --kill-after=10 "$limit" "$PYTHON" $command >> "$LOGS/$name.log" 2>&1
  rc=$?
  echo "== exit $rc after $(( $(date +%s) - start ))s" >> "$LOGS/$name.log"
  tail -n 3 "$LOGS/$name.log"
done
if [ "$MODE" = dry ]; then
  echo "total time limits: ${total}s (the whole script stays under 8 minutes on a GPU)"
  exit 0
fi

"$PYTHON" benchmarks/gpu_summary.py "$LOGS" --device "$DEV" | tee "$LOGS/summary.txt"
