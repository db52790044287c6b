"""scripts/gpu_check.sh and scripts/gpu_train.sh, dry runs on the CPU with spaCy and its
libraries made unimportable (as on the GPU machine, which has none of them), and the size of
what travels to the GPU machine."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from spacy_cortex.core.model import CortexModel
from spacy_cortex.training.parts import PART_LIMIT, TRAVEL_LIMIT, travel_size

ROOT = Path(__file__).resolve().parent.parent
BLOCKED = ("spacy", "thinc", "catalogue", "srsly", "wasabi")
# `python -c BLOCKER -m MODULE ARGS...`: the blocked packages become absent, as if not installed
# (a None in sys.modules: importing them raises ImportError, and importlib.util.find_spec,
# which transformers asks at import, says None), then the module runs as `python -m` runs it.
BLOCKER = f"""
import runpy, sys
for name in {json.dumps(BLOCKED)}:
    sys.modules[name] = None
assert sys.argv[1] == "-m", sys.argv
sys.argv = [sys.argv[2]] + sys.argv[3:]
runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
"""


@pytest.fixture(scope="module")
def blocked_python(tmp_path_factory) -> Path:
    """An executable that runs `-m MODULE ARGS` like python, with BLOCKED unimportable; the
    scripts use it through $PYTHON."""
    path = tmp_path_factory.mktemp("bin") / "python"
    path.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c \'{BLOCKER}\' "$@"\n')
    path.chmod(0o755)
    return path


def run_script(args, python: Path, timeout: int = 300, **env) -> subprocess.CompletedProcess:
    result = subprocess.run(["bash", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, "PYTHON": str(python), "TQDM_DISABLE": "1", **env})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def test_the_blocker_blocks(blocked_python):
    result = subprocess.run([str(blocked_python), "-m", "spacy"], capture_output=True, text=True)
    assert result.returncode != 0 and "ImportError" in result.stderr


def test_what_travels_to_the_gpu_machine_fits():
    total, largest = travel_size(ROOT, ["gpu_pack"])
    assert total <= TRAVEL_LIMIT and largest[0][1].endswith("model.safetensors")


def test_gpu_check_cpu_dry_run(blocked_python, tiny_checkpoint, tmp_path):
    out = run_script(["scripts/gpu_check.sh", tmp_path, "--model", tiny_checkpoint, "--docs", "6",
                      "--steps", "4", "--lr", "1e-3"], blocked_python, DEVICE="cpu")
    assert "travel size" in out.stdout
    result = json.loads((tmp_path / "gpu_check.json").read_text())
    assert result["ok"] is True and "errors" not in result
    env = result["environment"]
    assert env["device"] == "cpu" and env["torch"] and env["transformers"] and env["model"] == str(tiny_checkpoint)
    agreement = result["agreement"]
    assert agreement["pairs"] == 12 and "fp16" not in agreement and "CUDA only" in agreement["note"]
    assert agreement["bf16"]["max_abs_delta_token_prob"] < 0.05 and isinstance(agreement["bf16"]["spans_identical"], bool)
    rows = result["throughput"]["rows"]
    assert len(rows) == 4 and {(r["max_batch_size"], r["max_batch_tokens"]) for r in rows} == \
        {(16, 2048), (16, 8192), (64, 2048), (64, 8192)}
    assert all(r["docs"] == 6 and r["docs_per_s"] > 0 and r["tokens_per_s"] > 0 for r in rows)
    training = result["training"]
    assert training["steps"] == 4 and training["last_loss"] < training["first_loss"] and training["finite"]
    assert result["peak_memory"]["kind"] == "cpu max RSS" and result["peak_memory"]["mib"] > 0
    assert set(result["seconds"]) == {"agreement", "throughput", "training", "peak_memory"}


def write_corpus(folder: Path) -> Path:
    """Two small tasks: an extraction task and a yes/no task."""
    folder.mkdir()
    text = "the patient was given 20 mg atorvastatin"
    squad = [{"task": "squad", "prompt": "what dose?", "context": text, "cls": None, "spans": [[22, 27]]}] * 12
    sst2 = [{"task": "sst2", "prompt": "is this about refund?", "context": text[: 10 + i], "spans": None,
             "cls": ["positive", "negative"][i % 2]} for i in range(12)]
    for task, rows in (("squad", squad), ("sst2", sst2)):
        (folder / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf8")
    (folder / "mix.json").write_text(json.dumps({"squad": 8, "sst2": 8}))
    return folder


def test_gpu_train_pack_run_and_join(blocked_python, tiny_checkpoint, tmp_path):
    corpus = write_corpus(tmp_path / "corpus")
    pack = tmp_path / "pack" / "pack.npz"
    env = {"PACK": str(pack), "BASE": str(tiny_checkpoint), "DEVICE": "cpu"}
    run_script(["scripts/gpu_train.sh", "pack", corpus, "--mix", corpus / "mix.json", "--model", tiny_checkpoint,
                "--dev-per-task", "2", "--cache-dir", tmp_path / "cache"], blocked_python, **env)
    assert pack.exists()
    out = tmp_path / "out"
    run_script(["scripts/gpu_train.sh", "run", out, "1", "--steps", "2", "--warmup", "1", "--batch-tokens", "512",
                "--max-batch", "8"], blocked_python, **env)
    files = sorted(p.name for p in out.iterdir())
    assert files == ["log.jsonl", "train.log", "weights.manifest.json", "weights.part00"]
    assert len(files) <= 8 and all((out / f).stat().st_size <= PART_LIMIT for f in files)
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2
    run_script(["scripts/gpu_train.sh", "join", out, tmp_path / "joined", tiny_checkpoint], blocked_python)
    model = CortexModel.from_path(tmp_path / "joined", precision="fp32", device="cpu")
    assert model.run_texts([("what dose?", "the patient was given 20 mg")])[0].cls_probs.shape == (1, 3)
