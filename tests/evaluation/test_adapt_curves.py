"""Learning curves of `adapt` (evaluation/adapt_curves.py): sampling, records, the summary,
and a whole textcat curve with a tiny model."""
import csv
import json

from typer.testing import CliRunner

from spacy_cortex.evaluation import adapt_curves
from spacy_cortex.evaluation.adapt_curves import app, markdown, sample, span_line, summary_rows, training_record

INTENTS = {"card_arrival": ["Where is my card?", "My card has not come yet.", "Card still not here."],
           "exchange_rate": ["What is the euro rate?", "How much is a dollar in pounds?", "Rate for yen today?"]}


def test_sample_per_label_is_seeded_and_nested():
    pool = [(f"t{i}", [label]) for i in range(10) for label in ("a", "b")]
    five, two = sample(pool, "5", 1, per_label=True), sample(pool, "2", 1, per_label=True)
    assert sorted(label for _, (label,) in five) == ["a"] * 5 + ["b"] * 5
    assert all(row in five for row in two) and len(two) == 4
    assert sample(pool, "3", 1) == sample(pool, "3", 1) and len(sample(pool, "all", 0)) == 20


def test_training_records_as_adapt_reads_them():
    words, tags = ["Ada", "Lovelace", "wrote", "."], ["B-PER", "I-PER", "O", "O"]
    assert training_record((words, tags), {"PER": "person"}, "ner") == span_line(words, tags, {"PER": "person"}) \
        == {"text": "Ada Lovelace wrote .", "spans": [{"start": 0, "end": 12, "label": "person"}]}
    assert training_record(("Where is my card?", ["card arrival"]), {}, "textcat") == \
        {"text": "Where is my card?", "label": "card arrival"}


def test_summary_means_over_seeds_and_forgetting_as_change():
    runs = [{"set": "banking77", "size": "5", "lr": 3e-5, "replay_share": 0.3, "train_seconds": t,
             "test_best": {"score": s}, "test_last": {"score": s - 0.1}, "forgetting": {"conll2003": 0.8, "sst2": 0.9}}
            for s, t in ((0.6, 10.0), (0.8, 20.0))]
    base = {"conll2003": 0.81, "sst2": 0.88}
    rows = summary_rows(runs, {"banking77": {"score": 0.5}}, base)
    assert rows[0]["test_best"] == 0.5 and rows[0]["size"] == "0 (before adapting)"  # banking77 was trained on
    assert abs(rows[1]["test_best"] - 0.7) < 1e-9 and abs(rows[1]["test_sd"] - 0.1) < 1e-9
    assert abs(rows[1]["delta_sst2"] - 0.02) < 1e-9 and rows[1]["train_seconds"] == 15.0
    table = markdown(rows, base)
    assert "| banking77 | 5 | 3e-05 | 0.3 | 1.0 | 2 | 70.0 (10.0) | 60.0 | 15 | -1.0 | +2.0 |" in table
    merged = summary_rows([dict(runs[0], merge_weight=0.5)] + runs, {}, base)  # a merge weight is its own row
    assert [(r["merge_weight"], r["seeds"]) for r in merged] == [(0.5, 1), (1.0, 2)]


def test_a_textcat_curve_end_to_end(tmp_path, tiny_checkpoint, monkeypatch):
    """The whole command on a two-intent banking77 with a tiny model; the CoNLL / SST-2
    forgetting check is evaluate's (tested there), replaced here by fixed figures."""
    raw = tmp_path / "raw"
    (raw / "banking77").mkdir(parents=True)
    for split, rows in (("train", [(t, k) for k, texts in INTENTS.items() for t in texts]),
                        ("test", [(texts[0], k) for k, texts in INTENTS.items()])):
        with (raw / "banking77" / f"{split}.csv").open("w", newline="", encoding="utf-8") as f:
            csv.writer(f).writerows([("text", "category"), *rows])
    monkeypatch.setattr(adapt_curves, "forgetting_scores", lambda *args: {"conll2003": 0.8, "sst2": 0.9})
    out = CliRunner().invoke(app, [str(raw), str(tmp_path / "out"), "--sets", "banking77", "--sizes", "2",
                                   "--seeds", "0", "--minutes", "0.03", "--model", str(tiny_checkpoint),
                                   "--precision", "fp32", "--merge-weights", "1,0.5"])
    assert out.exit_code == 0, out.output
    report = json.loads((tmp_path / "out" / "adapt_curves.json").read_text())
    run, merged = report["runs"]
    assert (run["merge_weight"], merged["merge_weight"]) == (1.0, 0.5) and run["steps"] == merged["steps"]
    assert not list((tmp_path / "out" / "runs").glob("*/merged-*"))  # scored, then deleted
    written = [json.loads(line) for line in (tmp_path / "out" / "runs" / "banking77-2-seed0-lr0.0001-replay0.3"
                                             / "train.jsonl").read_text().splitlines()]
    assert sorted(r["label"] for r in written) == ["card arrival"] * 2 + ["exchange rate"] * 2
    assert 0.0 <= run["test_best"]["accuracy"] <= 1.0 and run["test_best"]["score"] == run["test_best"]["accuracy"]
    assert [r["size"] for r in report["summary"]] == ["0 (before adapting)", "2", "2"]
    assert "| banking77 | 2 |" in out.output
