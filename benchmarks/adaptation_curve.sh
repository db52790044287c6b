#!/usr/bin/env bash
# Cappy's third use, measured: adapt the scorer alone on CommonsenseQA TRAIN subsets of 500 and
# 2,000 questions (the first N of train_rand_split.jsonl), then score CommonsenseQA dev through
# `evaluate` (api.select) and check the other tasks on quick subsets (SST-2, MNLI-m, CoNLL).
#   benchmarks/adaptation_curve.sh RAW_DIR OUT_DIR [MODEL] [CONVERTED_CORPUS]
# RAW_DIR: the corpus/raw folder; OUT_DIR: a folder outside the work tree (checkpoints, metrics).
# With CONVERTED_CORPUS (python -m spacy_cortex.training.convert), the 500-question run is repeated with
# a replay of configs/adapt_replay_mix.json from it, to keep the other tasks.
set -euo pipefail
raw=$1; out=$2; model=${3:-cortex-mini-en}; corpus=${4:-}
checks=commonsenseqa,sst2,mnli_m,conll2003
mkdir -p "$out"
python -m spacy_cortex.evaluation.evaluate "$raw" --model "$model" --sets "$checks" --limit-scale 0.5 \
    --output "$out/zero_shot/metrics.json"
for n in 500 2000; do
    # {instruction, candidates, gold} per question, as `python -m spacy_cortex.training.adapt train` reads
    python - "$raw" "$n" "$out/csqa_$n.jsonl" <<'PY'
import json, sys
raw, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
with open(f"{raw}/commonsenseqa/train_rand_split.jsonl", encoding="utf-8") as f:
    rows = [json.loads(line) for line in f if line.strip()][:n]
with open(target, "w", encoding="utf-8") as f:
    for r in rows:
        choices = r["question"]["choices"]
        f.write(json.dumps({"instruction": r["question"]["stem"], "candidates": [c["text"] for c in choices],
                            "gold": [c["label"] for c in choices].index(r["answerKey"])}) + "\n")
PY
    # about two passes over the n x 5 candidate records at ~30 records a step
    python -m spacy_cortex.training.adapt train "$out/csqa_$n.jsonl" "$out/adapted_$n" --model "$model" \
        --steps $(( n * 5 * 2 / 30 )) --lr 3e-5
    python -m spacy_cortex.evaluation.evaluate "$raw" --model "$out/adapted_$n/final" --sets "$checks" \
        --limit-scale 0.5 --output "$out/adapted_$n/metrics.json"
done
if [ -n "$corpus" ]; then
    python -m spacy_cortex.training.adapt train "$out/csqa_500.jsonl" "$out/adapted_500_replay" --model "$model" \
        --steps $(( (500 * 5 + 3300) * 2 / 30 )) --lr 3e-5 --replay-corpus "$corpus" --replay-mix configs/adapt_replay_mix.json
    python -m spacy_cortex.evaluation.evaluate "$raw" --model "$out/adapted_500_replay/final" --sets "$checks" \
        --limit-scale 0.5 --output "$out/adapted_500_replay/metrics.json"
fi
