"""Tests for the converters of issue 11 (training/datasets: labels, qa, tasks, pairs, promptsource) and the
leakage guard of convert.run, on the small fixtures in corpus/fixtures (same layouts as the raw sets)."""
import json
from collections import defaultdict

import pytest

from spacy_cortex.training import convert as C
from spacy_cortex.training import leakage as L
from spacy_cortex.training.datasets import labels as LB
from spacy_cortex.training.datasets import promptsource as P
from spacy_cortex.training.datasets import tasks as T
from spacy_cortex.training.records import STATS, converters
from spacy_cortex.templates import task_template
from conftest import CONVERTER_FIXTURES, run_converter

FIX = CONVERTER_FIXTURES
NEW = ["clinc150", "hwu64", "snips_intents", "reuters_r8", "squadshifts", "policyqa", "subjqa", "multispanqa",
       "commonsenseqa", "openbookqa", "winogrande", "promptsource", "anli_dev"]


def by_context(recs):
    out = defaultdict(list)
    for r in recs:
        out[r["context"]].append(r)
    return out


def score_response(prompt):
    head, tail = task_template("score").split("{response}")
    assert prompt.startswith(head) and prompt.endswith(tail), prompt
    return prompt[len(head):len(prompt) - len(tail)]


def test_registered():
    for name in NEW:
        assert name in converters.get_all(), name


# ---------------------------------------------------------------- label names
def test_task_labels_cover_the_full_label_inventories():
    labels = LB.task_labels()
    clinc = {i for intents in json.loads((FIX / "clinc150" / "domains.json").read_text()).values() for i in intents}
    assert set(labels["clinc150"]) == clinc and len(clinc) == 150  # domains.json is the full list
    assert set(labels["hwu64"]) == set(json.loads((FIX / "hwu64" / "categories.json").read_text()))
    assert set(labels["snips_nlu"]) == {"AddToPlaylist", "BookRestaurant", "GetWeather", "PlayMusic", "RateBook",
                                        "SearchCreativeWork", "SearchScreeningEvent"}
    assert set(labels["reuters_r8"]) == {"acq", "crude", "earn", "grain", "interest", "money-fx", "ship", "trade"}
    for names in labels.values():
        for words in names.values():
            assert words and all(isinstance(w, str) and w.strip() and "_" not in w for w in words)


# ---------------------------------------------------------------- intents / topics
def test_clinc_gold_plus_negatives_and_all_negative_out_of_scope(templates):
    recs = run_converter("clinc150", templates)
    groups = by_context(recs)
    data = json.loads((FIX / "clinc150" / "data_full.json").read_text())
    assert set(groups) == {t for t, _ in data["train"] + data["oos_train"]}  # no val/test row
    oos = {t for t, _ in data["oos_train"]}
    for text, rs in groups.items():
        clss = sorted(r["cls"] for r in rs)
        assert clss == (["negative"] * 3 if text in oos else ["negative", "negative", "positive"])
    names = LB.task_labels()["clinc150"]
    pin = [r for r in groups["i need to change my pin"] if r["cls"] == "positive"][0]
    assert any(n in pin["prompt"] for n in names["pin_change"])


@pytest.mark.parametrize("name", ["hwu64", "snips_intents", "reuters_r8"])
def test_label_sets_gold_plus_two_negatives(templates, name):
    groups = by_context(run_converter(name, templates))
    assert groups
    for rs in groups.values():
        assert sorted(r["cls"] for r in rs) == ["negative", "negative", "positive"]


def test_snips_utterances_from_pieces_latin1_and_intents_only():
    rows = dict(LB.snips_utterances(FIX))
    assert rows["What will the weather be this year in Horseshoe Lake?"] == "GetWeather"
    assert rows["play Beyoncé on Spotify"] == "PlayMusic"  # the Latin-1 file decodes
    assert set(rows.values()) == {"GetWeather", "PlayMusic", "RateBook"}


# ---------------------------------------------------------------- QA
def test_squadshifts_first_answer_located_in_all_three_files(templates):
    STATS.clear()
    recs = run_converter("squadshifts", templates)
    answers = {"Staffordshire", "manganese", "30 hours", "weak", "Denver"}
    assert {r["context"][s:e] for r in recs for s, e in r["spans"]} == answers
    assert all(len(r["spans"]) == 1 and r["cls"] == "positive" for r in recs)
    assert STATS["squadshifts: answer not found"] == 1


