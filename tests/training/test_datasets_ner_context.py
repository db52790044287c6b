"""Tests of the NER training-data fixes of issue 24 item 4: sibling types as negatives, broad
(catch-all) types, multi-sentence CoNLL contexts, CoNLL's own type prompts and mention-level
types never asked by their raw words. In-test fixtures first; then the same checks on the shared
raw corpus (skipped where it is absent)."""
import random
import re
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from spacy_cortex.corpus.readers import read_tagged
from spacy_cortex.corpus.registry import train_files
from spacy_cortex.training.datasets import ner as N
from spacy_cortex.training.datasets import ner_context as J
from spacy_cortex.training.records import converters
from conftest import CONVERTER_FIXTURES, run_converter

RAW = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "raw"
needs_raw = pytest.mark.skipif(not RAW.is_dir(), reason=f"the shared raw corpus is not here ({RAW})")
CONLL_TYPES = {"person", "location", "organisation", "misc"}


@pytest.fixture(scope="module")
def bare(templates):
    """The converters' templates with prompts that are the label itself."""
    return {**templates, "ner": ["{label}"]}


@pytest.fixture(scope="module")
def types():
    return N.load_types()


@pytest.fixture(scope="module")
def siblings():
    return N.load_siblings()


def label_types(types, siblings, task):
    """{prompt label: the set's types it may ask for}: names, raw words and broad names."""
    out = defaultdict(set)
    for t, names in types[task].items():
        for n in names + [N.raw_words(t)]:
            out[n].add(t)
    for t, entry in siblings.get(task, {}).get("broad", {}).items():
        for n in entry["names"]:
            out[n].add(t)
    return out


def sentence(text, **entities):
    """(text, spans) with each entity type's mentions found by their strings."""
    spans = {t: [[text.index(m), text.index(m) + len(m)] for m in mentions] for t, mentions in entities.items()}
    return text, spans


# ---------------------------------------------------------------- the sibling table is data
def test_sibling_table_is_data(types, siblings):
    assert 0 < siblings["_rate"] < 1 and siblings["_about"]
    for task, entry in siblings.items():
        if task.startswith("_"):
            continue
        known = set(types[task])
        grouped = {t for group in entry["groups"] for t in group}
        assert grouped <= known, (task, grouped - known)
        assert all(len(group) >= 2 and len(set(group)) == len(group) for group in entry["groups"]), task
        for b, broad in entry["broad"].items():
            assert b in known and set(broad["covers"]) <= known and broad["names"], (task, b)
            assert b not in grouped, (task, b)  # a catch-all is nobody's sibling
    assert set(N.sibling_map(siblings["fewnerd"])["person_politician"]) == {"person_artist/author", "person_director"}
    for task, mention in types["_mention_types"].items():
        assert set(mention) <= set(types[task]), task


# ---------------------------------------------------------------- siblings, in-test fixture
def test_sibling_negatives_never_mark_the_other_sibling(types, siblings, bare):
    """A prompt for a sibling of the gold type ("artist or author", "director" over a sentence
    whose only person is a politician) has no span; it comes at about the documented rate."""
    text, spans = sentence("Senator Blanca Ortiz spoke in Leeds .", person_politician=["Blanca Ortiz"],
                           location_GPE=["Leeds"])
    names = label_types(types, siblings, "fewnerd")
    sibs = set(N.sibling_map(siblings["fewnerd"])["person_politician"])
    n, hits = 600, 0
    recs = list(N.type_examples("fewnerd", [(text, spans)] * n, bare, random.Random(3), types, siblings))
    for r in recs:
        asked = names[r["prompt"]]
        if asked & sibs:
            assert r["spans"] == [], r
            hits += 1
        if "person_politician" in asked and r["cls"] == "positive":
            assert [text[s:e] for s, e in r["spans"]] == ["Blanca Ortiz"]
    # two types present, so two negatives per passage: a sibling of the politician with probability
    # _rate, besides by chance when the other negatives are sampled from the 34 absent types
    share = hits / n
    rate = siblings["_rate"]
    assert rate - 0.07 <= share <= rate + 0.12, share


def test_sibling_present_keeps_its_own_mentions(types, siblings, bare):
    text, spans = sentence("Ortiz met the novelist Ana Ruiz in Leeds .", person_politician=["Ortiz"],
                           **{"person_artist/author": ["Ana Ruiz"]})
    names = label_types(types, siblings, "fewnerd")
    for r in N.type_examples("fewnerd", [(text, spans)] * 50, bare, random.Random(0), types, siblings):
        got = [text[s:e] for s, e in r["spans"]]
        if names[r["prompt"]] == {"person_artist/author"}:
            assert got == ["Ana Ruiz"]
        if names[r["prompt"]] == {"person_politician"}:
            assert got == ["Ortiz"]


