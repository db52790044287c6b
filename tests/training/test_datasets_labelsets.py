"""training/datasets/labelsets.py: the round-3 label sets as label prompts (issue 24, item 2).
The label tables and the converters on the small fixtures always run; the converters on the
real raw sets (../shared/corpus/raw beside the repository) only where that folder exists."""
import builtins
import csv
import json
import random
import statistics
from collections import defaultdict
from functools import lru_cache
from pathlib import Path

import pytest

from spacy_cortex.corpus import registry as REG
from spacy_cortex.training import convert as C
from spacy_cortex.training import leakage as L
from spacy_cortex.training.datasets import labelsets as LS
from spacy_cortex.training.records import NEG, POS
from conftest import run_converter

RAW = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "raw"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason=f"the shared raw corpus is not here ({RAW} is missing)")
TASKS = ["goemotions", "semeval_ec", "olid", "davidson", "politeness", "clickbait", "sms_spam", "irony",
         "crisis_sandy", "swda", "dailydialog_act", "dailydialog_emotion", "atis_intent"]
MULTI_LABEL = {"goemotions", "semeval_ec", "olid", "davidson", "atis_intent"}
EVAL_SPLITS = {("goemotions", "test"), ("olid", "test_a"), ("olid", "test_b"), ("olid", "test_c"),
               ("tweeteval_irony", "test"), ("swda", "test"), ("dailydialog", "test"), ("atis", "test"),
               ("bbc_news", "val"), ("bbc_news", "test"), ("tweeteval_stance", "train"), ("tweeteval_stance", "val"),
               ("tweeteval_stance", "test"), ("symptom2disease", "all")}
SETS = LS.label_sets()["sets"]


@pytest.fixture(scope="module")
def decode(templates):
    """prompt -> the (task, label) pairs it can stand for, over every set's names and descriptions."""
    data, out = LS.label_sets(), defaultdict(set)
    for task, spec in SETS.items():
        family = data["templates"].get(spec["template"]) or templates[spec["template"]]
        for label, entry in spec["labels"].items():
            for tpl, words in [(t, entry["names"]) for t in family] + \
                              [(t, entry["descriptions"]) for t in data["templates"]["description"]]:
                for word in words:
                    out[tpl.format(label=word)].add((task, label))
    return out


def groups_of(records):
    out = defaultdict(list)
    for r in records:
        out[r["group"]].append(r)
    return out


ROW_READERS = {"goemotions": LS.goemotions_rows, "semeval_ec": LS.semeval_rows, "olid": LS.olid_rows,
               "davidson": LS.davidson_rows, "politeness": LS.politeness_rows, "clickbait": LS.clickbait_rows,
               "sms_spam": LS.sms_rows, "irony": LS.irony_rows, "crisis_sandy": LS.crisis_rows,
               "swda": LS.swda_rows, "atis_intent": LS.atis_rows,
               "dailydialog_act": lambda raw: LS.dailydialog_rows(raw, 1),
               "dailydialog_emotion": lambda raw: LS.dailydialog_rows(raw, 2)}


@lru_cache(maxsize=None)
def gold(task):
    """{text: gold labels} of a set's raw training rows, as the converter cleans them (implied labels added)."""
    return {text: set(golds) for text, golds in LS.clean_rows(task, ROW_READERS[task](RAW))}


# ---------------------------------------------------------------- the label tables (data)
def test_registered():
    for task in TASKS:
        assert task in C.converters.get_all(), task
    assert set(SETS) == set(TASKS)


def test_label_tables_are_words_and_distinct(templates):
    data = LS.label_sets()
    for task, spec in SETS.items():
        assert data["templates"].get(spec["template"]) or templates.get(spec["template"]), task
        seen = {}
        for label, entry in spec["labels"].items():
            assert entry["names"] and entry["descriptions"], (task, label)
            for word in entry["names"] + entry["descriptions"]:
                assert word.strip() == word and word and "_" not in word and "{" not in word, (task, word)
                assert seen.setdefault(word, label) == label, (task, word, "names two labels")
            assert not any(d.endswith((".", "?", "!")) for d in entry["descriptions"])  # templates end them
            assert set(entry.get("implies", ())) <= set(spec["labels"]) - {label}
        assert not set(spec.get("drop", ())) & set(spec["labels"])


