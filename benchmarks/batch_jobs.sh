#!/usr/bin/env bash
# docs/s of a 4-label NER batch job over N CoNLL-2003 sentences (train, dev, then test, one
# per line; default N = 20,000), side by side in one run on this machine: the CLI (one
# process), nlp.pipe(n_process=2) on the same pipeline, and the Ray engine with 1 actor x 2
# CPUs and 2 actors x 1 CPU; plus Ray's per-job start-up (a 10-line job). Needs the [ray] extra.
#   benchmarks/batch_jobs.sh RAW_DIR OUT_DIR [N]
set -euo pipefail
raw=$1; out=$2; n=${3:-20000}
mkdir -p "$out"
python - "$raw" "$n" "$out/sentences.txt" <<'PY'
import sys
raw, n, target = sys.argv[1], int(sys.argv[2]), sys.argv[3]
sentences, words = [], []
for split in ("train", "dev", "test"):
    for line in open(f"{raw}/conll2003/{split}.txt", encoding="utf-8"):
        parts = line.split()
        if parts and not parts[0].startswith("-DOCSTART-"):
            words.append(parts[0])
        elif words:
            sentences.append(" ".join(words)); words = []
open(target, "w", encoding="utf-8").write("\n".join(sentences[:n]) + "\n")
PY
head -n 10 "$out/sentences.txt" > "$out/ten.txt"
labels=(--ner PERSON --ner ORG --ner LOC --ner MISC)
timed() {  # name, command...: wall seconds of the command into $out/times.tsv
    local name=$1; shift
    local start; start=$(date +%s.%N)
    "$@" > /dev/null 2>> "$out/log.txt"
    echo -e "$name\t$(echo "$(date +%s.%N) - $start" | bc)" >> "$out/times.tsv"
}
: > "$out/times.tsv"
timed "cli, 1 process" python -m spacy_cortex annotate "$out/sentences.txt" "${labels[@]}" -o "$out/cli.jsonl"
timed "nlp.pipe n_process=2" python - "$out/sentences.txt" <<'PY'
import sys
from spacy_cortex.batch import PipelineSpec
nlp = PipelineSpec(ner=("PERSON", "ORG", "LOC", "MISC")).load()
texts = open(sys.argv[1], encoding="utf-8").read().splitlines()
assert sum(1 for _ in nlp.pipe(texts, batch_size=64, n_process=2)) == len(texts)
PY
timed "ray, 1 actor x 2 CPUs" python -m spacy_cortex annotate "$out/sentences.txt" "${labels[@]}" --engine ray \
    --actors 1 --num-cpus 2 --output-dir "$out/ray1"
timed "ray, 2 actors x 1 CPU" python -m spacy_cortex annotate "$out/sentences.txt" "${labels[@]}" --engine ray \
    --actors 2 --num-cpus 1 --output-dir "$out/ray2"
timed "ray start-up, 10-line job" python -m spacy_cortex annotate "$out/ten.txt" "${labels[@]}" --engine ray \
    --actors 1 --num-cpus 2 --output-dir "$out/ray_ten"
docs=$(wc -l < "$out/sentences.txt")
awk -F'\t' -v docs="$docs" '{ printf "%-28s %8.1f s %8.1f docs/s\n", $1, $2, ($1 ~ /10-line/ ? 10 : docs) / $2 }' "$out/times.tsv"
