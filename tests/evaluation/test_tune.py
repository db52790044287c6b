"""spacy_cortex.evaluation.tune: decoding sweeps on a tiny model and hand-made data."""
import json

import pytest
from typer.testing import CliRunner

from spacy_cortex.evaluation import tune as T
from spacy_cortex.evaluation.evaluate import Evaluator

WNUT = "Obama\tB-person\nvisited\tO\nNew\tB-location\nYork\tI-location\n\nGoogle\tB-corporation\nsaid\tO\n"


def squad_row(i):
    context = f"the patient was given {i} mg atorvastatin"
    start = context.index(f"{i} mg")
    return {"task": "squad", "prompt": "what dose?", "context": context, "cls": None,
            "spans": [[start, start + len(f"{i} mg")]]}


@pytest.fixture
def data(tmp_path):
    (tmp_path / "raw" / "wnut17").mkdir(parents=True)
    (tmp_path / "raw" / "wnut17" / "dev.conll").write_text(WNUT)
    (tmp_path / "corpus").mkdir()
    with (tmp_path / "corpus" / "squad.jsonl").open("w") as f:
        for i in range(6):
            f.write(json.dumps(squad_row(i)) + "\n")
    (tmp_path / "mix.json").write_text(json.dumps({"squad": 2}))
    return tmp_path


def test_unused_squad_rows_skip_dev_and_trained_rows(data):
    rows = T.unused_squad_rows(data / "corpus", {"squad": 2}, dev_per_task=1, n=3)
    assert [r["context"] for r in rows] == [squad_row(i)["context"] for i in (3, 4, 5)]
    with pytest.raises(ValueError, match="unused"):
        T.unused_squad_rows(data / "corpus", {"squad": 2}, dev_per_task=1, n=4)


def test_sweeps_cover_every_setting(data, positive_checkpoint):
    ev = Evaluator(data / "raw", str(positive_checkpoint), "fp32")
    bias = T.sweep_answer_bias(ev, T.unused_squad_rows(data / "corpus", {"squad": 2}, 1, 3))
    assert [r["bias"] for r in bias] == list(T.BIASES)
    # every word is "inside": the best span is the longest allowed, containing the answer
    assert all(r["exact"] == 0.0 and 0.0 < r["f1"] < 1.0 for r in bias)
    ner = T.sweep_ner(ev, T.read_bio(data / "raw" / "wnut17" / "dev.conll"), "Find {label}.")
    assert [(r["threshold"], r["prefer_specific"]) for r in ner] == [
        (t, specific) for t in T.THRESHOLDS for specific in (False, True)]
    assert {r["template"] for r in ner} == {"Find {label}."}
    assert all(r["p"] == r["r"] == r["f"] == 0.0 for r in ner)  # whole sentences are never gold


def test_cli(data, tiny_checkpoint):
    result = CliRunner().invoke(T.app, [str(data / "raw"), str(data / "corpus"), "--model", str(tiny_checkpoint),
                                        "--mix", str(data / "mix.json"), "--dev-per-task", "1",
                                        "--squad-questions", "3", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    assert "best answer bias" in result.output and "WNUT-17 dev, 2 sentences" in result.output
    assert all(template in result.output for template in T.NER_TEMPLATES)
