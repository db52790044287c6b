"""spacy_cortex.training.adapt: training data for the scorer, Rouge-L regression items, the command."""
import json

import pytest
import torch
from typer.testing import CliRunner

from spacy_cortex.training import adapt
from spacy_cortex.training.datasets.tasks import score_prompt
from spacy_cortex.core.model import CortexModel


def write(path, lines):
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines), encoding="utf-8")
    return path


def test_item_records():
    [r] = adapt.item_records({"instruction": "Name a fruit.", "response": "apple", "score": 0.75}, "f:1")
    assert r == {"task": "adapt", "prompt": score_prompt("apple"), "context": "Name a fruit.", "cls": 0.75, "spans": None}
    by_gold_text = adapt.item_records({"instruction": "2+2?", "candidates": ["3", "4", "4", "5"], "gold": "4"}, "f:2")
    by_index = adapt.item_records({"instruction": "2+2?", "candidates": ["3", "4", "4", "5"], "gold": 1}, "f:2")
    assert by_gold_text == by_index
    assert [(r["prompt"], r["cls"]) for r in by_index] == [
        (score_prompt("3"), 0.0), (score_prompt("4"), 1.0), (score_prompt("5"), 0.0)]
    # a wrong candidate with the gold text is the gold one, listed once
    assert adapt.item_targets({"instruction": "q", "candidates": ["a", "b", "a"], "gold": 0}, "f:3") == (
        "q", ["a", "b"], [1.0, 0.0])


@pytest.mark.parametrize("item,match", [
    ({"response": "a", "score": 1}, "'instruction' must be a non-empty string"),
    ({"instruction": "q", "response": "a", "score": 1.5}, "'score' must be a number in \\[0, 1\\]"),
    ({"instruction": "q", "response": "a", "score": True}, "'score'"),
    ({"instruction": "q", "response": " ", "score": 1}, "'response'"),
    ({"instruction": "q", "candidates": ["a"], "gold": 0}, "'candidates' must be a list of at least 2"),
    ({"instruction": "q", "candidates": ["a", "b"], "gold": "c"}, "'gold' must be a candidate"),
    ({"instruction": "q", "candidates": ["a", "b"], "gold": 2}, "'gold'"),
])
def test_bad_items_name_the_line(item, match):
    with pytest.raises(adapt.DataError, match=f"data.jsonl:7: {match}"):
        adapt.item_records(item, "data.jsonl:7")


def test_read_records_errors(tmp_path):
    path = write(tmp_path / "d.jsonl", [{"instruction": "q", "response": "a", "score": 1}, "", "{oops"])
    with pytest.raises(adapt.DataError, match="d.jsonl:3: not valid JSON"):
        adapt.read_records(path)
    with pytest.raises(adapt.DataError, match="d.jsonl:1: expected a JSON object"):
        adapt.read_records(write(tmp_path / "d.jsonl", ["[1, 2]"]))
    with pytest.raises(adapt.DataError, match="no training items"):
        adapt.read_records(write(tmp_path / "d.jsonl", ["", "  "]))


def test_rouge_items():
    items = adapt.rouge_items("Describe the cat.", "the cat sat on the mat",
                              ["a cat sat on a mat", "dogs bark", "the cat sat on the mat"])
    scores = {i["response"]: i["score"] for i in items}
    # Rouge-L F: LCS "cat sat on mat" = 4 of 6 and 4 of 6 words
    assert scores == pytest.approx({"the cat sat on the mat": 1.0, "a cat sat on a mat": 4 / 6, "dogs bark": 0.0})
    assert all(i["instruction"] == "Describe the cat." for i in items)


def test_rouge_command(tmp_path):
    source = write(tmp_path / "gold.jsonl", [{"instruction": "q", "gold": "red apple", "candidates": ["apple", "pear"]}])
    result = CliRunner().invoke(adapt.app, ["rouge", str(source), str(tmp_path / "out.jsonl")])
    assert result.exit_code == 0, result.output
    rows = [json.loads(l) for l in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [(r["response"], round(r["score"], 4)) for r in rows] == [("red apple", 1.0), ("apple", 0.6667), ("pear", 0.0)]
    bad = write(tmp_path / "bad.jsonl", [{"instruction": "q", "gold": "", "candidates": ["a"]}])
    result = CliRunner().invoke(adapt.app, ["rouge", str(bad), str(tmp_path / "x.jsonl")])
    assert result.exit_code == 2 and "bad.jsonl:1" in result.output


def test_train_command(tmp_path, tiny_checkpoint):
    items = [{"instruction": f"Question {i}?", "response": f"answer {i}", "score": i / 20} for i in range(20)]
    items += [{"instruction": "2+2?", "candidates": ["3", "4"], "gold": 1}]
    data = write(tmp_path / "data.jsonl", items)
    out = tmp_path / "adapted"
    args = ["train", str(data), str(out), "--model", str(tiny_checkpoint), "--steps", "2"]
    result = CliRunner().invoke(adapt.app, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert json.loads((out / "mix.json").read_text()) == {"adapt": 22 - 2}  # 2 of 22 records held out
    records = [json.loads(l) for l in (out / "corpus" / "adapt.jsonl").read_text().splitlines()]
    assert len(records) == 22 and sorted(r["cls"] for r in records)[-2:] == [0.95, 1.0]
    trained = CortexModel.from_path(out / "final")
    base = CortexModel.from_path(tiny_checkpoint)
    assert not torch.equal(trained.hf_model.classifier.weight, base.hf_model.classifier.weight)
    log = [json.loads(l) for l in (out / "log.jsonl").read_text().splitlines()]
    assert log[-1]["step"] == 2 and "adapt/cls_acc" in log[-1]


def test_train_command_errors(tmp_path, tiny_checkpoint):
    data = write(tmp_path / "data.jsonl", [{"instruction": "q", "response": "a", "score": 2}])
    result = CliRunner().invoke(adapt.app, ["train", str(data), str(tmp_path / "o"), "--model", str(tiny_checkpoint)])
    assert result.exit_code == 2 and "data.jsonl:1" in result.output
    ok = write(tmp_path / "ok.jsonl", [{"instruction": "q", "response": "a", "score": 1}] * 3)
    result = CliRunner().invoke(adapt.app, ["train", str(ok), str(tmp_path / "o"), "--model", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "nope" in result.output
    result = CliRunner().invoke(adapt.app, ["train", str(ok), str(tmp_path / "o"), "--replay-mix", str(ok)])
    assert result.exit_code == 2 and "together" in result.output
