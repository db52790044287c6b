"""cortex_ner: zero-shot entities from one prompt per label."""
import itertools
import warnings

import numpy as np
import pytest
import spacy
from conftest import task_nlp, USER_NER_LABELS
from spacy.tokens import Span
from spacy.training import Example

from spacy_cortex import api
from spacy_cortex import ner as ner_module
from spacy_cortex.ner import NERTask, blocked_spans, detach_invisible, label_subtypes, make_ner_task, resolve_overlaps
from spacy_cortex.pipeline import install_span_score, make_span

TEXT = "The patient was given 20 mg atorvastatin."


def ner_nlp(checkpoint, **config):
    return task_nlp(checkpoint, "cortex_ner", {"labels": dict(USER_NER_LABELS), **config})


def test_positive_model_marks_whole_text(positive_checkpoint):
    doc = ner_nlp(positive_checkpoint)(TEXT)
    [ent] = doc.ents
    assert (ent.start, ent.end) == (0, len(doc))
    # both labels found the same span with the same score: the tie goes to the label name,
    # never to the order labels were given in
    assert ent.label_ == "DOSE"
    assert ent._.cortex_score == pytest.approx(1.0, abs=1e-3)


def test_negative_model_finds_nothing(negative_checkpoint):
    doc = ner_nlp(negative_checkpoint)(TEXT)
    assert list(doc.ents) == []


def test_spans_key_keeps_overlapping_spans_of_several_labels(positive_checkpoint):
    nlp = ner_nlp(positive_checkpoint, spans_key="drugs")
    doc = nlp(TEXT)
    assert list(doc.ents) == []  # Doc.ents untouched in spans mode
    spans = list(doc.spans["drugs"])
    assert [(s.start, s.end, s.label_) for s in spans] == [(0, len(doc), "DOSE"), (0, len(doc), "DRUG")]
    for s in spans:
        assert s._.cortex_score == pytest.approx(1.0, abs=1e-3)


def test_spans_key_scores_are_per_label(varied_checkpoint):
    nlp = ner_nlp(varied_checkpoint, spans_key="sc", threshold=0.05)
    doc = nlp("I asked about a refund for billing and shipping of the drug.")
    spans = list(doc.spans["sc"])
    assert {s.label_ for s in spans} == {"DOSE", "DRUG"}
    for s in spans:
        assert 0.05 <= s._.cortex_score <= 1.0
    # span scores are keyed by label: the same token range can have two different scores
    by_range = {}
    for s in spans:
        by_range.setdefault((s.start, s.end), {})[s.label_] = s._.cortex_score
    both = [v for v in by_range.values() if len(v) == 2]
    assert both and all(v["DOSE"] != v["DRUG"] for v in both)


def test_doc_ents_mode_keeps_existing_ents(positive_checkpoint):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(positive_checkpoint)}})
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "CHEM", "pattern": "atorvastatin"}])
    nlp.add_pipe("cortex_ner", config={"labels": dict(USER_NER_LABELS)})
    doc = nlp(TEXT)
    # the whole-text cortex span overlaps the existing entity, which wins
    assert [(e.text, e.label_) for e in doc.ents] == [("atorvastatin", "CHEM")]
    assert doc.ents[0]._.cortex_score is None


def test_doc_ents_mode_with_existing_ents_varied(varied_checkpoint):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(varied_checkpoint)}})
    ruler = nlp.add_pipe("entity_ruler")
    ruler.add_patterns([{"label": "CHEM", "pattern": "atorvastatin"}])
    nlp.add_pipe("cortex_ner", config={"labels": dict(USER_NER_LABELS), "threshold": 0.05})
    doc = nlp("what dose of atorvastatin was the patient given , and what refund ?")
    labels = [e.label_ for e in doc.ents]
    assert "CHEM" in labels and len(labels) > 1
    for e in doc.ents:
        assert (e._.cortex_score is None) == (e.label_ == "CHEM")


def _spans(doc, specs):
    install_span_score()  # as a cortex_ner component does when it is created
    out = []
    for start, end, label, score in specs:
        span = Span(doc, start, end, label=label)
        out.append(make_span(doc, span.start_char, span.end_char, label, score))
    return out


