"""spacy_cortex.training.pack (the corpus packed for the GPU machine) and
spacy_cortex.training.parts (the weights split into parts and joined back)."""
import json
import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import WORDS
from safetensors.torch import load_file

from spacy_cortex.core.model import CortexModel, load_hf_model
from spacy_cortex.training import pack as packing
from spacy_cortex.training.parts import (MANIFEST, PartsError, fp16_bytes, join_parts, split_weights,
                                         travel_size)
from spacy_cortex.training.train import encoded_corpus, load_packed

CONTEXT = "the patient was given 20 mg atorvastatin and asked about refund billing and shipping"
MIX = {"squad": 300, "sst2": 200, "choice": 120}


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def write_corpus(folder: Path) -> Path:
    """Three tasks of varied random texts: extraction records (some without an answer),
    labelled and soft [CLS] records, and listwise groups of three candidates with one
    positive each."""
    rng = random.Random(0)
    folder.mkdir(parents=True, exist_ok=True)
    squad = []
    for i in range(310):
        context = text(rng, rng.randint(5, 60))
        spans = [[0, context.index(" ")]] if i % 4 else []
        squad.append({"task": "squad", "prompt": text(rng, 4) + "?", "context": context, "cls": None, "spans": spans})
    rows = {
        "squad": squad,
        "sst2": [{"task": "sst2", "prompt": "is this about refund?", "context": text(rng, rng.randint(3, 30)),
                  "cls": ["positive", "negative", 0.25][i % 3], "spans": None} for i in range(210)],
        "choice": [{"task": "choice", "prompt": f"is this {text(rng, 2)}?", "context": text(rng, 20), "group": i,
                    "cls": "positive" if j == i % 3 else "negative", "spans": None}
                   for i in range(44) for j in range(3)],
    }
    for task, records in rows.items():
        (folder / f"{task}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf8")
    return folder


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    return write_corpus(tmp_path_factory.mktemp("corpus"))


def make_pack(corpus, checkpoint, output, budget=1 << 20):
    return packing.pack(corpus, MIX, checkpoint, output, budget, max_length=64, dev_per_task=4, seed=0,
                        cache_dir=output / "cache")


def same(a, b) -> bool:
    return (a.task, a.n_prompt, a.group) == (b.task, b.n_prompt, b.group) \
        and np.array_equal(a.input_ids, b.input_ids) and np.array_equal(a.labels, b.labels) \
        and (a.cls_target == b.cls_target or math.isnan(a.cls_target) and math.isnan(b.cls_target))


def test_pack_round_trips_to_the_trainers_examples(corpus, tiny_checkpoint, tmp_path):
    meta = make_pack(corpus, tiny_checkpoint, tmp_path)
    assert meta["kept_fraction"] == 1.0 and meta["bytes"] == (tmp_path / packing.PACK_FILE).stat().st_size
    tokenizer = load_hf_model(tiny_checkpoint)[1]
    # the trainer's own examples, as its cache holds them (soft targets as float32)
    expected = encoded_corpus(corpus, MIX, tokenizer, tmp_path / "cache", 64, 4, 0)
    train, dev, packed_meta = load_packed(tmp_path / packing.PACK_FILE, tokenizer)
    assert packed_meta["per_task"] == {t: [n, n] for t, n in MIX.items()}
    for got, want in zip((train, dev), expected):
        assert len(got) == len(want) and all(same(a, b) for a, b in zip(got, want))
    with np.load(tmp_path / packing.PACK_FILE) as data:
        assert data["input_ids"].dtype == np.int16 and data["labels"].dtype == np.int8


