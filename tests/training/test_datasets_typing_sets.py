"""Tests for spacy_cortex.training.datasets.typing_sets (sets with many label names): on the
fixtures in corpus/fixtures, and through convert.run on the real raw corpus where it is here."""
import csv
import json
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from spacy_cortex.corpus import registry as REG
from spacy_cortex.training import convert as C
from spacy_cortex.training import leakage as L
from spacy_cortex.training.datasets import typing_sets as T
from conftest import run_converter

RAW = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "raw"
TASKS = ["btc", "ufet", "smart_types", "stackexchange_tags", "keyphrases", "sgd_intents", "sgd_slots"]
EVAL = {("broad_twitter_corpus", "test"), ("ufet_crowd", "test"), ("smart_answer_types", "dbpedia_test"),
        ("smart_answer_types", "wikidata_test_gold"), ("sgd_schema_guided", "schema_dev"),
        ("sgd_schema_guided", "schema_test")}
real = pytest.mark.skipif(not RAW.is_dir(), reason="the shared raw corpus (../shared/corpus/raw) is not here")


def label_of(prompt, templates):
    """The label filled into one of `templates` ({label} or {a_label}: article dropped); the
    longest matching template wins."""
    best = None
    for t in templates:
        field = "{a_label}" if "{a_label}" in t else "{label}"
        if field not in t or t.count("{") != 1:
            continue
        pre, post = t.split(field)
        if prompt.startswith(pre) and prompt.endswith(post) and len(prompt) > len(pre) + len(post):
            if best is None or len(pre) + len(post) > len(best[0]) + len(best[1]):
                best = (pre, post, field)
    if best is None:
        return None
    label = prompt[len(best[0]):len(prompt) - len(best[1])]
    return re.sub(r"^an? ", "", label) if best[2] == "{a_label}" else label


def check_records(name, recs, whole_groups=True):
    """Well-formed records: exact, trimmed spans inside the context; one positive per group
    (after convert.run, whose guard may drop one record of a group, at most one)."""
    assert recs, name
    groups = defaultdict(list)
    for r in recs:
        assert r["task"] == name and r["prompt"].strip() and r["context"].strip()
        if r["spans"] is not None:
            assert r["cls"] == ("positive" if r["spans"] else "negative")
            for s, e in r["spans"]:
                assert 0 <= s < e <= len(r["context"]) and r["context"][s:e] == r["context"][s:e].strip()
        if "group" in r:
            groups[r["group"]].append(r)
    for members in groups.values():
        positives = sum(m["cls"] == "positive" for m in members)
        assert (len(members) >= 2 and positives == 1) if whole_groups else positives <= 1
        assert len({m["context"] for m in members}) == 1


def check_names_are_words(name, recs):
    """No code-style name reaches a prompt: no dbo: prefix, no snake_case, no CamelCase, no
    hyphenated slug of a tag."""
    for r in recs:
        p = re.sub(r"'.*'", "", r["prompt"]) if name == "ufet" else r["prompt"]  # UFET quotes the mention
        assert "dbo:" not in p and "_" not in p, (name, p)
        assert not re.search(r"\b[a-z]+[A-Z][a-z]+\b", p), (name, p)  # addEvent-style
    if name == "stackexchange_tags":
        tpl = T.settings()["stackexchange"]["prompts"]
        labels = [label_of(r["prompt"], tpl) for r in recs]
        assert all(label and not re.search(r"[a-z]-[a-z]", label) for label in labels)


# ---------------------------------------------------------------- no data needed
def test_words_turn_code_style_names_into_words():
    assert T.words("dbo:MusicalArtist") == "musical artist"
    assert T.words("travel-insurance") == "travel insurance"
    assert T.words("dbo:NCAATeamSeason") == "NCAA team season"
    assert T.words("academic_discipline") == "academic discipline"
    assert T.words("FindRestaurants") == "find restaurants"
    assert T.words("i-94") == "i-94" and T.words("b1-b2-visas") == "b1 b2 visas"
    assert T.names("dbo:Agent")[0] == "person or organisation" and T.names("usa")[0] == "USA"
    assert T.phrase("The amount of money to transfer.") == "amount of money to transfer"
    assert T.phrase("City where bus is leaving from") == "city where bus is leaving from"


