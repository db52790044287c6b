"""spacy_cortex.evaluation.evaluate and its sets (evaluator, rows, sets_spans, sets_scores): label
names, subsets, and tiny end-to-end runs on fixture files in the raw formats (never the shared corpus)."""
import json
import math
from pathlib import Path

import numpy as np
import pytest

from spacy_cortex import api
from spacy_cortex.corpus.readers import read_bio
from spacy_cortex.evaluation import evaluate as E
from spacy_cortex.evaluation import rows as ROWS
from spacy_cortex.evaluation.evaluator import Evaluator, eval_labels, ner_label_names, rename_tag, subset
from spacy_cortex.evaluation.sets_scores import choice_set
from spacy_cortex.evaluation.sets_spans import VERIFY_THRESHOLDS, eval_long_text, eval_ner
from spacy_cortex.templates import TEMPLATES_DIR, task_template
from spacy_cortex.training.datasets.tasks import WINOGRANDE_QUESTIONS

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evaluate"


def test_label_name_map():
    assert ner_label_names("crossner", ["programlang", "musicalartist"]) == {
        "musicalartist": "musical artist", "programlang": "programming language"}
    assert ner_label_names("mit_movie", ["ACTOR"]) == {"ACTOR": "actor"}
    assert ner_label_names("mit_restaurant", ["Restaurant_Name"]) == {"Restaurant_Name": "restaurant name"}
    assert ner_label_names("conll", ["PER", "LOC", "ORG", "MISC"]) == {
        "PER": "person", "LOC": "location", "ORG": "organization", "MISC": "miscellaneous entity"}
    with pytest.raises(KeyError, match="nolabel"):
        ner_label_names("crossner", ["nolabel"])
    for scheme in eval_labels()["ner"].values():
        for name in scheme["labels"].values():
            assert name == name.lower().strip() and "_" not in name


def test_conll_names_are_trained_prompts():
    """The CoNLL names used at evaluation are among the names NER training prompted with."""
    trained = json.loads((TEMPLATES_DIR / "training_prompts.json").read_text())
    names = {n for names in trained["ner_labels"]["conll"].values() for n in names}
    assert set(eval_labels()["ner"]["conll"]["labels"].values()) <= names
    assert task_template("ner") in trained["ner"]


def test_subset_is_deterministic_nested_and_ordered():
    rows = list(range(100))
    small, large = subset(rows, 10), subset(rows, 30)
    assert small == subset(rows, 10) and small == sorted(small)
    assert set(small) <= set(large)
    assert subset(rows, 500) == rows


