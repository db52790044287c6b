"""spacy_cortex.training.train: example encoding, the loss, batching and the CLI."""
import json
import math
import random

import numpy as np
import pytest
import torch
from conftest import WORDS, tiny_tokenizer
from typer.testing import CliRunner

from spacy_cortex.core.encoding import IGNORE, NEGATIVE, NEUTRAL, POSITIVE
from spacy_cortex.core.model import CortexModel
from spacy_cortex.core.loss import (
    TrainingExample as Example,
    collate,
    cortex_loss,
    encode_example,
    length_bucketed_batches,
    rank_loss,
    span_token_labels,
)
from spacy_cortex.training.train import app, assign_groups, encoded_corpus, load_corpus

CONTEXT = "The patient was given 20 mg atorvastatin."
ANSWER = (22, 27)  # "20 mg"


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def qa_record(context=CONTEXT, spans=(ANSWER,), prompt="What dose was given?"):
    return {"task": "squad", "prompt": prompt, "context": context,
            "cls": "positive" if spans else "negative", "spans": [list(s) for s in spans]}


def test_span_token_labels():
    offsets = np.array([[0, 3], [4, 6], [6, 9], [10, 12]])
    labels = span_token_labels(offsets, [[5, 7]])
    assert labels.tolist() == [NEGATIVE, POSITIVE, POSITIVE, NEGATIVE]
    assert span_token_labels(offsets, []).tolist() == [NEGATIVE] * 4


def test_encode_extraction_example(tok):
    rec = qa_record()
    e = encode_example(tok, rec, 128, random.Random(0))
    prompt_ids = tok(rec["prompt"], add_special_tokens=False)["input_ids"]
    context_ids = tok(CONTEXT, add_special_tokens=False)["input_ids"]
    n_p = len(prompt_ids)
    assert e.task == "squad" and e.n_prompt == n_p
    assert e.input_ids.tolist() == [tok.cls_token_id, *prompt_ids, tok.sep_token_id, *context_ids, tok.sep_token_id]
    assert len(e.labels) == len(e.input_ids)
    assert e.labels[0] == POSITIVE  # [CLS]: the context holds an answer
    assert (e.labels[1 : n_p + 2] == IGNORE).all()  # prompt tokens and [SEP]
    assert e.labels[-1] == IGNORE  # final [SEP]
    context_labels = e.labels[n_p + 2 : -1]
    assert set(context_labels.tolist()) == {POSITIVE, NEGATIVE}
    # positive tokens are exactly the answer's sub-tokens
    answer_ids = tok(CONTEXT[ANSWER[0] : ANSWER[1]], add_special_tokens=False)["input_ids"]
    assert e.input_ids[e.labels == POSITIVE][1:].tolist() == answer_ids  # [1:] skips [CLS]
    positive_ids = e.input_ids[n_p + 2 : -1][context_labels == POSITIVE].tolist()
    assert tok.convert_ids_to_tokens(positive_ids) == ["2", "##0", "mg"]


def test_encode_extraction_without_answer(tok):
    e = encode_example(tok, qa_record(spans=()), 128, random.Random(0))
    assert e.labels[0] == NEGATIVE
    ctx = e.labels[e.n_prompt + 2 : -1]
    assert (ctx == NEGATIVE).all()


def test_encode_classification_example(tok):
    rec = {"task": "mnli", "prompt": "Does this text imply that a drug was given?", "context": CONTEXT,
           "cls": "neutral", "spans": None}
    e = encode_example(tok, rec, 128, random.Random(0))
    assert e.labels[0] == NEUTRAL
    assert (e.labels[1:] == IGNORE).all()  # loss on [CLS] only
    rec["cls"] = None
    e = encode_example(tok, rec, 128, random.Random(0))
    assert (e.labels == IGNORE).all()


def test_long_prompt_is_cut(tok):
    rec = qa_record(prompt=" ".join(["refund"] * 200))
    e = encode_example(tok, rec, 64, random.Random(0))
    assert e.n_prompt == 32
    assert len(e.input_ids) <= 64