def test_policyqa_keeps_disjoint_answer_spans(templates):
    recs = {r["prompt"].split("?")[0]: r for r in run_converter("policyqa", templates)}
    r = recs["Does the company collect user's financial information"]
    # the 2nd answer overlaps the 1st (an alternative), the 3rd is separate evidence
    assert [r["context"][s:e] for s, e in r["spans"]] == ["Payment and billing information", "credit card number"]


def test_subjqa_merges_annotators_and_keeps_unanswerable(templates):
    recs = {r["prompt"]: r for r in run_converter("subjqa", templates, seed=1)}
    got = {q: (r["cls"], [r["context"][s:e] for s, e in r["spans"]])
           for p, r in recs.items() for q in ["How is the sound", "How is the battery", "How is the price",
                                                "How was the packaging", "How is the pool"] if q in p}
    assert got == {"How is the sound": ("positive", ["crisp and clear"]),  # one of two annotators answered
                   "How is the battery": ("positive", ["Battery life is short"]),  # overlapping 2nd span dropped
                   "How is the price": ("negative", []),
                   "How was the packaging": ("positive", ["the bag arrived crushed."]),  # clipped before the marker
                   "How is the pool": ("negative", [])}
    assert not any("ANSWERNOTFOUND" in r["context"] for r in recs.values())
    assert len(recs) == 5  # one example per question-review pair


def test_multispanqa_several_spans_on_detokenized_context(templates):
    (r,) = run_converter("multispanqa", templates)
    assert r["context"] == "In 1981, a remake by Dave Stewart and Barbara Gaskin was a UK hit (# 1)."
    assert [r["context"][s:e] for s, e in r["spans"]] == ["Dave Stewart", "Barbara Gaskin"]
    assert "Who sang it's my party in the eighties?" in r["prompt"]


# ---------------------------------------------------------------- multiple choice
def test_commonsenseqa_scoring_pairs_as_api_score_reads_them(templates):
    groups = by_context(run_converter("commonsenseqa", templates))
    rs = groups["Sammy wanted to go to where the people were.  Where might he go?"]
    assert len(rs) == 5
    assert {score_response(r["prompt"]): r["cls"] for r in rs} == {
        "populated areas": "positive", "race track": "negative", "the desert": "negative",
        "apartment": "negative", "roadblock": "negative"}
    assert all(r["spans"] is None for r in rs)
    # one group per question, for the trainer's listwise term
    assert len({r["group"] for r in rs}) == 1
    assert len({rs[0]["group"] for rs in groups.values()}) == len(groups)


def test_converted_file_keeps_groups_together(tmp_path):
    C.run(FIX, tmp_path, ["commonsenseqa", "banking77"])
    for name in ("commonsenseqa", "banking77"):
        rows = [json.loads(l) for l in (tmp_path / f"{name}.jsonl").read_text().splitlines()]
        runs = [g for i, g in enumerate(r["group"] for r in rows) if i == 0 or g != rows[i - 1]["group"]]
        assert len(runs) == len(set(runs)), name  # each group is one run of lines
        by_group = defaultdict(list)
        for r in rows:
            by_group[r["group"]].append(r["cls"])
        assert all(c.count("positive") == 1 for c in by_group.values()), name


def test_openbookqa_train_and_dev_not_test(templates):
    STATS.clear()
    groups = by_context(run_converter("openbookqa", templates))
    assert set(groups) == {"The sun is responsible for", "What is an example of hunting?", "Which would freeze last?"}
    gold = {ctx: score_response(r["prompt"]) for ctx, rs in groups.items() for r in rs if r["cls"] == "positive"}
    assert gold["Which would freeze last?"] == "a bowl of salt water"
    assert STATS["openbookqa: openbookqa row with unparsed choices"] == 1  # the row with two (D)


def test_winogrande_sentence_and_question_two_candidates(templates):
    recs = run_converter("winogrande", templates)
    assert len(recs) == 6
    for ctx, rs in by_context(recs).items():
        sentence, question = ctx.split("\n")
        assert "_" in sentence and question in T.WINOGRANDE_QUESTIONS
        gold = {score_response(r["prompt"]) for r in rs if r["cls"] == "positive"}
        assert gold == ({"Dennis"} if sentence.startswith("Ian") else {"trophy"} if "trophy" in sentence else {"Logan"})


# ---------------------------------------------------------------- NLI
def test_anli_dev_labels(templates):
    recs = run_converter("anli_dev", templates)
    cls = {r["context"].split()[0]: r["cls"] for r in recs}
    assert cls == {"Linguistics": "negative", "The": "positive", "Walls": "neutral", "Car": "neutral"}