def test_resolve_overlaps_by_score_independent_of_order():
    nlp = spacy.blank("en")
    doc = nlp("a b c d e f g h")
    specs = [(0, 3, "A", 0.6), (2, 5, "B", 0.9), (5, 6, "C", 0.7), (4, 7, "D", 0.65), (7, 8, "E", 0.5)]
    expected = [(2, 5, "B"), (5, 6, "C"), (7, 8, "E")]
    for perm in itertools.permutations(_spans(doc, specs)):
        kept = resolve_overlaps(list(perm))
        assert [(s.start, s.end, s.label_) for s in kept] == expected


def test_resolve_overlaps_ties_and_existing():
    nlp = spacy.blank("en")
    doc = nlp("a b c d")
    tie = _spans(doc, [(0, 2, "Y", 0.8), (0, 2, "X", 0.8)])
    assert [s.label_ for s in resolve_overlaps(tie)] == ["X"]
    assert [s.label_ for s in resolve_overlaps(tie[::-1])] == ["X"]
    existing = Span(doc, 1, 3, label="OLD")  # no cortex score: always kept
    kept = resolve_overlaps(_spans(doc, [(0, 2, "A", 0.99), (3, 4, "B", 0.9)]) + [existing])
    assert [(s.start, s.end, s.label_) for s in kept] == [(1, 3, "OLD"), (3, 4, "B")]


def test_resolve_overlaps_prefers_the_more_specific_label_on_the_same_span():
    doc = spacy.blank("en")("Charles Dickens wrote in London .")
    subtypes = frozenset({("writer", "person"), ("country", "location")})
    specs = [(0, 2, "person", 0.99), (0, 2, "writer", 0.8), (0, 3, "location", 0.995), (4, 5, "location", 0.9),
             (4, 5, "city", 0.95)]
    for perm in itertools.permutations(_spans(doc, specs)):
        kept = resolve_overlaps(list(perm), subtypes)
        # (0, 3) outscores the person span, so no writer either: only exact rivals count;
        # "city" is no kind of "location" here, so the score decides
        assert [(s.start, s.end, s.label_) for s in kept] == [(0, 3, "location"), (4, 5, "city")]
    kept = resolve_overlaps(_spans(doc, specs[:2] + specs[3:]), subtypes)
    assert [(s.start, s.end, s.label_) for s in kept] == [(0, 2, "writer"), (4, 5, "city")]
    assert kept[0]._.cortex_score == pytest.approx(0.8)  # the specific label keeps its own score



def test_resolve_overlaps_specificity_cycles_and_existing_ents():
    doc = spacy.blank("en")("a b c d")
    cycle = frozenset({("A", "B"), ("B", "C"), ("C", "A")})
    specs = [(0, 2, "A", 0.7), (0, 2, "B", 0.9), (0, 2, "C", 0.8)]
    assert [s.label_ for s in resolve_overlaps(_spans(doc, specs), cycle)] == ["B"]  # no winner: score
    doc = spacy.blank("en")("a b c d")  # scores are stored on the doc: start afresh
    existing = Span(doc, 0, 2, label="B")
    kept = resolve_overlaps([existing] + _spans(doc, [(0, 2, "A", 0.9)]), frozenset({("A", "B")}))
    assert [(s.label_, s._.cortex_score) for s in kept] == [("B", None)]  # existing entities stay


def entail_stub(kinds):
    """api.entail stand-in: "This is a X." implies "This is a Y." for (X, Y) in kinds (a set:
    P(entailment) 0.9, else 0.1; a dict: its values, else 0.1)."""
    probs = kinds if isinstance(kinds, dict) else dict.fromkeys(kinds, 0.9)

    def entail(premises, hypotheses, model=None):
        entail.calls += 1
        noun = lambda s: s.split(" ", 3)[3].rstrip(".")
        return [{"entailment": probs.get((noun(p), noun(h)), 0.1)} for p, h in zip(premises, hypotheses)]
    entail.calls = 0
    return entail


def test_label_subtypes_are_one_way_implications(monkeypatch):
    kinds = {("writer", "person"), ("country", "location"), ("location", "country"), ("organization", "person")}
    monkeypatch.setattr(api, "entail", entail_stub(kinds))
    labels = ["person", "writer", "COUNTRY", "location", "organization"]
    # label names read as in prompts ("COUNTRY" -> "country"); a two-way implication is no
    # subtype; "an organization" gets its article
    assert label_subtypes(labels, model=None) == {("writer", "person"), ("organization", "person")}


