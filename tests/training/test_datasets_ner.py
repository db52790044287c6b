"""Tests for spacy_cortex.training.datasets.ner on small fixtures in corpus/fixtures (real excerpts in the real file layouts)."""
import builtins
import json
import random
from collections import defaultdict
from pathlib import Path

import pytest

from spacy_cortex.corpus.registry import train_files
from spacy_cortex.training.datasets import ner as N
from spacy_cortex.training.records import STATS, converters
from conftest import CONVERTER_FIXTURES, run_converter

FIX = CONVERTER_FIXTURES
def train_paths(name):
    """The fixture files (relative paths) of the splits a converter reads."""
    raw_set, splits = N.SOURCES[name]
    return [str(p.relative_to(FIX)) for split in splits for p in train_files(FIX, raw_set, split)]


NAMES = ["fewnerd", "multiconer2", "pilener", "stackoverflow_ner", "wlp", "gum_ner", "wnut16", "harveyner", "anem",
         "bionlp13cg", "bionlp13pc", "bionlp11id", "bc5cdr", "ncbi_disease", "jnlpba"]
BIO = [n for n in NAMES if n != "pilener"]
# how the test reads each fixture file independently of the converters: (column separator, tag column)
LAYOUT = {"multiconer2": (" ", -1), "harveyner": (" ", -1), "anem": ("\t", 3)}
COMMENTS = ("# id ", "# document: ", "-DOCSTART-")


@pytest.fixture(scope="module")
def types():
    return N.load_types()


@pytest.fixture(scope="module")
def siblings():
    return N.load_siblings()


@pytest.fixture(scope="module")
def outputs(templates):
    return {name: run_converter(name, templates) for name in NAMES}


def gold_sentences(name):
    """[(tokens, {type: [entity tokens, ...]})] of the training fixture files, read here without the converter."""
    sep, col = LAYOUT.get(name, ("\t", 1))
    out = []
    for rel in train_paths(name):
        rows = []
        for line in (FIX / rel).read_text(encoding="utf-8").split("\n") + [""]:
            if line.startswith(COMMENTS):
                continue
            if line.strip():
                rows.append(line.split(sep))
                continue
            if rows:
                tokens, ents, cur = [r[0] for r in rows], defaultdict(list), None
                for tok, tag in ((r[0], r[col]) for r in rows):
                    kind = tag[2:] if tag != "O" else None
                    if tag.startswith("B-") or (tag.startswith("I-") and kind != cur):
                        ents[kind].append([tok])
                    elif tag.startswith("I-"):
                        ents[kind][-1].append(tok)
                    cur = kind
                out.append((tokens, dict(ents)))
                rows = []
    return out


def sentence_key(name, text):
    return text.replace(" ", "") if name == "anem" else text  # AnEM keeps the document's spacing


def with_broad(want, broad):
    """Gold mentions per type, a broad type present with types it covers taking in their mentions."""
    out = dict(want)
    for b, entry in broad.items():
        inside = [c for c in entry["covers"] if c in want]
        if b in want and inside:
            out[b] = sorted(x for t in [b] + inside for x in want[t])
    return out


def blocked(present, broad):
    """Broad types absent from a passage in which a type they cover is present: never negatives there."""
    return {b for b, entry in broad.items() if b not in present and set(entry["covers"]) & set(present)}


def label_of(prompt, ner_templates):
    """The label put into one of the "ner" templates (the longest matching template wins)."""
    best = None
    for t in ner_templates:
        pre, post = t.split("{label}")
        if prompt.startswith(pre) and prompt.endswith(post) and len(prompt) > len(pre) + len(post):
            if best is None or len(pre) + len(post) > len(best[0]) + len(best[1]):
                best = (pre, post)
    return prompt[len(best[0]):len(prompt) - len(best[1])]


def test_all_registered():
    assert set(NAMES) <= set(converters.get_all())


def test_types_json_is_data(types):
    assert 0 < types["_raw_rate"] < 0.5 and 0 < types["_definition_rate"] <= 1 and 0 <= types["_empty_passage_rate"] < 1
    assert all("{label}" in t and "{definition}" in t for t in types["_definition_templates"])
    for name in NAMES:
        assert types[name], name
        for raw, names in types[name].items():
            assert names and all(n.strip() == n and n for n in names), (name, raw)
            assert len(set(names)) == len(names), (name, raw)
    # natural names, not the raw labels
    assert "artist or author" in types["fewnerd"]["person_artist/author"]
    assert types["bc5cdr"]["Chemical"][0] == "chemical"
    assert types["stackoverflow_ner"]["Code_Block"][0] == "code"
    assert types["jnlpba"]["cell_line"][0] == "cell line"
    assert types["multiconer2"]["HumanSettlement"][0] == "human settlement"


