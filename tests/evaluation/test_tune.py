"""spacy_cortex.evaluation.tune: decoding sweeps on a tiny model and hand-made data."""
import json

import pytest
from typer.testing import CliRunner

from spacy_cortex.evaluation import tune as T
from spacy_cortex.evaluation.evaluator import Evaluator

WNUT = "Obama\tB-person\nvisited\tO\nNew\tB-location\nYork\tI-location\n\nGoogle\tB-corporation\nsaid\tO\n"
CROSSNER = "Turing\tB-researcher\nproposed\tO\nit\tO\n\nin\tO\nNature\tB-academicjournal\n"


def squad_row(i):
    context = f"the patient was given {i} mg atorvastatin"
    start = context.index(f"{i} mg")
    return {"task": "squad", "prompt": "what dose?", "context": context, "cls": None,
            "spans": [[start, start + len(f"{i} mg")]]}


@pytest.fixture
def data(tmp_path):
    (tmp_path / "raw" / "wnut17").mkdir(parents=True)
    (tmp_path / "raw" / "wnut17" / "dev.conll").write_text(WNUT)
    for domain in T.CROSSNER_DOMAINS:
        (tmp_path / "raw" / "crossner" / domain).mkdir(parents=True)
        (tmp_path / "raw" / "crossner" / domain / "dev.txt").write_text(CROSSNER)
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
    settings = [(t, e, specific) for t in T.THRESHOLDS for e in T.EXTEND_THRESHOLDS if e is None or e < t
                for specific in (False, True)]
    assert [(r["threshold"], r["extend_threshold"], r["prefer_specific"]) for r in ner] == settings
    assert (0.8, 0.7, True) in settings and (0.7, 0.7, True) not in settings
    assert {r["template"] for r in ner} == {"Find {label}."}
    assert all(r["p"] == r["r"] == r["f"] == 0.0 for r in ner)  # whole sentences are never gold
    crossner = T.sweep_crossner_dev(ev, data / "raw", "Find {label}.", sentences=2)
    assert [(r["threshold"], r["extend_threshold"], r["prefer_specific"]) for r in crossner] == settings
    assert all(r["f"] == 0.0 for r in crossner)


def test_crossner_dev_averages_the_domains(data, monkeypatch):
    """Each domain is swept with its own labels by name; the rows average P / R / F."""
    seen = []

    def fake_sweep(ev, sentences, template, names):
        seen.append((len(sentences), names))
        f = 0.1 * len(seen)
        return [{"template": template, "threshold": t, "extend_threshold": None, "prefer_specific": False,
                 "p": f, "r": f, "f": f}
                for t in (0.5, 0.7)]
    monkeypatch.setattr(T, "sweep_ner", fake_sweep)
    rows = T.sweep_crossner_dev(None, data / "raw", "Find {label}.", sentences=1)
    assert seen == [(1, {"researcher": "researcher"})] * len(T.CROSSNER_DOMAINS)
    assert [r["threshold"] for r in rows] == [0.5, 0.7]
    assert rows[0]["f"] == pytest.approx(0.3)  # mean of 0.1 ... 0.5


def test_cli(data, tiny_checkpoint):
    result = CliRunner().invoke(T.app, [str(data / "raw"), str(data / "corpus"), "--model", str(tiny_checkpoint),
                                        "--mix", str(data / "mix.json"), "--dev-per-task", "1",
                                        "--squad-questions", "3", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # wasabi wraps long messages
    assert "best answer bias" in output and "WNUT-17 dev, 2 sentences" in output
    assert "CrossNER dev, average of 5 domains" in output and "CrossNER dev: best NER template" in output
    assert "extend_threshold" in output
    assert all(template in output for template in T.NER_TEMPLATES)