# ---------------------------------------------------------------- PromptSource
def test_promptsource_renders_mapped_training_sets_only(templates):
    recs = run_converter("promptsource", templates)
    assert recs and all(r["spans"] is None for r in recs)
    groups = by_context(recs)
    for ctx, rs in groups.items():
        assert sum(r["cls"] == "positive" for r in rs) == 1 and 2 <= len(rs) <= P.MAX_CANDIDATES
        assert "{{" not in ctx and "|||" not in ctx
    assert not any("World, Sports" in c or "news" in c.lower() for c in groups)  # ag_news (EVAL) not rendered
    assert not any("Does sentence B entail" in c for c in groups)  # template with the wrong label direction
    gold = {ctx: score_response(r["prompt"]) for ctx, rs in groups.items() for r in rs if r["cls"] == "positive"}
    sammy = [g for c, g in gold.items() if "Sammy wanted" in c]
    assert sammy and set(sammy) <= {"populated areas", "B"}
    ian = [g for c, g in gold.items() if "Ian volunteered" in c and "True or False" not in c]
    assert ian and set(ian) == {"Dennis"}
    # fine-grained TREC templates render only for questions of their coarse class
    loc = [(c, g) for c, g in gold.items() if "city, country, mountain" in c]
    assert loc and all("most airports" in c and g == "state" for c, g in loc)
    rte = [g for c, g in gold.items() if "Weapons of Mass Destruction Found in Iraq." in c and "Yes or no" in c]
    assert rte and set(rte) == {"No"}  # not_entailment


def test_promptsource_cap_per_template_and_determinism(templates, monkeypatch):
    monkeypatch.setattr(P, "PS_ROWS_PER_TEMPLATE", 1)
    recs = run_converter("promptsource", templates)
    n_templates = sum(1 for key, _ in P.promptsource_templates(FIX) if key in P.PS_DATASETS)
    assert 0 < sum(r["cls"] == "positive" for r in recs) <= n_templates
    assert recs == run_converter("promptsource", templates)


# ---------------------------------------------------------------- leakage guard
def test_eval_key_ignores_case_whitespace_and_punctuation_spacing():
    assert L.eval_key("  Where would you put a  TEAPOT ?") == L.eval_key("where would you put a teapot?")
    assert L.eval_key("EU rejects German call .") == L.eval_key("EU rejects German call.")
    assert L.eval_key("a cat") != L.eval_key("a cab")


def test_leak_guard_drops_training_rows_repeating_eval_rows(tmp_path, templates):
    # fixtures: a commonsenseqa train stem = a dev stem (case / spaces differ); an openbookqa dev stem =
    # a test stem; a winogrande train sentence = a dev sentence; an anli_dev hypothesis = an xnli test one
    STATS.clear()
    names = ["commonsenseqa", "openbookqa", "winogrande", "anli_dev", "promptsource", "clinc150"]
    counts = C.run(FIX, tmp_path, names)
    leaks = {n: STATS[f"leak:{n}"] for n in names}
    assert leaks["commonsenseqa"] == 5  # the 5 candidates of the teapot question
    assert leaks["openbookqa"] == 4
    assert leaks["winogrande"] == 2  # caught on the sentence line of the instruction
    assert leaks["anli_dev"] == 1  # caught on the hypothesis inside the prompt template
    assert leaks["promptsource"] > 0  # rows of the same questions rendered into PromptSource templates
    assert leaks["clinc150"] == 0 and "leak:clinc150" in STATS  # zero counts are reported too
    for name in names:
        lines = (tmp_path / f"{name}.jsonl").read_text().splitlines()
        direct = run_converter(name, templates)
        assert len(lines) == counts[name] == len(direct) - leaks[name]
        text = "\n".join(lines).lower()
        for leaked in ["teapot", "example of hunting", "brown  suitcase", "brown suitcase", "albums before 2016"]:
            assert leaked not in text, (name, leaked)
    assert not L.EVAL_KEYS and not L.is_eval_text("where would you put a teapot when you are done with it?")


def test_cli_prints_leak_counts(tmp_path, capsys):
    STATS.clear()
    C.main([str(FIX), str(tmp_path), "--tasks", "commonsenseqa,winogrande"])
    out = capsys.readouterr().out
    assert "skipped[leak:commonsenseqa]\t5" in out and "skipped[leak:winogrande]\t2" in out
