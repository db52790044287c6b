#!/usr/bin/env bash
# The GPU check: the core on the lent GPU machine, in one JSON file (no install, no wheels:
# the work tree alone travels; python runs the core from it with PYTHONPATH=.).
#   run tool: scripts/gpu_check.sh "$OUT"        (timeout_s 300; writes $OUT/gpu_check.json)
#   dry run here, on the CPU: DEVICE=cpu scripts/gpu_check.sh /tmp/check [--model FOLDER]
# First says how much would travel (fails above 64 MiB), then runs
# spacy_cortex/evaluation/device_check.py (agreement with CPU fp32, throughput grid, peak
# memory, training steps; about 1 to 3 minutes) under a 270 s limit. Extra arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: scripts/gpu_check.sh OUT_DIR [device_check options]}
shift
mkdir -p "$out"
python=${PYTHON:-python}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
"$python" -m spacy_cortex.training.parts travel-size
timeout 270 "$python" -m spacy_cortex.evaluation.device_check --output "$out/gpu_check.json" "$@"
