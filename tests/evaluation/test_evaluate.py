"""spacy_cortex.evaluation.evaluate: metric helpers, label names, and a tiny end-to-end run on
fixture files in the raw formats (never the shared corpus)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from spacy_cortex.evaluation import evaluate as E

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evaluate"


def test_rankdata_averages_ties():
    assert E.rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman():
    assert E.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert E.spearman([1, 2, 3, 4], [9, 7, 3, 1]) == pytest.approx(-1.0)
    # monotone but non-linear: Spearman 1, Pearson < 1
    assert E.spearman([1, 2, 3, 4], [1, 8, 27, 1000]) == pytest.approx(1.0)
    # with ties: scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9486832980505138
    assert E.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138)
    assert math.isnan(E.spearman([1, 1, 1], [1, 2, 3]))
    assert E.result({"spearman": float("nan")}, 3, "p")["metrics"]["spearman"] is None  # JSON null


def test_reciprocal_rank_and_average_precision():
    assert E.reciprocal_rank([0, 0, 1, 1]) == pytest.approx(1 / 3)
    assert E.reciprocal_rank([1, 0]) == 1.0
    assert E.reciprocal_rank([0, 0]) == 0.0
    assert E.average_precision([0, 1, 0, 1]) == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_ndcg_at_k():
    gains = {"a": 1.0, "b": 1.0}
    assert E.ndcg_at_k(["a", "b", "c"], gains) == pytest.approx(1.0)
    assert E.ndcg_at_k(["c", "d"], gains) == 0.0
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert E.ndcg_at_k(["c", "a", "x"], gains) == pytest.approx(expected)
    # a relevant document below the cut-off does not count; the ideal still holds it
    assert E.ndcg_at_k(["x", "a", "b"], gains, k=1) == 0.0
    assert E.ndcg_at_k(["a", "x", "b"], gains, k=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_bm25_ordering():
    docs = [
        "cats purr and sleep all day",
        "the stock market fell sharply",
        "dogs bark; cats purr; cats climb trees",
        "the the the the the",
    ]
    bm25 = E.BM25(docs)
    assert bm25.top("cats purr", 2) == [2, 0]  # more matching terms in 2, short doc 0 next
    assert bm25.top("stock market", 1) == [1]
    scores = bm25.scores("unknownword")
    assert not scores.any()
    # a rare word outweighs a common one
    assert bm25.scores("market")[1] > bm25.scores("the")[1]
    # ties broken by document order
    assert bm25.top("unknownword", 4) == [0, 1, 2, 3]


def test_iob1_to_iob2():
    assert E.iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-ORG", "B-ORG", "I-ORG"
    ]


def test_read_bio_maps_tags_and_skips_docstart(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("-DOCSTART- O\n\nJohn I-PER\nlives O\nin O\nParis I-LOC\n\nThe\tO\nUN\tB-organisation\n")
    sents = E.read_bio(path, {"organisation": "ORG"})
    assert sents == [(["John", "lives", "in", "Paris"], ["B-PER", "O", "O", "B-LOC"]),
                     (["The", "UN"], ["O", "B-ORG"])]


def test_label_name_map():
    assert E.ner_label_names("crossner", ["programlang", "musicalartist"]) == {
        "musicalartist": "musical artist", "programlang": "programming language"}
    assert E.ner_label_names("mit_movie", ["ACTOR"]) == {"ACTOR": "actor"}
    assert E.ner_label_names("mit_restaurant", ["Restaurant_Name"]) == {"Restaurant_Name": "restaurant name"}
    assert E.ner_label_names("conll", ["PER", "LOC", "ORG", "MISC"]) == {
        "PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous entity"}
    with pytest.raises(KeyError, match="nolabel"):
        E.ner_label_names("crossner", ["nolabel"])
    for scheme in E.eval_labels()["ner"].values():
        for name in scheme["labels"].values():
            assert name == name.lower().strip() and "_" not in name


def test_conll_names_are_trained_prompts():
    """The CoNLL names used at evaluation are among the names NER training prompted with."""
    trained = json.loads((E.TEMPLATES_DIR / "training_prompts.json").read_text())
    names = {n for names in trained["ner_labels"]["conll"].values() for n in names}
    assert set(E.eval_labels()["ner"]["conll"]["labels"].values()) <= names
    assert E.task_template("ner") in trained["ner"]


def test_subset_is_deterministic_nested_and_ordered():
    rows = list(range(100))
    small, large = E.subset(rows, 10), E.subset(rows, 30)
    assert small == E.subset(rows, 10) and small == sorted(small)
    assert set(small) <= set(large)
    assert E.subset(rows, 500) == rows


def test_gold_tags_are_renamed_to_the_label_names():
    names = {"musicalartist": "musical artist", "PER": "person"}
    assert [E.rename_tag(t, names) for t in ["B-musicalartist", "I-musicalartist", "O", "B-PER"]] == [
        "B-musical artist", "I-musical artist", "O", "B-person"]


def test_unknown_set_is_an_error(tiny_checkpoint):
    with pytest.raises(ValueError, match="Unknown sets"):
        E.evaluate(FIXTURES, str(tiny_checkpoint), sets=["nope"])


def test_end_to_end_two_sets(tiny_checkpoint, tmp_path):
    out = tmp_path / "metrics.json"
    report = E.main([str(FIXTURES), "--model", str(tiny_checkpoint), "--output", str(out),
                     "--sets", "conll2003,stsb", "--precision", "fp32"])
    saved = json.loads(out.read_text())
    assert saved == json.loads(json.dumps(report))
    sets = saved["sets"]
    assert set(sets) == {"conll2003", "stsb"}
    assert sets["conll2003"]["n"] == 4 and sets["stsb"]["n"] == 5
    # labels are given to cortex_ner by name, as a user would
    assert sets["conll2003"]["label_names"] == {
        "LOC": "location", "MISC": "miscellaneous entity", "ORG": "organization", "PER": "person"}
    for name, entry in sets.items():
        assert entry["protocol"]
        for value in entry["metrics"].values():
            assert value is None or np.isfinite(value)
    assert 0.0 <= sets["conll2003"]["metrics"]["ents_f"] <= 1.0
    assert sets["stsb"]["metrics"]["spearman"] is None or -1 <= sets["stsb"]["metrics"]["spearman"] <= 1
    # --quick and --limit-scale shrink every N (at least one row each)
    quick = E.main([str(FIXTURES), "--model", str(tiny_checkpoint), "--output", str(out),
                    "--sets", "conll2003", "--limit-scale", "0.02", "--quick"])
    assert quick["sets"]["conll2003"]["n"] == 2  # 1000 x 0.02 x 0.1


def test_ner_settings_reach_cortex_ner(tiny_checkpoint, tmp_path, monkeypatch):
    configs = []
    real = E.Evaluator.run_component
    monkeypatch.setattr(E.Evaluator, "run_component",
                        lambda self, factory, config, docs: configs.append(config) or real(self, factory, config, docs))
    report = E.main([str(FIXTURES), "--model", str(tiny_checkpoint), "--output", str(tmp_path / "m.json"),
                     "--sets", "conll2003", "--ner", "prefer_specific=false", "--ner", "threshold=0.8"])
    assert configs[-1]["prefer_specific"] is False and configs[-1]["threshold"] == 0.8
    assert report["ner_config"] == {"prefer_specific": False, "threshold": 0.8}
    assert "'threshold': 0.8" in report["sets"]["conll2003"]["protocol"]
    for bad in (["--ner", "threshold"], ["--ner", "threshold=1.5"], ["--ner", "thresh=0.8"],
                ["--ner", 'labels=["x"]'], ["--sets", "nope"]):  # usage errors before any set runs
        with pytest.raises(SystemExit) as exit_info:
            E.main([str(FIXTURES), "--model", str(tiny_checkpoint), "--output", str(tmp_path / "bad.json"), *bad])
        assert exit_info.value.code == 2
    assert not (tmp_path / "bad.json").exists()