@pytest.mark.parametrize("position", [0, 0.3, 0.5, 0.9, 1.0])
def test_cropping_keeps_answer(tok, position):
    rng = random.Random(1)
    filler = [rng.choice(WORDS) for _ in range(400)]
    cut = int(position * len(filler))
    answer = "20 mg atorvastatin"
    before = " ".join(filler[:cut])
    context = (before + " " if before else "") + answer + " " + " ".join(filler[cut:])
    start = context.index(answer)
    rec = qa_record(context=context, spans=[(start, start + len(answer))])
    answer_ids = tok(answer, add_special_tokens=False)["input_ids"]
    starts = set()
    for seed in range(15):
        e = encode_example(tok, rec, 64, random.Random(seed))
        assert len(e.input_ids) == 64
        assert e.labels[0] == POSITIVE
        ctx_ids = e.input_ids[e.n_prompt + 2 : -1]
        ctx_labels = e.labels[e.n_prompt + 2 : -1]
        assert ctx_ids[ctx_labels == POSITIVE].tolist() == answer_ids  # the whole answer inside
        # the crop is a contiguous piece of the context
        full = tok(context, add_special_tokens=False)["input_ids"]
        offset = next(i for i in range(len(full)) if full[i : i + len(ctx_ids)] == ctx_ids.tolist())
        starts.add(offset)
    if 0 < position < 1:
        assert len(starts) > 1  # random crops, not always the same window


def test_cropping_answer_longer_than_window(tok):
    context = "the " * 10 + " ".join(["mg"] * 200)
    start = context.index("mg")
    rec = qa_record(context=context, spans=[(start, len(context))])
    e = encode_example(tok, rec, 64, random.Random(0))
    ctx_labels = e.labels[e.n_prompt + 2 : -1]
    assert len(e.input_ids) == 64
    assert (ctx_labels == POSITIVE).all()  # the window starts at the answer
    assert e.labels[0] == POSITIVE


def test_collate(tok):
    examples = [encode_example(tok, qa_record(), 128, random.Random(0)),
                encode_example(tok, qa_record(context="refund"), 128, random.Random(0))]
    batch = collate(examples, tok.pad_token_id)
    n0, n1 = len(examples[0].input_ids), len(examples[1].input_ids)
    assert batch["input_ids"].shape == (2, n0)
    assert batch["attention_mask"][1].tolist() == [1] * n1 + [0] * (n0 - n1)
    assert (batch["labels"][1, n1:] == IGNORE).all()
    assert (batch["input_ids"][1, n1:] == tok.pad_token_id).all()
    assert batch["token_type_ids"][0, examples[0].n_prompt + 2].item() == 1
    assert batch["token_type_ids"][0, examples[0].n_prompt + 1].item() == 0


def test_cortex_loss_per_example_mean():
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 3)
    labels = torch.tensor([
        [POSITIVE, IGNORE, IGNORE, IGNORE, IGNORE],  # classification: [CLS] only
        [POSITIVE, IGNORE, POSITIVE, NEGATIVE, NEGATIVE],  # extraction: [CLS] + 3 tokens, 1 answer
        [NEGATIVE, NEGATIVE, NEGATIVE, IGNORE, IGNORE],  # extraction without answer
    ])
    ce = lambda row, pos, lab: -torch.log_softmax(logits[row, pos], -1)[lab]
    context = (ce(1, 2, POSITIVE) + ce(1, 3, NEGATIVE) + ce(1, 4, NEGATIVE)) / 3
    expected = (
        ce(0, 0, POSITIVE)
        + ce(1, 0, POSITIVE) + context + ce(1, 2, POSITIVE)  # answer tokens: their own mean
        + ce(2, 0, NEGATIVE) + (ce(2, 1, NEGATIVE) + ce(2, 2, NEGATIVE)) / 2
    ) / 3
    assert cortex_loss(logits, labels).item() == pytest.approx(expected.item(), rel=1e-5)


