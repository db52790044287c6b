"""The relation sets of `evaluate` (evaluation/sets_relations.py) on the fixtures in corpus/fixtures."""
import json

from spacy_cortex.evaluation.evaluate import SETS
from spacy_cortex.evaluation.evaluator import Evaluator
from spacy_cortex.evaluation.sets_relations import GOLD_KEY, ade_rows, fewrel_rows, gold_doc, strict_scores
from conftest import CONVERTER_FIXTURES as FIX


def test_registered():
    assert {"ade_re", "fewrel_pubmed"} <= set(SETS)


def test_ade_rows_read_drug_to_effect():
    rows = ade_rows(FIX, "test")
    raw = json.loads((FIX / "ade_re" / "test.ADE0.json").read_text())
    words, entities, relations = rows[0]
    (h, t, label) = relations[0]
    effect_start, effect_end, drug_start, drug_end, _ = raw[0]["relations"][0]
    assert (h, t, label) == ((drug_start, drug_end), (effect_start, effect_end), "adverse effect")
    assert {(s, e): kind for s, e, kind in entities}[h] == "drug"


def test_fewrel_rows_head_and_tail_entities():
    rows, labels = fewrel_rows(FIX, "val_pubmed")
    assert labels == sorted(json.loads((FIX / "fewrel" / "val_pubmed.json").read_text()))
    for _, entities, [(head, tail, label)] in rows:
        assert [e[2] for e in entities] == ["head", "tail"] and label in labels
        assert (head, tail) == (entities[0][:2], entities[1][:2])


def test_gold_docs_score_themselves_perfectly(tiny_checkpoint):
    ev = Evaluator(FIX, str(tiny_checkpoint), precision="fp32")
    gold = [gold_doc(ev, row) for row in ade_rows(FIX, "test")]
    assert all(doc.spans[GOLD_KEY] for doc in gold)
    assert strict_scores(gold, gold) == {"p": 1.0, "r": 1.0, "f": 1.0}


def test_sets_run_end_to_end(positive_checkpoint):
    ev = Evaluator(FIX, str(positive_checkpoint), precision="fp32")
    ade = SETS["ade_re"](ev)
    # every token inside: the one candidate tail of each drug is found, so with gold entities
    # every relation is (recall 1); end to end the whole sentence is one entity: nothing strict
    assert ade["metrics"]["given_r"] == 1.0 and ade["n"] == len(ade_rows(FIX, "test"))
    assert ade["metrics"]["e2e_f"] == 0.0
    fewrel = SETS["fewrel_pubmed"](ev)
    rows, labels = fewrel_rows(FIX, "val_pubmed")
    assert fewrel["metrics"]["r"] == 1.0  # the tail is marked for every relation asked
    assert fewrel["metrics"]["p"] == 1 / len(labels)
    assert set(fewrel["per_relation_f"]) == set(labels)



def test_tune_rel_char_items_and_trained_texts(tmp_path):
    from spacy_cortex.evaluation.tune_rel import char_item, trained_texts, unseen

    text, ents, gold = char_item(["Aspirin", "caused", "severe", "rash"], [(0, 1, "drug"), (2, 4, "effect")],
                                 [((0, 1), (2, 4), "P1")], {"P1": "causes"})
    assert text == "Aspirin caused severe rash"
    assert [text[s:e] for s, e, _ in ents] == ["Aspirin", "severe rash"]
    assert gold == {((0, 7, "drug"), (15, 26, "effect"), "causes")}
    rows = [{"context": c} for c in ("dev row", "Aspirin  caused severe rash", "third", "past the count")]
    (tmp_path / "ade.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    trained = trained_texts(tmp_path, "ade", {"ade": 2}, dev_per_task=1)
    assert trained == {"Aspirin caused severe rash", "third"}
    assert unseen([(text, ents, gold), ("past the count", [], set())], trained) == [("past the count", [], set())]
    assert trained_texts(tmp_path, "fewrel_nyt", {"ade": 2}, 1) == set()


def test_tune_rel_sweeps_both_sets(positive_checkpoint, tmp_path, monkeypatch):
    from typer.testing import CliRunner
    from spacy_cortex.evaluation import tune_rel
    from spacy_cortex.evaluation.tune_rel import app

    monkeypatch.setattr(tune_rel, "GATES", (0.0, 1.0))  # the positive model's [CLS] is just below 1

    mix = tmp_path / "mix.json"
    mix.write_text("{}")
    out = CliRunner().invoke(app, [str(FIX), str(tmp_path), "--model", str(positive_checkpoint), "--mix", str(mix),
                                   "--precision", "fp32"])
    assert out.exit_code == 0, out.output
    n_ade = len(ade_rows(FIX, "valid"))
    assert f"ADE valid, gold entities, {n_ade} untrained sentences" in out.output
    assert "FewRel val_nyt, all 2 relations asked" in out.output
    # every token inside: every gold tail found on ADE (recall 100) at every threshold, none behind a gate of 1
    ade = [line.split() for line in out.output.split("FewRel")[0].splitlines() if line[:1].isdigit()]
    assert len(ade) == 8 and {row[4] for row in ade if row[2] == "0.0"} == {"100.0"}
    assert {row[4] for row in ade if row[2] == "1.0"} == {"0.0"}