def test_label_subtypes_take_the_stronger_direction(monkeypatch):
    """Both directions above 0.5: the stronger one is the subtype relation when it leads by
    more than the margin; a near-tie is none."""
    kinds = {("writer", "person"): 0.97, ("person", "writer"): 0.58,
             ("city", "country"): 0.84, ("country", "city"): 0.79}
    monkeypatch.setattr(api, "entail", entail_stub(kinds))
    assert label_subtypes(["person", "writer", "country", "city"], model=None) == {("writer", "person")}


def test_labels_with_their_own_prompts_are_not_judged(monkeypatch):
    """{label: prompt} labels may be codes ("C1", "B-PER"): prefer_specific leaves them alone."""
    stub = entail_stub({("c1", "c2")})
    monkeypatch.setattr(api, "entail", stub)
    task = make_ner_task({"C1": "Find all cities.", "C2": "Find all countries."})
    task.prepare(FakeModel())
    assert task.subtypes == frozenset() and stub.calls == 0
    named = make_ner_task(["C1", "C2"])
    named.prepare(FakeModel())
    assert named.subtypes == {("C1", "C2")} and stub.calls == 1
    # a dict whose prompts the template would have made (the CLI's --ner PERSON) is judged,
    # the label with a prompt of its own left out
    mixed = make_ner_task({"C1": "Find all c1 mentioned in the text.", "C2": "Find all c2 mentioned in the text.",
                           "C3": "Find all towns."})
    mixed.prepare(FakeModel())
    assert mixed.named == {"C1", "C2"} and mixed.subtypes == {("C1", "C2")}


class FakeModel:  # weakly referenced, as the real one
    pass


def test_prepare_judges_subtypes_once_per_model(monkeypatch):
    stub = entail_stub({("writer", "person")})
    monkeypatch.setattr(api, "entail", stub)
    task = make_ner_task(labels=["person", "writer"])
    model_a, model_b = FakeModel(), FakeModel()
    task.prepare(model_a)
    task.prepare(model_a)
    assert stub.calls == 1 and task.subtypes == {("writer", "person")}
    task.prepare(model_b)  # another (e.g. reloaded) model judges again
    assert stub.calls == 2
    for idle in (make_ner_task(labels=["person"]), make_ner_task(labels=["person", "writer"], spans_key="sc"),
                 make_ner_task(labels=["person", "writer"], prefer_specific=False)):
        idle.prepare(model_a)
        assert idle.subtypes == frozenset()
    assert stub.calls == 2


def test_pipeline_writes_the_more_specific_label(positive_checkpoint, monkeypatch):
    # the positive model finds DOSE and DRUG on the same span with the same score; without
    # subtypes the tie goes to "DOSE" (test_positive_model_marks_whole_text)
    # (labels given by name: labels with prompts of their own are not judged)
    monkeypatch.setattr(api, "entail", entail_stub({("drug", "dose")}))
    labels = sorted(dict(USER_NER_LABELS))
    assert [e.label_ for e in ner_nlp(positive_checkpoint, labels=labels)(TEXT).ents] == ["DRUG"]
    off = ner_nlp(positive_checkpoint, labels=labels, prefer_specific=False)
    assert [e.label_ for e in off(TEXT).ents] == ["DOSE"]


def test_make_span_expands_to_token_boundaries():
    doc = spacy.blank("en")("atorvastatin-20mg tablets")
    span = make_span(doc, 2, 5, "X", 0.7)
    assert span.start == 0 and span.start_char == 0
    assert span._.cortex_score == 0.7
    # min_marked: the range must be that share of the widened span's visible text
    assert make_span(doc, 0, 12, "X", 0.7, min_marked=0.5).text == "atorvastatin-20"  # 12 of 15
    assert make_span(doc, 2, 5, "X", 0.7, min_marked=0.5) is None  # 3 of 15
    assert make_span(doc, 18, 25, "X", 0.7, min_marked=1.0).text == "tablets"  # exact


# --- configuration --------------------------------------------------------------------------