def test_hierarchy_negatives_stay_outside_the_gold_lineage():
    rows = [["Type", "Depth", "Parent"], ["dbo:Agent", "1", "owl:Thing"], ["dbo:Person", "2", "dbo:Agent"],
            ["dbo:Artist", "3", "dbo:Person"], ["dbo:Athlete", "3", "dbo:Person"], ["dbo:Place", "1", "owl:Thing"]]
    h = T.Hierarchy(rows, ["date", "number"])
    assert h.ancestors("dbo:Artist") == ["dbo:Person", "dbo:Agent"]
    assert h.descendants("dbo:Agent") == {"dbo:Person", "dbo:Artist", "dbo:Athlete"}
    import random
    rng = random.Random(0)
    wrong = {h.wrong(["dbo:Artist", "dbo:Person", "dbo:Agent"], rng, 0.5) for _ in range(50)}
    assert wrong <= {"dbo:Athlete", "dbo:Place", "date", "number"} and "dbo:Athlete" in wrong
    assert {h.wrong(["date"], rng, 1.0) for _ in range(20)} == {"number"}
    # a Person question (no more specific class) may want any person: no subclass of Person is wrong
    assert {h.wrong(["dbo:Person", "dbo:Agent"], rng, 0.5) for _ in range(50)} <= {"dbo:Place", "date", "number"}


@pytest.mark.parametrize("name", TASKS)
def test_fixture_records(templates, name):
    recs = run_converter(name, templates)
    check_records(name, recs)
    check_names_are_words(name, recs)


def test_eval_splits_refused():
    assert EVAL <= set(REG.eval_splits())
    for name, split in EVAL:
        with pytest.raises(REG.EvalSplitError):
            REG.train_files(RAW, name, split)
        assert callable(L.texts_reader(name, split))


# ---------------------------------------------------------------- the real raw corpus
@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    out = tmp_path_factory.mktemp("typing_sets")
    C.run(RAW, out, TASKS)
    return {name: jsonl(out / f"{name}.jsonl") for name in TASKS}