def test_cortex_loss_decreases(tiny_checkpoint, tok):
    model = CortexModel.from_path(tiny_checkpoint)
    rng = random.Random(0)
    records = [qa_record(), qa_record(spans=()),
               {"task": "sst2", "prompt": "Is this text positive?", "context": "refund", "cls": "negative",
                "spans": None}]
    batch = collate([encode_example(model.tokenizer, r, 128, rng) for r in records], tok.pad_token_id)
    hf = model.hf_model
    hf.train()
    torch.manual_seed(0)
    optimizer = torch.optim.AdamW(hf.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        logits = hf(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                    token_type_ids=batch["token_type_ids"]).logits
        loss = cortex_loss(logits, batch["labels"])
        assert torch.isfinite(loss)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.8


def test_soft_cls_target(tok):
    record = {"task": "adapt", "prompt": "Is this a correct response: 20 mg", "context": CONTEXT,
              "cls": 0.25, "spans": None}
    e = encode_example(tok, record, 64, random.Random(0))
    assert e.cls_target == 0.25 and e.labels[0] == IGNORE and (e.labels == IGNORE).all()
    hard = encode_example(tok, dict(record, cls="positive"), 64, random.Random(0))
    assert math.isnan(hard.cls_target) and hard.labels[0] == POSITIVE
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        encode_example(tok, dict(record, cls=1.5), 64, random.Random(0))
    # the loss of a soft target is the cross-entropy against (0, t, 1 - t)
    logits = torch.tensor([[[0.0, 1.0, -1.0]], [[0.5, 0.0, 2.0]]])
    labels = torch.full((2, 1), IGNORE)
    labels[1, 0] = NEGATIVE
    targets = torch.tensor([0.25, float("nan")])
    log_p = torch.log_softmax(logits[:, 0], -1)
    expected = (-(0.25 * log_p[0, POSITIVE] + 0.75 * log_p[0, NEGATIVE]) - log_p[1, NEGATIVE]) / 2
    assert cortex_loss(logits, labels, targets).item() == pytest.approx(expected.item(), abs=1e-6)
    batch = collate([e, hard], 0)
    assert batch["cls_targets"][0] == 0.25 and torch.isnan(batch["cls_targets"][1])


def test_length_bucketed_batches():
    examples = [Example("t", np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), 1)
                for n in random.Random(0).choices(range(5, 100), k=80)]
    batches = length_bucketed_batches(examples, batch_tokens=400, max_batch=8, rng=random.Random(0))
    flat = [id(e) for b in batches for e in b]
    assert sorted(flat) == sorted(id(e) for e in examples)
    for b in batches:
        assert len(b) <= 8
        assert len(b) == 1 or len(b) * max(len(e.input_ids) for e in b) <= 400


def test_length_bucketed_batches_keep_groups():
    rng = random.Random(1)
    examples = [Example("t", np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64), 1, group=i // 4 if i < 60 else -1)
                for i, n in enumerate(rng.choices(range(5, 60), k=90))]
    batches = length_bucketed_batches(examples, batch_tokens=400, max_batch=8, rng=random.Random(0))
    assert sorted(id(e) for b in batches for e in b) == sorted(id(e) for e in examples)
    where = {id(e): i for i, b in enumerate(batches) for e in b}
    for g in range(15):
        assert len({where[id(e)] for e in examples if e.group == g}) == 1
    for b in batches:
        assert len(b) <= 8 and len(b) * max(len(e.input_ids) for e in b) <= 400


def choice_rows(question, n, gold, group, task="csqa"):
    return [{"task": task, "prompt": f"Is this a correct response: answer {i}", "context": question,
             "cls": "positive" if i == gold else "negative", "spans": None, "group": group} for i in range(n)]


def test_assign_groups(tok):
    rows = (choice_rows("Where do fish live?", 3, 1, group=7)
            + choice_rows("Where do eels live?", 3, 2, group=70)
            + choice_rows("Pick one", 2, 5, group=8)  # no positive: no group
            + [dict(r, cls="positive") for r in choice_rows("Pick two", 2, 0, group=9)]  # two positives
            + choice_rows("Alone", 1, 0, group=10)  # one member
            + [qa_record()]  # no "group"
            + [dict(r, cls=0.5 + 0.5 * (i == 0)) for i, r in enumerate(choice_rows("Soft", 2, 0, group=11))]
            + choice_rows("Where do birds live?", 2, 0, group=7, task="other")  # same number, other task
            + choice_rows("Once", 2, 0, group=12) * 2)  # a one-group file upsampled: two positives
    examples = [encode_example(tok, r, 64, random.Random(0)) for r in rows]
    assign_groups(rows, examples)
    assert [e.group for e in examples] == [0, 0, 0, 3, 3, 3] + [-1] * 8 + [14, 14] + [-1] * 4