def test_label_list_uses_template():
    task = make_ner_task(labels=["DRUG", "side_effect", "Person"])
    assert task.label_prompts == {
        "DRUG": "Find all drug mentioned in the text.",
        "side_effect": "Find all side effect mentioned in the text.",
        "Person": "Find all person mentioned in the text.",  # PERSON, in any case
    }
    assert task.labels == ["DRUG", "Person", "side_effect"]
    custom = make_ner_task(labels=["DRUG"], template="List every {label}.")
    assert custom.label_prompts == {"DRUG": "List every drug."}


def test_short_form_prompt_and_label(positive_checkpoint):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(positive_checkpoint)}})
    nlp.add_pipe("cortex_ner", config={"prompt": "Which medications are mentioned?", "label": "DRUG"})
    [ent] = nlp(TEXT).ents
    assert ent.label_ == "DRUG"
    assert nlp.get_pipe("cortex_ner").task.label_prompts == {"DRUG": "Which medications are mentioned?"}


@pytest.mark.parametrize(
    "config,match",
    [
        ({"labels": []}, "No labels"),
        ({}, "No labels"),
        ({"labels": ["X"], "prompt": "Which?", "label": "X"}, "not both"),
        ({"labels": {"X": "Which?"}, "prompt": "Which?"}, "not both"),
        ({"prompt": "Which?"}, "both `prompt` and `label`"),
        ({"labels": ["X"], "template": "no placeholder"}, "placeholder"),
        ({"labels": ["X"], "threshold": 1.5}, "threshold"),
        ({"labels": ["X"], "threshold": 0.0}, "threshold"),
        ({"labels": ["X"], "threshold": -0.2}, "threshold"),
        ({"labels": ["X"], "extend_threshold": 1.0}, "extend_threshold"),
        ({"labels": ["X"], "extend_threshold": "low"}, "extend_threshold"),
        ({"labels": ["X"], "window": 8}, "window"),
        ({"labels": ["X"], "window": 100.5}, "window"),
        ({"labels": ["X"], "window": True}, "window"),
    ],
)
def test_bad_config(config, match):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=match):
        nlp.add_pipe("cortex_ner", config=config)
    assert nlp.pipe_names == []


def test_ner_task_threshold_validation():
    with pytest.raises(ValueError):
        NERTask({"X": "x?"}, 1.0, None)
    assert NERTask({"X": "x?"}, 0.3, None).threshold == 0.3


# --- scoring --------------------------------------------------------------------------------


def test_score_ents(positive_checkpoint):
    nlp = ner_nlp(positive_checkpoint)
    ref = nlp.make_doc(TEXT)
    ref.ents = [Span(ref, 0, len(ref), label="DOSE")]
    wrong = nlp.make_doc("refund")
    wrong.ents = [Span(wrong, 0, 1, label="DRUG")]
    right = Example(nlp.make_doc(TEXT), ref)
    scores = nlp.evaluate([right])
    assert scores["ents_f"] == pytest.approx(1.0)
    assert scores["ents_per_type"]["DOSE"]["f"] == pytest.approx(1.0)
    scores = nlp.evaluate([right, Example(nlp.make_doc("refund"), wrong)])
    assert scores["ents_p"] == pytest.approx(0.5)  # 'refund' predicted as DOSE
    assert scores["ents_r"] == pytest.approx(0.5)


def test_score_spans_key(positive_checkpoint):
    nlp = ner_nlp(positive_checkpoint, spans_key="drugs")
    ref = nlp.make_doc(TEXT)
    ref.spans["drugs"] = [Span(ref, 0, len(ref), label="DRUG")]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), ref)])
    assert scores["spans_drugs_r"] == pytest.approx(1.0)
    assert scores["spans_drugs_p"] == pytest.approx(0.5)  # DOSE is predicted too


# --- issue 25: blocked tokens, tokens far larger than an entity, invisible characters -------


def marked(text, pieces):
    """RequestResult over `text` whose words are `pieces` (each found after the previous),
    a piece marked inside (0.99) when it is given as (piece, True), else outside (0.01)."""
    from spacy_cortex.core.encoding import EncodedText, RequestResult

    offsets, probs, pos = [], [], 0
    for piece in pieces:
        word, inside = piece if isinstance(piece, tuple) else (piece, False)
        start = text.index(word, pos)
        offsets.append((start, start + len(word)))
        probs.append([0.0, 0.99, 0.01] if inside else [0.0, 0.01, 0.99])
        pos = start + len(word)
    n = len(offsets)
    encoded = EncodedText(text, np.arange(100, 100 + n), np.asarray(offsets).reshape(-1, 2), np.arange(n))
    return RequestResult(np.asarray([[0.0, 0.9, 0.1]]), np.asarray(probs, dtype=np.float32), encoded)