def test_pack_keeps_a_fraction_to_fit_the_budget(corpus, tiny_checkpoint, tmp_path):
    full = make_pack(corpus, tiny_checkpoint, tmp_path / "full")["bytes"]
    meta = make_pack(corpus, tiny_checkpoint, tmp_path / "small", budget=full * 2 // 3)
    assert meta["bytes"] <= full * 2 // 3 and 0.3 < meta["kept_fraction"] < 0.7
    tokenizer = load_hf_model(tiny_checkpoint)[1]
    train, dev, _ = load_packed(tmp_path / "small" / packing.PACK_FILE, tokenizer)
    assert len(dev) == 4 * len(MIX)  # dev whole
    for task, (encoded, kept) in meta["per_task"].items():
        assert kept == sum(e.task == task for e in train) and 0 < kept < encoded

    def groups(examples):
        found = {}
        for e in examples:
            if e.group >= 0:
                found.setdefault(e.group, []).append(int(e.labels[0]))
        return found

    kept, whole = groups(train), groups(load_packed(tmp_path / "full" / packing.PACK_FILE, tokenizer)[0])
    assert 0 < len(kept) < len(whole) and all(whole[g] == members for g, members in kept.items())


def test_pack_too_small_for_the_budget(corpus, tiny_checkpoint, tmp_path):
    with pytest.raises(ValueError, match="even one example per task"):
        make_pack(corpus, tiny_checkpoint, tmp_path, budget=500)


def test_a_pack_of_another_vocabulary_is_refused(corpus, tiny_checkpoint, tmp_path):
    make_pack(corpus, tiny_checkpoint, tmp_path)
    path = tmp_path / packing.PACK_FILE
    with np.load(path) as data:
        arrays = dict(data)
    meta = json.loads(str(arrays["meta"]))
    arrays["meta"] = np.array(json.dumps({**meta, "vocab_sha256": "0" * 64}))
    np.savez_compressed(path, **arrays)
    with pytest.raises(ValueError, match="another vocabulary"):
        load_packed(path, load_hf_model(tiny_checkpoint)[1])
    with pytest.raises(ValueError, match="not a packed corpus"):
        np.savez(tmp_path / "plain.npz", input_ids=np.zeros(3))
        load_packed(tmp_path / "plain.npz", load_hf_model(tiny_checkpoint)[1])


@pytest.fixture()
def trained(tiny_checkpoint, tmp_path):
    """A fp32 checkpoint folder whose weights differ from the tiny base's."""
    model = CortexModel.from_path(tiny_checkpoint, precision="fp32", device="cpu")
    with torch.no_grad():
        model.hf_model.classifier.bias.add_(0.5)
    model.save(tmp_path / "trained", fp16=False)
    return tmp_path / "trained"


def test_split_and_join_are_byte_identical(trained, tiny_checkpoint, tmp_path):
    limit = 40_000
    manifest = split_weights(trained, tmp_path / "out", tiny_checkpoint, part_limit=limit)
    parts = sorted((tmp_path / "out").glob("weights.part*"))
    assert len(parts) == len(manifest["parts"]) > 2 and all(p.stat().st_size <= limit for p in parts)
    dest = join_parts(tmp_path / "out", tmp_path / "joined", tiny_checkpoint)
    assert (dest / "model.safetensors").read_bytes() == fp16_bytes(trained)
    joined, original = load_file(str(dest / "model.safetensors")), load_file(str(trained / "model.safetensors"))
    assert all(joined[k].dtype == torch.float16 and torch.equal(joined[k], original[k].half()) for k in original)
    model = CortexModel.from_path(dest, precision="fp32", device="cpu")
    assert model.run_texts([("what dose?", CONTEXT)])[0].token_probs.shape[1] == 3


def test_join_names_a_corrupted_or_missing_part(trained, tiny_checkpoint, tmp_path):
    split_weights(trained, tmp_path / "out", tiny_checkpoint, part_limit=40_000)
    part = tmp_path / "out" / "weights.part01"
    data = bytearray(part.read_bytes())
    data[100] ^= 1
    part.write_bytes(bytes(data))
    with pytest.raises(PartsError, match="weights.part01.*corrupted"):
        join_parts(tmp_path / "out", tmp_path / "joined", tiny_checkpoint)
    part.unlink()
    with pytest.raises(PartsError, match="weights.part01 missing"):
        join_parts(tmp_path / "out", tmp_path / "joined", tiny_checkpoint)
    (tmp_path / "out" / MANIFEST).unlink()
    with pytest.raises(PartsError, match="manifest"):
        join_parts(tmp_path / "out", tmp_path / "joined", tiny_checkpoint)


def test_join_refuses_another_base(trained, tiny_checkpoint, tmp_path):
    split_weights(trained, tmp_path / "out", tiny_checkpoint)
    other = tmp_path / "other"
    other.mkdir()
    for f in tiny_checkpoint.iterdir():
        (other / f.name).write_bytes(f.read_bytes())
    (other / "vocab.txt").write_text("[PAD]\n", encoding="utf8")
    with pytest.raises(PartsError, match="tokenizer files differ"):
        join_parts(tmp_path / "out", tmp_path / "joined", other)


def test_travel_size_counts_tracked_untracked_and_carried_files(tmp_path):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("pack/\nbig.bin\n")
    (tmp_path / "a.txt").write_bytes(b"x" * 1000)
    (tmp_path / "big.bin").write_bytes(b"x" * 5000)  # ignored, not carried
    (tmp_path / "pack").mkdir()
    (tmp_path / "pack" / "p.npz").write_bytes(b"x" * 3000)
    base = 1000 + (tmp_path / ".gitignore").stat().st_size
    assert travel_size(tmp_path)[0] == base
    total, largest = travel_size(tmp_path, ["pack"])
    assert total == base + 3000 and largest[0] == (3000, "pack/p.npz")
    with pytest.raises(PartsError, match="over its .* limit.*pack/p.npz"):
        travel_size(tmp_path, ["pack"], limit=4000)