def test_gold_tags_are_renamed_to_the_label_names():
    names = {"musicalartist": "musical artist", "PER": "person"}
    assert [rename_tag(t, names) for t in ["B-musicalartist", "I-musicalartist", "O", "B-PER"]] == [
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
    real = Evaluator.run_component
    monkeypatch.setattr(Evaluator, "run_component",
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


def test_joined_ner_reads_sentences_in_file_order_as_paragraphs(positive_checkpoint, monkeypatch):
    """conll2003_joined: the first sentences joined `joined` at a time into one doc, in
    file order."""
    sentences = read_bio(FIXTURES / "conll2003" / "test.txt")
    seen = []
    real = Evaluator.run_component
    monkeypatch.setattr(Evaluator, "run_component",
                        lambda self, factory, config, docs: seen.extend(docs) or real(self, factory, config, docs))
    ev = Evaluator(FIXTURES, str(positive_checkpoint), precision="fp32")
    report = eval_ner(ev, "conll2003", "test", "conll", default=len(sentences), joined=2)
    assert report["n"] == math.ceil(len(sentences) / 2)
    assert [d.text for d in seen] == [" ".join(w for words, _ in sentences[i : i + 2] for w in words)
                                      for i in range(0, len(sentences), 2)]
    assert f"first {len(sentences)} sentences in file order joined 2 at a time" in report["protocol"]
    assert report["metrics"]["ents_f"] == 0.0  # one span over each whole doc matches no gold entity


def test_long_text_agreement(positive_checkpoint):
    """A model that marks every word: each paragraph is one span. Joined by blank or line
    breaks the paragraphs keep their spans (agreement 1.0); joined by spaces they become one
    span (agreement 0)."""
    ev = Evaluator(FIXTURES, str(positive_checkpoint), precision="fp32")
    report = eval_long_text(ev)
    assert report["n"] == 3
    assert report["metrics"]["blank_line_f"] == pytest.approx(1.0)
    assert report["metrics"]["line_break_f"] == pytest.approx(1.0)
    assert report["metrics"]["space_f"] == 0.0
    assert report["counts"]["space"] == {"paragraphs": 3, "joined": 1, "shared": 0, "chars": 186}


class FakeBiencoder:
    """Embeds a text as the one-hot of its first word's first letter: a query is 'similar'
    to the options that start with the same letter."""

    def embed(self, texts, layer=-1):
        out = np.zeros((len(texts), 26))
        for i, t in enumerate(texts):
            out[i, ord(t.strip().lower()[0]) - ord("a")] = 1.0
        return out


def test_choice_readers():
    raw = FIXTURES
    assert ROWS.commonsenseqa_rows(raw) == [("What does a happy cat do?", ["bark", "purr loudly", "fly"], 1),
                                         ("Where does the sun rise?", ["east", "down"], 0)]
    # the row whose choices do not parse is left out
    assert ROWS.openbookqa_rows(raw) == [
        ("Fog forms most often around", ["a marsh", "a desert", "the plains", "a tundra"], 0),
        ("Plants need", ["rocks", "sunlight", "plastic", "noise"], 1)]
    first = ROWS.winogrande_rows(raw)[0]
    assert first == ("Sarah was a better surgeon than Maria so _ got the easier cases.\n"
                     + WINOGRANDE_QUESTIONS[0], ["Sarah", "Maria"], 1)


def test_choice_set_through_select(tiny_checkpoint, monkeypatch):
    """argmax of the scores per item, all items in one batched call; random = mean 1/k;
    the bi-encoder column beside it."""
    ev = Evaluator(FIXTURES, str(tiny_checkpoint), precision="fp32")
    calls = []

    def score_batch(items, model=None):
        calls.append((items, model))
        return [[len(c) for c in cands] for _, cands in items]  # the longest candidate wins

    monkeypatch.setattr(api, "score_batch", score_batch)
    ev.biencoder = None
    report = choice_set(ev, ROWS.commonsenseqa_rows, 1221, "CSQA")
    assert report["n"] == 2 and len(calls) == 1 and calls[0][1] is ev.model
    # "purr loudly" (gold) and "east" (gold, longer than "down")
    assert report["metrics"]["accuracy"] == 1.0
    assert report["metrics"]["random"] == pytest.approx((1 / 3 + 1 / 2) / 2)
    assert report["metrics"]["biencoder"] is None
    ev.biencoder = FakeBiencoder()
    # "Where ..." matches no option's letter (argmax 0 = east, right); "What ..." neither (bark, wrong)
    assert choice_set(ev, ROWS.commonsenseqa_rows, 1221, "CSQA")["metrics"]["biencoder"] == 0.5


def test_topic_set_with_biencoder_baseline(tiny_checkpoint):
    ev = Evaluator(FIXTURES, str(tiny_checkpoint), precision="fp32")
    ev.biencoder = FakeBiencoder()
    report = E.SETS["ag_news"](ev)
    assert report["n"] == 3
    # label texts: world news, sports, business, science and technology; the texts start with
    # S (sports, right), N (no match: world news, wrong), S (sports, wrong: business)
    assert report["metrics"]["biencoder"] == pytest.approx(1 / 3)
    assert 0.0 <= report["metrics"]["accuracy"] <= 1.0
    assert "biencoder" in report["protocol"]


SMALL_PACKAGE = "cortex_test_proposer"  # a pipeline package built in the test, not a third-party model


@pytest.fixture
def small_proposer(tmp_path, monkeypatch):
    """A stand-in for en_core_web_sm, built here: a pip-style package (import name and
    dist-info, so spacy.load finds it by name, as it finds en_core_web_sm) whose `ner` (the
    component the verify set enables beside tok2vec) is an EntityRuler with OntoNotes labels
    that proposes four right entities of the wikigold fixture and one of the wrong type."""
    import spacy
    from spacy_cortex.evaluation import sets_spans

    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("entity_ruler", name="ner")
    ruler.add_patterns([{"label": "PERSON", "pattern": "Nadim Ladki"}, {"label": "GPE", "pattern": "United Arab Emirates"},
                        {"label": "ORG", "pattern": "European Commission"}, {"label": "NORP", "pattern": "German"},
                        {"label": "PERSON", "pattern": "JAPAN"}])  # wrong: a location
    package = tmp_path / "site" / SMALL_PACKAGE
    package.mkdir(parents=True)
    nlp.to_disk(package / "pipeline")
    (package / "__init__.py").write_text(
        "from pathlib import Path\n"
        "from spacy.util import load_model_from_path\n\n\n"
        "def load(**overrides):\n"
        "    return load_model_from_path(Path(__file__).parent / 'pipeline', **overrides)\n")
    info = tmp_path / "site" / f"{SMALL_PACKAGE}-0.0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {SMALL_PACKAGE}\nVersion: 0.0.0\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(sets_spans, "SPACY_SMALL", SMALL_PACKAGE)
    return SMALL_PACKAGE


def test_verify_set_skips_without_the_proposer(positive_checkpoint, monkeypatch):
    from spacy_cortex.evaluation import sets_spans

    monkeypatch.setattr(sets_spans, "SPACY_SMALL", "no_such_spacy_package_here")
    skipped = E.SETS["verify_wikigold"](Evaluator(FIXTURES, str(positive_checkpoint), precision="fp32"))
    assert skipped["n"] == 0 and "skipped" in skipped["protocol"]


def test_verify_set(positive_checkpoint, negative_checkpoint, small_proposer):
    """A proposer (en_core_web_sm in the real evaluation; here an EntityRuler package built in
    the test) proposes, cortex_verify keeps all (a model that says yes to every word) or none
    (no to every word) of them."""
    kept = E.SETS["verify_wikigold"](Evaluator(FIXTURES, str(positive_checkpoint), precision="fp32"))
    m = kept["metrics"]
    assert kept["n"] == 4 and m["before_f"] > 0
    assert (m["after_f"], m["after_p"], m["after_r"]) == (m["before_f"], m["before_p"], m["before_r"])
    assert set(kept["sweep"]) == {str(t) for t in VERIFY_THRESHOLDS}
    assert kept["label_map"]["GPE"] == "LOC"
    rejected = E.SETS["verify_wikigold"](Evaluator(FIXTURES, str(negative_checkpoint), precision="fp32"))
    assert rejected["metrics"]["before_f"] == m["before_f"]
    assert rejected["metrics"]["after_r"] == 0.0 and rejected["metrics"]["best_f"] == 0.0
