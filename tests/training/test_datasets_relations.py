"""The relation converters (training/datasets/relations.py) on the fixtures in corpus/fixtures
(the first instances of the raw sets), the EVAL splits they must not read and the leakage
guard's readers of those splits."""
import json

import pytest

from spacy_cortex.corpus.registry import EvalSplitError, eval_file, read_train
from spacy_cortex.training import leakage as L
from spacy_cortex.training.datasets import relations as R
from spacy_cortex.training.records import converters
from conftest import CONVERTER_FIXTURES as FIX, run_converter


def asked(record):
    """The span texts of a record."""
    return [record["context"][s:e] for s, e in record["spans"]]


def test_registered():
    for name in ("fewrel_wiki", "fewrel_nyt", "ade", "redocred"):
        assert name in converters.get_all(), name


@pytest.mark.parametrize("name, split", [("fewrel_wiki", "val_wiki"), ("fewrel_nyt", "val_nyt")])
def test_fewrel_positive_with_the_tail_and_a_negative_relation(templates, name, split):
    records = run_converter(name, templates)
    data = json.loads((FIX / "fewrel" / f"{split}.json").read_text())
    names = R.relation_names(FIX)
    instances = [(pid, r) for pid in sorted(data) for r in data[pid]]
    assert len(records) == 2 * len(instances)
    for (pid, r), positive, negative in zip(instances, records[::2], records[1::2]):
        tail = " ".join(r["tokens"][i] for i in r["t"][2][0])
        assert asked(positive) == [tail] and positive["cls"] == "positive"
        assert names[pid] in positive["prompt"]  # the relation by its Wikidata name, as words
        assert not pid.startswith("P") or pid not in positive["prompt"]
        assert negative["spans"] == [] and negative["cls"] == "negative" and names[pid] not in negative["prompt"]
        assert positive["context"] == " ".join(r["tokens"])


def test_ade_asks_each_drug_for_its_effects_and_each_effect_as_a_negative(templates):
    records = run_converter("ade", templates)
    rows = [r for split in ("train", "valid") for r in read_train(FIX, "ade_re", split)]
    assert len(records) == sum(len(r["entities"]) for r in rows)
    assert sum(bool(r["spans"]) for r in records) == sum(e[2] == "Drug" for r in rows for e in r["entities"])
    assert all("adverse effect" in r["prompt"] for r in records)
    first = rows[0]
    effect = " ".join(first["tokens"][first["relations"][0][0]:first["relations"][0][1]])
    drug = " ".join(first["tokens"][first["relations"][0][2]:first["relations"][0][3]])
    assert any(drug in r["prompt"] and effect in asked(r) for r in records)


def test_redocred_document_level_with_every_tail_mention(templates):
    records = run_converter("redocred", templates)
    [doc] = json.loads((FIX / "redocred" / "dev_revised.json").read_text())
    text = " ".join(t for s in doc["sents"] for t in s)
    assert records and all(r["context"] == text for r in records)
    heads = {label["h"] for label in doc["labels"]}
    assert sum(r["spans"] == [] for r in records) <= len(heads)  # at most one negative per head
    label = doc["labels"][0]
    names = R.relation_names(FIX)
    head = doc["vertexSet"][label["h"]][0]["name"]
    [record] = [r for r in records if names[label["r"]] in r["prompt"] and head in r["prompt"] and r["spans"]][:1]
    tails = {m["name"] for m in doc["vertexSet"][label["t"]]}
    assert tails <= set(asked(record))


def test_eval_splits_are_refused_and_have_text_readers():
    for name, split in (("fewrel", "val_pubmed"), ("ade_re", "test")):
        with pytest.raises(EvalSplitError):
            read_train(FIX, name, split)
        texts = list(L.texts_reader(name, split)(eval_file(FIX, name, split)))
        assert texts and all(isinstance(t, str) and " " in t for t in texts)


def test_prompts_are_cortex_rels_without_training_paraphrases():
    import random

    assert R.rel_prompt({}, random.Random(0), "place_of_birth", "Ada") == "Find the place of birth of Ada."