def apply_marked(doc, pieces, labels=("PERSON",), **config):
    install_span_score()  # as a cortex_ner component does when it is created
    task = make_ner_task(list(labels), **config)
    task.apply(doc, {task.label_prompts[label]: marked(doc.text, pieces) for label in labels})
    return doc


def test_blocked_tokens_never_get_an_entity():
    nlp = spacy.blank("en")
    doc = nlp.make_doc("Ada Lovelace met Grace Hopper in London")
    doc.set_ents([Span(doc, 6, 7, label="GPE")], blocked=[doc[3:5]], default="unmodified")
    apply_marked(doc, [("Ada", True), ("Lovelace", True), "met", ("Grace", True), ("Hopper", True), "in",
                       ("London", True)])
    assert [(e.text, e.label_) for e in doc.ents] == [("Ada Lovelace", "PERSON"), ("London", "GPE")]
    assert [(t.ent_iob, t.ent_type) for t in doc[3:5]] == [(3, 0), (3, 0)]  # still blocked
    assert [(e.text, e.label_) for e in blocked_spans(doc)] == [("Grace Hopper", "")]


def test_a_span_partly_blocked_is_dropped_whole():
    doc = spacy.blank("en").make_doc("Grace Hopper spoke")
    doc.set_ents([], blocked=[doc[1:2]])
    apply_marked(doc, [("Grace", True), ("Hopper", True), "spoke"])
    assert list(doc.ents) == [] and doc[1].ent_iob == 3


def test_a_clause_tokenized_as_one_token_is_not_labelled(monkeypatch):
    """Issue 25: the model marks 東京 and the whitespace tokenizer made the clause one token:
    the clause is no GPE; the span is kept in Doc.spans["cortex_unaligned"], with a warning
    once per language."""
    monkeypatch.setattr(ner_module, "_warned_unaligned", set())
    text = "山田太郎さんは東京で働いています。"
    pieces = ["山田太郎さんは", ("東京", True), "で働いています", "。"]
    with pytest.warns(UserWarning, match="'東京' .*inside the spaCy token.*cortex_unaligned"):
        doc = apply_marked(spacy.blank("xx").make_doc(text), pieces, labels=["GPE"])
    assert list(doc.ents) == []
    [kept] = doc.spans["cortex_unaligned"]
    assert (kept.text, kept.label_, kept._.cortex_score) == ("山田太郎さんは東京で働いています", "GPE", pytest.approx(0.99))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once
        apply_marked(spacy.blank("xx").make_doc(text), pieces, labels=["GPE"])


def test_tokens_a_little_wider_than_the_span_still_hold_it():
    doc = apply_marked(spacy.blank("en").make_doc("atorvastatin-20mg tablets"),
                       [("atorvastatin", True), "-20mg", "tablets"], labels=["DRUG"])
    assert [(e.text, e.label_) for e in doc.ents] == [("atorvastatin-20", "DRUG")]  # spaCy: "atorvastatin-20" "mg"


NAME = [("Emma", True), ("Watson", True)]


@pytest.mark.parametrize("text, pieces", [("\ufeffEmma Watson is here", NAME + ["is", "here"]),
                                          ("Emma Watson\u200b is here", NAME + ["is", "here"]),
                                          ("hi \u200bEmma Watson\u2060", ["hi"] + NAME)])
def test_invisible_characters_at_token_edges_stay_out_of_entities(text, pieces):
    doc = apply_marked(spacy.blank("en").make_doc(text), pieces)
    assert [e.text for e in doc.ents] == ["Emma Watson"]
    assert doc.text == text


def test_detach_invisible_leaves_other_docs_alone():
    doc = spacy.blank("en").make_doc("Emma\u200dWatson 👨\u200d👩 here")
    before = [t.text for t in doc]
    detach_invisible(doc)
    assert [t.text for t in doc] == before  # joiners inside a token stay