def test_near_and_contrast_references_resolve():
    near = LS.near_labels()
    assert set(near["near"]) <= set(SETS)
    for task, groups in near["near"].items():
        for group in groups:
            assert len(group) >= 2 and set(group) <= set(SETS[task]["labels"]), (task, group)
    assert LS.near_map("goemotions")["anger"] >= {"annoyance", "disgust"}
    for key, refs in near["contrasts"].items():
        task, label = LS.parse_ref(key)
        own = set(SETS[task]["labels"][label]["names"])
        for task2, label2 in map(LS.parse_ref, refs):
            assert task2 != task and label2 in SETS[task2]["labels"], (key, task2, label2)
            assert not own & set(SETS[task2]["labels"][label2]["names"]), (key, label2)


def test_text_records_one_positive_per_group(templates):
    rng = random.Random(1)
    single = list(LS.text_records("goemotions", "text", ("anger",), templates, rng))
    assert [r["cls"] for r in single].count(POS) == 1 and len(single) >= 1 + LS.N_NEG
    assert len({r["group"] for r in single}) == 1
    multi = list(LS.text_records("goemotions", "text", ("anger", "joy", "love"), templates, rng))
    for members in groups_of(multi).values():
        assert members[0]["cls"] == POS and [r["cls"] for r in members].count(POS) == 1
    assert len(groups_of(multi)) == 3


def test_negatives_prefer_near_labels_and_skip_gold():
    for seed in range(30):
        negs = LS.negatives("goemotions", ["anger"], random.Random(seed))
        in_set = [label for task, label in negs if task == "goemotions"]
        assert in_set[0] in LS.near_map("goemotions")["anger"] and "anger" not in in_set
        assert len(in_set) == LS.N_NEG and len(set(in_set)) == len(in_set)
    negs = LS.negatives("davidson", ["2"], random.Random(0))
    assert {label for task, label in negs if task == "davidson"} == {"0", "1"}
    crosses = {n for seed in range(40) for n in LS.negatives("davidson", ["2"], random.Random(seed)) if n[0] != "davidson"}
    assert crosses and crosses <= {LS.parse_ref(r) for r in LS.near_labels()["contrasts"]["davidson/2"]}


def test_balanced_covers_rare_labels_first():
    rows = [(f"a{i}", ("a",)) for i in range(50)] + [("b0", ("b",)), ("c0", ("c", "a"))]
    first = list(LS.balanced(rows, random.Random(0)))[:4]
    assert {"b0", "c0"} <= {t for t, _ in first}
    assert len(list(LS.balanced(rows, random.Random(0)))) == len(rows)


@pytest.mark.parametrize("task", TASKS)
def test_fixture_records_well_grouped(templates, decode, task):
    """On the fixtures (corpus/fixtures, the sets' first rows): every prompt comes from the
    tables, every group has exactly one positive."""
    records = run_converter(task, templates)
    assert records
    for members in groups_of(records).values():
        assert [r["cls"] for r in members].count(POS) == 1
    for r in records:
        assert r["task"] == task and r["spans"] is None and decode[r["prompt"]], r["prompt"]


def test_registry_declares_the_eval_splits():
    assert EVAL_SPLITS <= set(REG.eval_splits())
    for name, split in EVAL_SPLITS:
        with pytest.raises(REG.EvalSplitError):
            REG.read_train(RAW, name, split)
        assert callable(L.texts_reader(name, split))
    assert ("swda", "val") not in set(REG.eval_splits())  # not EVAL, but no converter reads it


# ---------------------------------------------------------------- on the real raw sets
@pytest.fixture(scope="module")
def raw_records(templates):
    """Each converter once over the raw sets (seeded), and the files it opened."""
    opened, real_open, out = [], builtins.open, {}

    def spy(path, *a, **kw):
        opened.append(str(path))
        return real_open(path, *a, **kw)

    builtins.open = spy
    try:
        for task in TASKS:
            out[task] = list(C.converters.get(task)(RAW, templates, random.Random(f"0:{task}")))
    finally:
        builtins.open = real_open
    return out, opened


@needs_raw
def test_raw_eval_files_never_opened(raw_records):
    _, opened = raw_records
    eval_paths = {str(p) for name, split in REG.eval_splits() for p in REG.eval_files(RAW, name, split)}
    assert opened and not set(opened) & eval_paths
    assert not any(p.endswith(("swda/val.txt", "goemotions/dev.tsv")) for p in opened)


