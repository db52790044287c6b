#!/usr/bin/env bash
# The GPU check, in the repo root of a GPU machine without network (Python 3.12 with torch,
# transformers, tokenizers and CuPy): installs the project from the wheels in gpu_check/wheels
# (scripts/gpu_wheels.sh) and runs, each under its own time limit (about 8 minutes in all),
#   1. the CUDA-marked tests and the device tests,
#   2. the benchmark's ner-4 / textcat-4 / all-3 rows on the GPU (fp32 and bf16, paired
#      ner-4 against the naive loop, ner-4 over a grid of docs per batch x tokens per pass
#      for the default token budget), on gpu_check/raw (scripts/gpu_prepare.sh),
#   3. 60 training steps on gpu_check/corpus for training examples/s,
# and writes OUT_DIR/gpu_check.json with the figures (logs beside it).
#   scripts/gpu_check.sh OUT_DIR
# Dry run on a CPU: GPU_CHECK_DEVICE=cpu scripts/gpu_check.sh OUT_DIR (the same steps on the CPU).
set -uo pipefail
out=$(realpath -m "$1"); mkdir -p "$out"
device=${GPU_CHECK_DEVICE:-cuda}
wheels=gpu_check/wheels
{
    python -m pip install -q --no-index --find-links "$wheels" setuptools spacy thinc srsly catalogue \
        weasel pytest safetensors &&
    python -m pip install -q --no-index --no-deps --no-build-isolation -e .
} > "$out/install.log" 2>&1
echo $? > "$out/install.rc"
timeout 120 python -m pytest -q -rs tests/test_gpu.py tests/test_device.py --junitxml "$out/pytest.xml" \
    > "$out/pytest.log" 2>&1
echo $? > "$out/pytest.rc"
timeout 240 python -m spacy_cortex.evaluation.benchmark gpu_check/raw --device "$device" --only ner-4,textcat-4,all-3 \
    --docs 200 --output "$out/benchmark.json" > "$out/benchmark.log" 2>&1
echo $? > "$out/benchmark.rc"
timeout 90 python -m spacy_cortex.training.train gpu_check/corpus "$out/train" --mix gpu_check/mix.json \
    --base spacy_cortex/models/cortex-mini-en --device "$device" --steps 60 --warmup 6 --eval-every 60 \
    --save-every 1000 --dev-per-task 20 > "$out/train.log" 2>&1
echo $? > "$out/train.rc"
python - "$out" "$device" <<'PY'
import json, sys, xml.etree.ElementTree as ET
from pathlib import Path
out, device = Path(sys.argv[1]), sys.argv[2]
def rc(step): return int((out / f"{step}.rc").read_text()) if (out / f"{step}.rc").exists() else None
result = {"device": device, "return_codes": {s: rc(s) for s in ("install", "pytest", "benchmark", "train")}}
if (out / "pytest.xml").exists():
    suite = ET.parse(out / "pytest.xml").getroot().find("testsuite")
    result["tests"] = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
if (out / "benchmark.json").exists():
    bench = json.loads((out / "benchmark.json").read_text())
    result["gpu"] = bench["environment"].get("gpu")
    result["benchmark"] = [{"row": r["job"]["name"], "precision": r["job"]["precision"],
                            "batch": r["job"]["batch_size"], "batch_tokens": r["job"].get("batch_tokens", 0),
                            "docs": r["job"]["docs"],
                            "seconds": r["seconds"], "docs_per_s": r["job"]["docs"] / r["seconds"] if r["seconds"] else None,
                            "derived": r.get("derived")} for r in bench["rows"]]
lines = (out / "train" / "log.jsonl").read_text().splitlines() if (out / "train" / "log.jsonl").exists() else []
if lines:
    last = json.loads(lines[-1])
    result["training"] = {"steps": last["step"], "examples_per_s": last.get("examples_per_s"), "loss": last["loss"]}
(out / "gpu_check.json").write_text(json.dumps(result, indent=2))
print(json.dumps(result, indent=2))
PY