def jsonl(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@real
def test_real_records_well_formed_capped_and_named_in_words(outputs):
    for name, recs in outputs.items():
        check_records(name, recs, whole_groups=False)
        groups = Counter(r["group"] for r in recs if "group" in r)
        assert sum(n == 1 for n in groups.values()) <= 0.01 * len(groups), name  # few broken by the guard
        check_names_are_words(name, recs)
        assert len(recs) <= T.settings()["cap"]


@real
def test_eval_texts_never_emitted(outputs):
    keys = set()
    for name, split in sorted(EVAL):
        read = L.texts_reader(name, split)
        texts = [L.eval_key(t) for p in REG.eval_files(RAW, name, split) for t in read(p)]
        assert texts or name == "sgd_schema_guided", (name, split)  # the guard reads every EVAL text set
        keys.update(texts)
    keys.discard("")  # as the guard does ('. . .' has no key)
    for name, recs in outputs.items():
        assert not {L.eval_key(r["context"]) for r in recs} & keys, name
    # DBpedia train holds 205 distinct test questions (INDEX.md): all dropped
    test = {L.eval_key(r["question"]) for r in jsonl(RAW / "smart_answer_types" / "dbpedia_test.jsonl")
            if r["question"]}
    shared = {L.eval_key(r["question"]) for r in jsonl(RAW / "smart_answer_types" / "dbpedia_train.jsonl")
              if r["question"]} & test
    assert len(shared) == 205 and not shared & {L.eval_key(r["context"]) for r in outputs["smart_types"]}


@real
def test_btc_spans_are_tagged_entities(outputs):
    entities = set()
    for split in ("train", "dev"):
        for block in (RAW / "broad_twitter_corpus" / f"btc.{split}").read_text(encoding="utf-8").split("\n\n"):
            cur = []
            for line in block.split("\n") + ["\tO"]:
                tok, _, tag = line.rpartition("\t")
                if cur and not tag.startswith("I-"):
                    entities.add(" ".join(cur).strip())
                    cur = []
                if tag[:2] in ("B-", "I-"):
                    cur.append(tok)
    spans = [r["context"][s:e] for r in outputs["btc"] for s, e in r["spans"]]
    assert spans and all(s in entities for s in spans)
    assert "@" in entities and "@" not in spans  # BTC tags the @ of a handle on its own: left out
    share = Counter(r["cls"] for r in outputs["btc"])["negative"] / len(outputs["btc"])
    assert 0.4 < share < 0.6


@real
def test_ufet_spans_are_mentions_and_half_the_types_absent(outputs):
    from spacy_cortex.corpus.readers import mention_sentence
    mentions = defaultdict(set)
    for split in ("train", "dev"):
        for row in jsonl(RAW / "ufet_crowd" / f"{split}.json"):
            text, s, e = mention_sentence(row)
            mentions[text].add((s, e, row["mention_span"]))
    recs = outputs["ufet"]
    for r in recs:
        assert r["context"] in mentions
        for s, e in r["spans"] or ():
            assert (s, e, r["context"][s:e]) in mentions[r["context"]]
    assert 0.45 < Counter(r["cls"] for r in recs)["negative"] / len(recs) < 0.55
    assert 0.2 < sum(r["spans"] is not None for r in recs) / len(recs) < 0.6  # both forms


@real
def test_smart_negatives_outside_the_gold_lineage_siblings_often(outputs):
    conf = T.settings()["smart"]
    h = T.Hierarchy(REG.read_train(RAW, "smart_answer_types", "dbpedia_types"), conf["literal_types"])
    lineage, siblings, golds = defaultdict(set), defaultdict(set), defaultdict(set)
    for r in jsonl(RAW / "smart_answer_types" / "dbpedia_train.jsonl"):
        golds[(r["question"] or "").strip()].update(r["type"] or [])
    for row in REG.read_train(RAW, "smart_answer_types", "qald9_train"):
        if len(row) == 3:
            golds[row[0].strip()].update([row[2].strip()] + h.ancestors(row[2].strip()))
    for q, gold in golds.items():  # a question asked twice (DBpedia, QALD-9): the classes of both rows
        leaves = [t for t in gold if not h.descendants(t).intersection(gold)]
        family = set(gold).union(*(h.descendants(t) for t in leaves))
        lineage[q].update(n for t in family for n in T.names(t))
        siblings[q].update(n for t in gold for s in h.children.get(h.parent.get(t), ()) if s not in family
                           for n in T.names(s))
    negatives = [(r["context"], label_of(r["prompt"], conf["prompts"]))
                 for r in outputs["smart_types"] if r["cls"] == "negative" and r["context"] in lineage]
    assert len(negatives) > 5000
    assert not [n for n in negatives if n[1] in lineage[n[0]]]
    assert sum(label in siblings[q] for q, label in negatives) > 0.3 * len(negatives)


@real
def test_stackexchange_negatives_come_from_the_same_site(outputs):
    site_tags, site_of = {}, {}
    for site in ("cooking", "robotics", "travel"):
        with open(RAW / "stackexchange_tags" / f"{site}.csv", encoding="utf-8", newline="") as f:
            rows = list(csv.DictReader(f))
        site_tags[site] = {n for r in rows for t in r["tags"].split(", ") for n in T.names(t)}
        site_of.update({" ".join(r["title"].split()): site for r in rows})
    tpl = T.settings()["stackexchange"]["prompts"]
    for r in outputs["stackexchange_tags"]:
        assert label_of(r["prompt"], tpl) in site_tags[site_of[" ".join(r["context"].split("\n")[0].split())]]


@real
def test_keyphrase_spans_are_keyphrases(outputs):
    docs = [d for path in (RAW / "keyphrase_liaad").glob("*.jsonl") for d in jsonl(path)]
    keys = {k.lower() for d in docs for k in d["keyphrases"]}
    spans = [r["context"][s:e].lower() for r in outputs["keyphrases"] if r["spans"] for s, e in r["spans"]]
    assert spans and all(s in keys for s in spans)


@real
def test_sgd_slot_spans_are_the_annotated_values(outputs):
    values = defaultdict(set)
    for t in jsonl(RAW / "sgd_schema_guided" / "train_user_turns_sample.jsonl"):
        values[t["utterance"]].update((s["start"], s["exclusive_end"]) for f in t["frames"] for s in f["slots"])
    recs = outputs["sgd_slots"]
    assert all(tuple(span) in values[r["context"]] for r in recs for span in r["spans"])
    assert 0.4 < Counter(r["cls"] for r in recs)["negative"] / len(recs) < 0.65
    intents = outputs["sgd_intents"]
    assert Counter(r["cls"] for r in intents)["positive"] * 3 == len(intents)