def test_without_siblings_negatives_sampled_as_before():
    """A type without siblings leaves the absent types' sample as it was (same rng draws)."""
    absent = ["DNA", "RNA", "cell_line"]
    for seed in range(20):
        got = N.pick_negatives(random.Random(seed), ["protein", "cell_type"], absent, 2, {}, 0.5)
        assert got == random.Random(seed).sample(absent, 2)
    got = N.pick_negatives(random.Random(0), ["protein"], absent, 1, {"protein": ["DNA", "RNA"]}, 1.0)
    assert got in (["DNA"], ["RNA"])


def test_broad_type_covers_its_members(types, siblings, bare):
    """MultiCoNER OtherPER is asked as "person": over all persons where it is present with a
    politician, and never as a negative where only a politician is there."""
    both = sentence("tom rowe met the mayor kim hale .", OtherPER=["tom rowe"], Politician=["kim hale"])
    only = sentence("the mayor kim hale spoke .", Politician=["kim hale"])
    names = label_types(types, siblings, "multiconer2")
    seen = Counter()
    for text, spans in [both, only]:
        for r in N.type_examples("multiconer2", [(text, spans)] * 200, bare, random.Random(2), types, siblings):
            if "OtherPER" in names[r["prompt"]] and names[r["prompt"]] <= {"OtherPER"}:
                assert text == both[0] and r["prompt"] in siblings["multiconer2"]["broad"]["OtherPER"]["names"]
                assert [text[s:e] for s, e in r["spans"]] == ["tom rowe", "kim hale"]
                seen[text] += 1
    assert seen[both[0]] == 200 and not seen[only[0]]


def test_mention_types_never_asked_by_raw_words(types, bare):
    """GUM marks pronouns and generic mentions ("you", "the city"): its person, place, organization
    and event are never asked by the words CoNLL and the evaluation use for named entities."""
    gum = {r["prompt"] for seed in range(6) for r in run_converter("gum_ner", bare, seed)}
    assert not gum & {"person", "people", "place", "location", "organization", "organizations", "event"}
    assert "person mention" in gum
    wlp = {r["prompt"] for seed in range(6) for r in run_converter("wlp", bare, seed)}
    assert "location" not in wlp and "lab location" in wlp


# ---------------------------------------------------------------- joined contexts, in-test fixture
def tagged(words, tags):
    """A (text, spans, n_tokens) sentence of space-separated tokens and their IOB2 tags."""
    text, spans = "", defaultdict(list)
    for word, tag in zip(words.split(), tags.split()):
        start = len(text) + 1 if text else 0
        text = f"{text} {word}" if text else word
        if tag.startswith("B-"):
            spans[tag[2:]].append([start, len(text)])
        elif tag.startswith("I-"):
            spans[tag[2:]][-1][1] = len(text)
    return text, dict(spans), len(words.split())


DOC = [
    tagged("EU rejects German call .", "B-organisation O B-misc O O"),
    tagged("Peter Blackburn", "B-person I-person"),
    tagged("BRUSSELS 1996-08-22", "B-location O"),
    tagged("Barack Obama visited Paris .", "B-person I-person O B-location O"),
    tagged("Angela Merkel met him in Berlin .", "B-person I-person O O O B-location O"),
    tagged("Results :", "O O"),
    tagged("1. Nick Faldo 68", "O B-person I-person O"),
    tagged("The talks ended in Bonn .", "O O O O B-location O"),
    tagged("The Commission said so .", "O B-organisation O O O"),
    tagged("Rare Hendrix song sells .", "O B-person O O O"),
    tagged("LONDON 1996-08-22", "B-location O"),
    tagged("Sotheby 's sold it on Thursday .", "B-organisation O O O O O O"),
    tagged("The buyer was not named .", "O O O O O O"),
]


def test_front_matter_and_runs():
    assert J.front_matter([t for t, _, _ in DOC]) == {0, 1, 2, 9, 10}
    runs = [[t for t, _, _ in run] for run in J.conll_runs(DOC, N.MIN_TOKENS)]
    assert [len(r) for r in runs] == [1, 1, 1, 2, 1, 1, 2, 1, 1, 2]
    assert runs[3] == ["Barack Obama visited Paris .", "Angela Merkel met him in Berlin ."]
    assert runs[6] == ["The talks ended in Bonn .", "The Commission said so ."]  # not the next headline


def test_joined_spans_exact_across_sentences():
    text, spans = J.join(DOC[3:5])
    assert text == "Barack Obama visited Paris . Angela Merkel met him in Berlin ."
    assert [text[s:e] for s, e in spans["person"]] == ["Barack Obama", "Angela Merkel"]
    assert [text[s:e] for s, e in spans["location"]] == ["Paris", "Berlin"]
    assert spans["person"][1][0] > len("Barack Obama visited Paris .")  # shifted into the second sentence


