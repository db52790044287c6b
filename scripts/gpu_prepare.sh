#!/usr/bin/env bash
# Put the data the GPU check reads into gpu_check/ (ignored by git; the device tool carries it):
# the head of the benchmark's two test files (it reads at most --docs 200 rows of each) and
# 200 converted training rows of four tasks (repeated by the training loop); under 1 MiB.
#   scripts/gpu_prepare.sh RAW_DIR CONVERTED_CORPUS_DIR
set -euo pipefail
raw=$1; corpus=$2; dest=gpu_check
mkdir -p "$dest/raw/conll2003" "$dest/raw/ag_news" "$dest/corpus"
head -n 4000 "$raw/conll2003/test.txt" > "$dest/raw/conll2003/test.txt"
head -n 600 "$raw/ag_news/test.csv" > "$dest/raw/ag_news/test.csv"
for task in squad conll mnli sst2; do head -n 200 "$corpus/$task.jsonl" > "$dest/corpus/$task.jsonl"; done
echo '{"squad": 180, "conll": 180, "mnli": 180, "sst2": 180}' > "$dest/mix.json"
du -sh "$dest"