def test_raw_words():
    assert N.raw_words("person_artist/author") == "person artist/author"
    assert N.raw_words("Multi-tissue_structure") == "multi tissue structure"
    assert N.raw_words("Code_Block") == "code block"
    assert N.raw_words("geo-loc") == "geo loc"


def test_ner_records_are_extraction_examples(outputs):
    """(test_convert checks every converter's record fields; these are NER-specific.)"""
    for name, recs in outputs.items():
        assert recs, name
        for r in recs:
            assert isinstance(r["spans"], list) and r["cls"] == ("positive" if r["spans"] else "negative")
            ends = 0
            for s, e in r["spans"]:
                assert ends <= s < e <= len(r["context"]), (name, r)  # sorted, not overlapping
                ends = e
                text = r["context"][s:e]
                assert text == text.strip() and not set(text) & set(N.INVISIBLE), (name, text)


@pytest.mark.parametrize("name", BIO)
def test_spans_slice_to_gold_entities(name, outputs, siblings):
    gold = {}
    for tokens, ents in gold_sentences(name):
        gold[sentence_key(name, " ".join(tokens))] = ents
    by_context = defaultdict(list)
    for r in outputs[name]:
        by_context[r["context"]].append(r)
    assert by_context
    for context, recs in by_context.items():
        ents = gold[sentence_key(name, context)]
        want = {t: sorted(sentence_key(name, " ".join(e)) for e in lst) for t, lst in ents.items()}
        want = with_broad(want, siblings.get(name, {}).get("broad", {}))
        positives = [r for r in recs if r["spans"]]
        # one positive example per type present, whose spans are exactly that type's mentions
        # (a broad type's also those of the types it covers)
        got = sorted(sorted(sentence_key(name, context[s:e]) for s, e in r["spans"]) for r in positives)
        if name == "stackoverflow_ner":  # zero-width characters trimmed off entity edges; empty entities dropped
            edge = N.INVISIBLE + " "
            want = {t: sorted(x.strip(edge) for x in v if x.strip(edge)) for t, v in want.items()}
            want = {t: v for t, v in want.items() if v}
        assert got == sorted(want.values()), (name, context)


@pytest.mark.parametrize("name", BIO)
def test_negatives_about_half(name, outputs, types, siblings):
    n_types = len(types[name])
    broad = siblings.get(name, {}).get("broad", {})
    present = {sentence_key(name, " ".join(tokens)): set(ents) for tokens, ents in gold_sentences(name)}
    by_context = defaultdict(lambda: [0, 0])
    for r in outputs[name]:
        by_context[r["context"]][r["cls"] == "negative"] += 1
    for context, (pos, neg) in by_context.items():
        if pos:
            n_absent = n_types - pos - len(blocked(present[sentence_key(name, context)], broad))
            assert neg == min(pos, n_absent), (name, context)
        else:
            assert neg == 1  # a passage without entities: at most one (negative) example
    total_neg = sum(neg for _, neg in by_context.values())
    assert total_neg, name
    if n_types >= 4:
        assert 0.3 <= total_neg / len(outputs[name]) <= 0.7, name


def test_negative_debt_paid_by_empty_passages(templates, types):
    """One type (NCBI): a passage never has an absent type, so negatives come from passages without entities."""
    passages = [("a b c", {"Disease": [[0, 1]]})] * 3 + [("d e f", {})] * 5
    recs = list(N.type_examples("ncbi_disease", passages, templates, random.Random(0), types))
    assert [r["cls"] for r in recs].count("negative") >= 3
    assert [r["cls"] for r in recs].count("positive") == 3


def test_natural_names_and_some_raw_names(outputs, templates, types, siblings):
    for name in BIO:
        allowed = {n for names in types[name].values() for n in names} | {N.raw_words(t) for t in types[name]}
        allowed |= {n for entry in siblings.get(name, {}).get("broad", {}).values() for n in entry["names"]}
        for r in outputs[name]:
            assert label_of(r["prompt"], templates["ner"]) in allowed, (name, r["prompt"])
    # on many passages: raw names about 1 in 5, natural names otherwise
    fewnerd = types["fewnerd"]
    passages = [("x y z", {"person_artist/author": [[0, 1]], "location_GPE": [[2, 3]]})] * 400
    labels = [label_of(r["prompt"], templates["ner"])
              for r in N.type_examples("fewnerd", passages, templates, random.Random(1), types)]
    raw = {N.raw_words(t) for t in fewnerd}
    share = sum(label in raw for label in labels) / len(labels)
    assert 0.14 <= share <= 0.26
    assert "person artist/author" in labels and "artist or author" in labels