@needs_raw
@pytest.mark.parametrize("task", TASKS)
def test_raw_records_gold_positive_negatives_absent(raw_records, decode, task):
    records = raw_records[0][task]
    assert 0 < len(records) <= LS.MAX_RECORDS
    by_text = defaultdict(list)
    for members in groups_of(records).values():
        clss = [r["cls"] for r in members]
        assert clss[0] == POS and clss.count(POS) == 1 and set(clss) <= {POS, NEG}
        by_text[members[0]["context"]].append(members)
    positives = set()
    for text, groups in by_text.items():
        golds = {(task, g) for g in gold(task)[text]}
        for members in groups:
            assert decode[members[0]["prompt"]] & golds, (text, members[0]["prompt"])
            positives |= decode[members[0]["prompt"]] & golds
            for r in members[1:]:
                assert decode[r["prompt"]] and not decode[r["prompt"]] & golds, (text, r["prompt"])
        assert len(groups) == len(golds)  # multi-label: one group per gold label
    assert {label for _, label in positives} == set(SETS[task]["labels"])  # every label taught


@needs_raw
def test_raw_multi_label_texts_have_every_gold_positive(raw_records):
    records = raw_records[0]
    for task in MULTI_LABEL:
        counts = defaultdict(int)
        for r in records[task]:
            counts[r["context"]] += r["cls"] == POS
        assert max(counts.values()) >= 2, task
    hate = [t for t, g in gold("davidson").items() if "0" in g]
    assert all(gold("davidson")[t] == {"0", "1"} for t in hate)  # hate speech is offensive too
    flight_fare = [t for t, g in gold("atis_intent").items() if g == {"atis_flight", "atis_airfare"}]
    atis_positives = defaultdict(int)
    for r in records["atis_intent"]:
        atis_positives[r["context"]] += r["cls"] == POS
    assert flight_fare and any(atis_positives[t] == 2 for t in flight_fare)
    assert any(g == {"neutral"} for g in gold("semeval_ec").values())
    assert any(g == {"OFF", "TIN", "IND"} for g in gold("olid").values())


@needs_raw
def test_raw_politeness_ends_only():
    """Top quartile of each community polite, bottom quartile impolite, the middle half dropped."""
    expected = []
    for split in ("wikipedia", "stack_exchange"):
        data = list(csv.DictReader(REG.train_file(RAW, "stanford_politeness", split).open(encoding="utf-8")))
        low, _, high = statistics.quantiles([float(r["Normalized Score"]) for r in data], n=4)
        for r in data:
            score = float(r["Normalized Score"])
            if score >= high or score <= low:
                expected.append((r["Request"], ("polite",) if score >= high else ("impolite",)))
    rows = LS.politeness_rows(RAW)
    assert rows == expected and 0.45 < len(rows) / (4353 + 6603) < 0.55


@needs_raw
def test_raw_dialogue_contexts_and_crisis_filter(raw_records):
    records = raw_records[0]
    assert any("\n" in r["context"] for r in records["swda"])
    assert all(len(r["context"].split("\n")) <= 2 for r in records["dailydialog_act"])
    first = gold("dailydialog_act")["Good morning, sir. Is there a bank near here?"]
    assert first == {"2"}  # detokenized first turn of the first validation dialogue: a question
    crisis_texts = {r["context"] for r in records["crisis_sandy"]}
    for row in csv.DictReader(REG.train_file(RAW, "crisisnlp_sandy", "all").open(encoding="utf-8")):
        if row["type_of_message"].startswith("Can not judge") or float(row["type_of_message:confidence"]) < 0.5:
            assert row["tweet"].strip() not in crisis_texts


@needs_raw
def test_raw_conversion_drops_eval_texts(tmp_path):
    """convert.run over the sets with EVAL tests: no output text repeats one of them."""
    tasks = ["goemotions", "olid", "irony", "atis_intent", "dailydialog_act"]
    counts = C.run(RAW, tmp_path, tasks)
    assert all(counts[t] > 0 for t in tasks)
    keys = set()
    for name in ("goemotions", "olid", "tweeteval_irony", "atis", "dailydialog"):
        for split in REG.dataset(name).eval:
            read = L.texts_reader(name, split)
            keys |= {L.eval_key(t) for p in REG.eval_files(RAW, name, split) for t in read(p)} - {""}
    assert len(keys) > 5000
    for task in tasks:
        for line in (tmp_path / f"{task}.jsonl").read_text(encoding="utf-8").splitlines():
            context = json.loads(line)["context"]
            assert L.eval_key(context) not in keys
            assert not any(L.eval_key(part) in keys for part in context.split("\n") if len(part.split()) >= 3)


def test_conversion_is_seeded(templates):
    a = run_converter("goemotions", templates, seed=3)
    assert a == run_converter("goemotions", templates, seed=3)
    assert a != run_converter("goemotions", templates, seed=4)