def test_joined_rate_sizes_and_coverage():
    run = [tagged(f"Mr Smith{i} went to Town{i} .", "O B-person O O B-location O") for i in range(4000)]
    contexts = list(J.joined_contexts([run], random.Random(7)))
    sizes = [text.count(" .") for text, _ in contexts]
    assert " ".join(text for text, _ in contexts) == " ".join(t for t, _, _ in run)  # every sentence once, in order
    assert set(sizes) == set(range(1, J.JOIN_MAX + 1))
    share = sum(size > 1 for size in sizes) / len(sizes)
    assert abs(share - J.JOIN_RATE) < 0.03, share
    for text, spans in contexts:
        persons = [text[s:e] for s, e in spans["person"]]
        assert len(persons) == text.count(" .") and all(re.fullmatch(r"Smith\d+", p) for p in persons)


def test_conll_records_all_four_types_with_conll_names(templates, bare):
    """Every CoNLL context asks all four CoNLL types by CoNLL's own names, absent ones included."""
    names = templates["ner_labels"]["conll"]
    assert set(names) == CONLL_TYPES
    by_label = {n: t for t, lst in names.items() for n in lst}
    gold = {}
    for split in ("train", "dev"):
        for path in train_files(CONVERTER_FIXTURES, "conll2003", split):
            gold.update({text: spans for text, spans, _ in read_tagged(path, sep="\t", tag_col=1)})
    joined = 0
    for seed in range(8):
        by_context = defaultdict(dict)
        for r in run_converter("conll", bare, seed):
            by_context[r["context"]][by_label[r["prompt"]]] = r["spans"]
        negatives = 0
        for context, asked in by_context.items():
            assert set(asked) == CONLL_TYPES, context
            negatives += sum(not spans for spans in asked.values())
            parts = [p for p in gold if p in context]
            joined += len(parts) > 1
            for kind, spans in asked.items():
                want = sorted(p[s:e] for p in parts for s, e in gold[p].get(kind, []))
                assert sorted(context[s:e] for s, e in spans) == want
        assert negatives
    assert joined  # some seed joins the fixture's three body sentences


# ---------------------------------------------------------------- on the shared raw corpus
def raw_sentences(raw_set, split):
    return [s for p in train_files(RAW, raw_set, split) for s in read_tagged(p, sep="\t", tag_col=1)]


@needs_raw
def test_raw_conll_joined_contexts(templates, bare):
    """The converter's contexts, in order, are the files' sentences, each once: single or 2-5
    consecutive ones of one file joined, never across a document's front matter, each type's
    spans exactly its mentions in the sentences' order; joined: the documented share."""
    by_label = {n: t for t, lst in templates["ner_labels"]["conll"].items() for n in lst}
    recs = list(converters.get("conll")(RAW, bare, random.Random(0)))
    contexts = [recs[i:i + 4] for i in range(0, len(recs), 4)]
    files = [raw_sentences("conll2003", split) for split in ("train", "dev")]
    at, n_joined, can_join, joined_there = 0, 0, 0, 0
    for sentences in files:
        texts = [t for t, _, _ in sentences]
        front, i = J.front_matter(texts), 0
        body = [j not in front and n >= N.MIN_TOKENS and J.prose(t) for j, (t, _, n) in enumerate(sentences)]
        while i < len(texts):
            four = contexts[at]
            context = four[0]["context"]
            k = next(k for k in range(1, J.JOIN_MAX + 1) if " ".join(texts[i:i + k]) == context)
            assert {by_label[r["prompt"]] for r in four} == CONLL_TYPES and {r["context"] for r in four} == {context}
            for r in four:
                kind = by_label[r["prompt"]]
                want = [t[s:e] for t, sp, _ in sentences[i:i + k] for s, e in sp.get(kind, [])]
                assert [context[s:e] for s, e in r["spans"]] == want, (context, kind)
            if k > 1:
                assert all(body[i:i + k]), context
                n_joined += 1
            if all(body[i:i + 2]) and i + 1 < len(texts):
                can_join += 1
                joined_there += k > 1
            i, at = i + k, at + 1
    assert at == len(contexts)
    assert abs(joined_there / can_join - J.JOIN_RATE) < 0.03, joined_there / can_join
    assert 0.08 <= n_joined / len(contexts) <= 0.15, n_joined / len(contexts)


@needs_raw
def test_raw_fewnerd_sibling_negatives(types, siblings, bare):
    recs = list(converters.get("fewnerd")(RAW, bare, random.Random(0)))
    names = label_types(types, siblings, "fewnerd")
    sibs = N.sibling_map(siblings["fewnerd"])
    gold = defaultdict(list)  # a few sentences are in the sample twice, tagged differently
    for text, spans, _ in raw_sentences("fewnerd_inter_subset", "train"):
        gold[text].append(spans)
    sibling_negatives = 0
    for r in recs:
        asked = names[r["prompt"]]
        versions = gold[r["context"]]
        if len(asked) == 1 and not asked & set(siblings["fewnerd"]["broad"]):
            (t,) = asked
            assert any(r["spans"] == present.get(t, []) for present in versions), r  # never a sibling's mentions
        if not r["spans"] and any(s in versions[0] for t in asked for s in sibs.get(t, ())):
            sibling_negatives += 1
    assert 0.05 <= sibling_negatives / len(recs) <= 0.3