def test_unknown_type_is_an_error(templates, types):
    with pytest.raises(ValueError, match="no names"):
        list(N.type_examples("bc5cdr", [("a b c", {"Gene": [[0, 1]]})], templates, random.Random(0), types))


def test_short_sentences_and_comment_lines_skipped(outputs):
    for name in BIO:
        for r in outputs[name]:
            if name != "anem":
                assert len(r["context"].split(" ")) >= 3, (name, r["context"])
            assert not any(c.strip() in r["context"] for c in COMMENTS + ("domain=en",)), (name, r["context"])
    short = [" ".join(tokens) for tokens, _ in gold_sentences("fewnerd") if len(tokens) < 3]
    assert short and not set(short) & {r["context"] for r in outputs["fewnerd"]}


def test_anem_keeps_document_spacing(outputs):
    contexts = {r["context"] for r in outputs["anem"]}
    assert any(c.endswith(".") and not c.endswith(" .") for c in contexts)


def test_fewnerd_drops_crossner_overlap(templates):
    assert any(" ".join(tokens).startswith("He was later awarded the Gold Medal of the Royal Astronomical Society")
               for tokens, _ in gold_sentences("fewnerd"))  # the fixture holds one of the two sentences
    STATS.clear()
    recs = run_converter("fewnerd", templates)
    assert STATS["fewnerd: also in CrossNER (EVAL)"] == 1
    assert not any("Royal Astronomical Society" in r["context"] for r in recs)


def test_stackoverflow_drops_headers_and_placeholders(outputs):
    contexts = {r["context"] for r in outputs["stackoverflow_ner"]}
    assert not any(c.startswith(("Question_ID", "Question_URL", "CODE_BLOCK", "OP_BLOCK")) for c in contexts)
    spans = {r["context"][s:e] for r in outputs["stackoverflow_ner"] for s, e in r["spans"]}
    assert "C#" in spans and "scanf" in spans


def test_pilener_rows_definitions_and_negatives(templates):
    d = FIX / "pilener_slimer_subset"
    rows = [json.loads(line) for line in (d / "validation_391types_5pos5neg.jsonl").read_text().splitlines()]
    defs = N.pile_definitions(d / "top391NEs_definitions.json")
    assert defs["court"][1] is None  # guidelines cut off mid-sentence in the source are not used
    assert defs["person"][1].endswith(".")
    used_definition = False
    for seed in range(4):
        recs = run_converter("pilener", templates, seed)
        assert len(recs) == len(rows)  # one example per row: its negatives kept as they are, none added
        for row, r in zip(rows, recs):
            ents = {e.strip() for e in json.loads(row["output"])}
            assert r["context"] == row["input"]
            assert (r["cls"] == "negative") == (not ents)
            assert {r["context"][s:e] for s, e in r["spans"]} == ents
            definition = defs.get(row["tagName"], ("\0",))[0]
            used_definition |= definition in r["prompt"]
    assert used_definition


def test_locate_all_whole_words_longest_first():
    text = "Sharp met Hugh R. Sharp and Sharpe."
    assert N.locate_all(text, ["Sharp", "Hugh R. Sharp"]) == [[0, 5], [10, 23]]


def test_only_training_files_opened(templates, monkeypatch):
    opened = []
    real_open = builtins.open

    def spy(path, *a, **kw):
        opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", spy)
    for name in NAMES:
        opened.clear()
        run_converter(name, templates)
        fixture_files = {str(Path(p).resolve().relative_to(FIX)) for p in opened if str(FIX) in str(Path(p).resolve())}
        assert fixture_files == set(train_paths(name)), name
        assert all(p in (str(N.TYPES_PATH), str(N.SIBLINGS_PATH)) or str(FIX) in p for p in opened), opened
    poisoned = {str(p) for p in FIX.rglob("*") if p.is_file() and p.read_text(errors="ignore").startswith("EVAL FILE")}
    assert {str(FIX / f) for f in ["jnlpba/test.tsv", "fewnerd_inter_subset/inter_test.txt"]} <= poisoned


def test_deterministic(templates):
    for name in ("fewnerd", "pilener", "harveyner"):
        assert run_converter(name, templates, seed=5) == run_converter(name, templates, seed=5)