def test_rank_loss():
    logits = torch.tensor([[[0.0, 2.0, 0.0]], [[0.0, 0.0, 1.0]], [[0.0, 1.0, 1.0]],  # group 4: log-odds 2, -1, 0
                           [[0.0, 3.0, 0.0]], [[0.0, 0.0, 0.0]],  # group 9: 3, 0
                           [[5.0, 0.0, 0.0]]])  # no group
    groups = torch.tensor([4, 4, 4, 9, 9, -1])
    positive = torch.tensor([False, True, False, False, True, False])
    expected = ((torch.logsumexp(torch.tensor([2.0, -1.0, 0.0]), 0) + 1.0)
                + (torch.logsumexp(torch.tensor([3.0, 0.0]), 0) - 0.0)) / 2
    assert rank_loss(logits, groups, positive).item() == pytest.approx(expected.item(), rel=1e-6)
    assert rank_loss(logits, torch.full((6,), -1), positive).item() == 0.0
    labels = torch.full((6, 1), IGNORE)
    labels[:, 0] = torch.where(positive, POSITIVE, NEGATIVE)
    plain = cortex_loss(logits, labels)
    assert cortex_loss(logits, labels, groups=groups).item() == plain.item()  # weight 0: off
    weighted = cortex_loss(logits, labels, groups=groups, rank_weight=0.5)
    assert weighted.item() == pytest.approx(plain.item() + 0.5 * expected.item(), rel=1e-6)


def write_corpus(path, n=6):
    path.mkdir()
    rng = random.Random(0)
    with (path / "squad.jsonl").open("w") as f:
        for i in range(n):
            context = " ".join(rng.choice(WORDS) for _ in range(20)) + " 20 mg atorvastatin."
            start = context.index("20 mg")
            f.write(json.dumps(qa_record(context=context, spans=[(start, start + 5)])) + "\n")
    with (path / "sst2.jsonl").open("w") as f:
        for i in range(n):
            f.write(json.dumps({"task": "sst2", "prompt": "Is this text positive?",
                                "context": "refund " * (i + 1), "cls": ["positive", "negative"][i % 2],
                                "spans": None}) + "\n")
    with (path / "csqa.jsonl").open("w") as f:  # groups of 3 scoring pairs, the second positive
        for q in range(3):
            f.writelines(json.dumps(r) + "\n" for r in choice_rows(f"Where is thing {q}?", 3, 1, group=q))


def test_load_corpus(tmp_path):
    write_corpus(tmp_path / "corpus")
    train, dev = load_corpus(tmp_path / "corpus", {"squad": 3, "sst2": 10}, dev_per_task=2)
    assert [r["task"] for r in dev] == ["squad", "squad", "sst2", "sst2"]
    assert len([r for r in train if r["task"] == "squad"]) == 3
    sst2 = [r for r in train if r["task"] == "sst2"]
    assert len(sst2) == 10  # 4 rows beyond dev, repeated up to the requested count
    assert len({json.dumps(r) for r in sst2}) == 4
    with pytest.raises(FileNotFoundError, match="conll"):
        load_corpus(tmp_path / "corpus", {"conll": 3}, 1)


