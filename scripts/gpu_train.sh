#!/usr/bin/env bash
# A training run on the lent GPU machine, in three steps (spacy_cortex/training/pack.py,
# train.py, parts.py; docs in their docstrings):
#
#   1. here:     scripts/gpu_train.sh pack CORPUS_DIR [pack options]
#                packs the converted corpus into gpu_pack/pack.npz (<= 15 MiB, ignored by git)
#                and checks that the tree plus gpu_pack stays under the 64 MiB that travels;
#   2. there:    run tool, carry ["gpu_pack"], timeout_s = 60 * MINUTES + 150:
#                scripts/gpu_train.sh run "$OUT" MINUTES [train options]
#                trains from $BASE (default the shipped model) on gpu_pack/pack.npz for MINUTES
#                with large batches (bf16 autocast), then writes under $OUT the weights as fp16
#                parts of <= 15 MiB (3 for the 45 MB model), their manifest and the logs
#                (6 files of the 8 a run returns);
#   3. here:     scripts/gpu_train.sh join FETCHED_DIR CHECKPOINT [BASE]
#                joins the parts (sha256 checked) into a checkpoint folder, which
#                `python -m spacy_cortex.evaluation.evaluate RAW --model CHECKPOINT` evaluates.
# PACK (gpu_pack/pack.npz), BASE (the shipped model), BATCH_TOKENS (65536), MAX_BATCH (512), LR (1e-4) and WARMUP (200) tune the run.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python}
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
shipped=spacy_cortex/models/cortex-mini-en
pack=${PACK:-gpu_pack/pack.npz}  # the packed corpus; its folder is what the run tool carries
step=${1:?usage: scripts/gpu_train.sh pack|run|join ...}
shift
case "$step" in
pack)
    corpus=${1:?usage: scripts/gpu_train.sh pack CORPUS_DIR [pack options]}
    shift
    "$python" -m spacy_cortex.training.pack "$corpus" --output "$(dirname "$pack")" "$@"
    "$python" -m spacy_cortex.training.parts travel-size --carry "$(dirname "$pack")"
    ;;
run)
    out=${1:?usage: scripts/gpu_train.sh run OUT_DIR MINUTES [train options]}
    minutes=${2:?give the training minutes}
    base=${BASE:-$shipped}
    shift 2
    mkdir -p "$out"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    "$python" -m spacy_cortex.training.parts travel-size --carry "$(dirname "$pack")"
    # the time budget ends the run; --steps only bounds the schedule's length
    TQDM_MININTERVAL=30 timeout $(( 60 * minutes + 90 )) "$python" -m spacy_cortex.training.train \
        "$pack" "$work" --base "$base" --device "${DEVICE:-cuda}" --max-minutes "$minutes" \
        --steps 1000000 --warmup "${WARMUP:-200}" --lr "${LR:-1e-4}" --batch-tokens "${BATCH_TOKENS:-65536}" \
        --max-batch "${MAX_BATCH:-512}" --eval-every 500 --save-every 1000000 "$@" > "$out/train.log" 2>&1 \
        || { rc=$?; tail -n 30 "$out/train.log"; echo "training stopped with status $rc (124: past the time limit)" >&2; exit 1; }
    cp "$work/log.jsonl" "$out/log.jsonl"
    "$python" -m spacy_cortex.training.parts split "$work/final" "$out" --base "$base"
    tail -n 3 "$out/log.jsonl"
    ;;
join)
    fetched=${1:?usage: scripts/gpu_train.sh join FETCHED_DIR CHECKPOINT [BASE]}
    dest=${2:?give the checkpoint folder to write}
    "$python" -m spacy_cortex.training.parts join "$fetched" "$dest" --base "${3:-$shipped}"
    ;;
*)
    echo "unknown step $step: use pack, run or join" >&2
    exit 2
    ;;
esac