def test_encoded_corpus_cache(tmp_path, tok):
    corpus, cache = tmp_path / "corpus", tmp_path / "cache"
    write_corpus(corpus)
    mix = {"squad": 3, "sst2": 5, "csqa": 6}
    train, dev = encoded_corpus(corpus, mix, tok, cache, 64, 2, seed=0)
    # csqa rows 2-7 train, after 8 squad and sst2 rows: the tail of group 0 alone (none), group 1,
    # group 2 without its third; a group's id is its first row's position
    assert [e.group for e in train if e.task == "csqa"] == [-1, 9, 9, 9, 12, 12]
    [cached] = cache.glob("encoded-*.npz")
    again = encoded_corpus(corpus, mix, tok, cache, 64, 2, seed=0)
    for fresh, loaded in zip((train, dev), again):
        assert [(e.task, e.n_prompt) for e in fresh] == [(e.task, e.n_prompt) for e in loaded]
        assert np.array_equal([e.cls_target for e in fresh], [e.cls_target for e in loaded], equal_nan=True)
        assert [e.group for e in fresh] == [e.group for e in loaded]
        for a, b in zip(fresh, loaded):
            np.testing.assert_array_equal(a.input_ids, b.input_ids)
            np.testing.assert_array_equal(a.labels, b.labels)
    assert sorted(e.task for e in train).count("squad") == 3 and len(dev) == 6
    # anything the encoding depends on gives another cache entry
    encoded_corpus(corpus, {"squad": 3, "sst2": 6, "csqa": 6}, tok, cache, 64, 2, seed=0)
    encoded_corpus(corpus, mix, tok, cache, 32, 2, seed=0)
    (corpus / "sst2.jsonl").write_text((corpus / "sst2.jsonl").read_text() + (corpus / "sst2.jsonl").read_text())
    encoded_corpus(corpus, mix, tok, cache, 64, 2, seed=0)
    assert len(list(cache.glob("encoded-*.npz"))) == 4 and cached.exists()
    assert not list(cache.glob("*.tmp"))


def test_cli_end_to_end(tmp_path, tiny_checkpoint):
    corpus, output = tmp_path / "corpus", tmp_path / "out"
    write_corpus(corpus)
    mix = tmp_path / "mix.json"
    mix.write_text(json.dumps({"squad": 4, "sst2": 4, "csqa": 6}))
    args = [str(corpus), str(output), "--mix", str(mix), "--base", str(tiny_checkpoint),
            "--steps", "3", "--warmup", "1", "--eval-every", "3", "--save-every", "3",
            "--dev-per-task", "1", "--batch-tokens", "512", "--max-batch", "4",
            "--max-length", "64", "--no-bf16", "--rank-weight", "1.0"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert (output / "final" / "model.safetensors").exists()
    assert (output / "checkpoint" / "trainer_state.pt").exists()
    records = [json.loads(l) for l in (output / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3]
    assert math.isfinite(records[0]["loss"])
    assert "squad/cls_acc" in records[0] and "sst2/cls_acc" in records[0]
    assert "squad/token_f1" in records[0]
    # the result is a loadable cortex checkpoint that differs from the base
    trained = CortexModel.from_path(output / "final")
    base = CortexModel.from_path(tiny_checkpoint)
    t = trained.hf_model.classifier.weight.detach()
    assert not torch.equal(t, base.hf_model.classifier.weight.detach())
    [r] = trained.run_texts([("What dose was given?", CONTEXT)])
    assert r.token_probs.shape == (len(trained.encode_text(CONTEXT)), 3)

    # resume continues from the saved step, on the cached encoding
    result = CliRunner().invoke(app, args[:6] + ["--steps", "4"] + args[8:] + ["--resume"])
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "from cache" in result.output
    records = [json.loads(l) for l in (output / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [3, 4]
    state = torch.load(output / "checkpoint" / "trainer_state.pt", weights_only=True)
    assert state["step"] == 4 and state["elapsed_s"] > 0


def test_trainer_with_distillation(tmp_path, tiny_checkpoint):
    corpus, output = tmp_path / "corpus", tmp_path / "out"
    write_corpus(corpus)
    (tmp_path / "mix.json").write_text(json.dumps({"squad": 4, "sst2": 4}))
    args = [str(corpus), str(output), "--mix", str(tmp_path / "mix.json"), "--base", str(tiny_checkpoint),
            "--steps", "2", "--warmup", "1", "--eval-every", "2", "--save-every", "2", "--dev-per-task", "1",
            "--batch-tokens", "512", "--max-batch", "4", "--max-length", "64", "--no-bf16",
            "--distill-weight", "0.5", "--distill-views", "4", "--teacher", str(tiny_checkpoint)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    records = [json.loads(l) for l in (output / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2]
