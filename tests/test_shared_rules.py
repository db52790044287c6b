"""One rule for blank texts and one no-answer rule, in the API and the components alike
(issue 25, item 7): classify([""]) gave 0.526 / 0.474 where cortex_textcat gave 0, and
answer() returned a span ("Gustave", has_answer 0.004) where cortex_qa returned none."""
import pytest
import spacy

from spacy_cortex import CortexModel, answer, classify, entail, extract, load_model, rank, score, select, similarity
from spacy_cortex.core.decoding import is_blank

BLANKS = ["", "   ", "\n\n", "\t \u200b", "\ufeff"]
LABELS = ["billing", "refund", "shipping"]


@pytest.fixture(scope="module")
def varied(varied_checkpoint):
    return CortexModel.from_path(varied_checkpoint)


def pipeline_of(model, factory, config):
    """A pipeline whose cortex runs exactly `model` (the API's model)."""
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex")
    nlp.get_pipe("cortex").model = model
    nlp.add_pipe(factory, config=config)
    return nlp


def test_is_blank():
    assert all(is_blank(t) for t in BLANKS)
    assert not any(is_blank(t) for t in ("a", " .", "\ufeffEmma", "🙂"))


@pytest.mark.parametrize("none_label", [None, "none"])
@pytest.mark.parametrize("exclusive", [True, False])
def test_classify_and_cortex_textcat_score_a_blank_text_alike(varied, exclusive, none_label):
    nlp = pipeline_of(varied, "cortex_textcat", {"labels": LABELS, "exclusive": exclusive, "none_label": none_label})
    expected = {**dict.fromkeys(LABELS, 0.0), **({none_label: 1.0} if none_label else {})}
    api = classify(BLANKS + ["a refund please"], LABELS, exclusive=exclusive, none_label=none_label, model=varied)
    for text, cats in zip(BLANKS + ["a refund please"], api):
        assert cats == pytest.approx(nlp(text).cats, abs=1e-6), repr(text)
    assert api[:len(BLANKS)] == [expected] * len(BLANKS)


@pytest.mark.parametrize("no_answer_threshold", [0.0, 0.3, 0.5, 0.9, 1.0])
def test_answer_and_cortex_qa_share_the_no_answer_rule(varied, no_answer_threshold):
    question = "Who was prescribed the drug?"
    contexts = ["The patient was given 20 mg atorvastatin.", "I asked about a refund.", "the dose",
                "Gustave Eiffel built it."] + BLANKS
    nlp = pipeline_of(varied, "cortex_qa", {"questions": [question], "no_answer_threshold": no_answer_threshold})
    api = answer(question, contexts, no_answer_threshold=no_answer_threshold, model=varied)
    for context, a in zip(contexts, api):
        [entry] = nlp(context)._.cortex_answers
        assert a["text"] == entry["text"], (context, a)
        assert (a["text"] is None) == (a["has_answer"] < no_answer_threshold or is_blank(context))
        if a["text"] is None:
            assert (a["start_char"], a["end_char"], a["score"]) == (None, None, 0.0)
            assert entry["score"] == pytest.approx(1.0 - a["has_answer"])
    for a in api[-len(BLANKS):]:
        assert a == {"text": None, "start_char": None, "end_char": None, "score": 0.0, "has_answer": 0.0}


def test_the_default_no_answer_threshold_is_cortex_qas(varied):
    """Before: answer() returned a span whatever has_answer said."""
    question, context = "Who was prescribed the drug?", "The patient was given 20 mg atorvastatin."
    [a] = answer(question, context, model=varied)
    [entry] = pipeline_of(varied, "cortex_qa", {"questions": [question]})(context)._.cortex_answers
    assert a["text"] == entry["text"]
    assert a["has_answer"] < 0.5 and a["text"] is None  # this random model is unsure


def test_blank_texts_in_every_api_function(varied):
    assert extract(BLANKS, "Which drug?", threshold=0.01, extend_threshold=None, model=varied) == [[]] * len(BLANKS)
    for probs in entail(BLANKS, "A drug was given.", model=varied):
        assert probs == {"entailment": 0.0, "neutral": 1.0, "contradiction": 0.0}
    assert similarity(BLANKS, "a drug", model=varied) == [0.0] * len(BLANKS)
    assert similarity("a drug", BLANKS, model=varied) == [0.0] * len(BLANKS)
    assert sorted(r["score"] for r in rank("Which drug?", BLANKS, model=varied)) == [0.0] * len(BLANKS)
    assert score(" ", ["20 mg", "a refund"], model=varied) == [0.0, 0.0]
    assert select("", ["20 mg", "a refund"], model=varied) == {"index": None, "candidate": None, "score": 0.0,
                                                                 "scores": [0.0, 0.0]}


def test_cortex_select_and_select_agree_on_a_blank_instruction(varied):
    nlp = pipeline_of(varied, "cortex_select", {})
    doc = nlp.make_doc(" ")
    doc._.cortex_candidates = ["20 mg", "a refund"]
    doc = nlp(doc)
    api = select(" ", ["20 mg", "a refund"], model=varied)
    assert (doc._.cortex_selected, doc._.cortex_candidate_scores) == (api["candidate"], api["scores"])


@pytest.fixture(scope="module")
def shipped():
    return load_model()


def test_shipped_model_gives_no_answer_where_cortex_qa_gives_none(shipped):
    """The issue's shape: a question the context cannot answer, a name in the context."""
    question, context = "Who painted the Mona Lisa?", "Gustave Eiffel built the tower in 1889."
    [a] = answer(question, context, model=shipped)
    [entry] = pipeline_of(shipped, "cortex_qa", {"questions": [question]})(context)._.cortex_answers
    assert a["has_answer"] < 0.5
    assert a["text"] is None and entry["text"] is None
    assert answer("Who built the tower?", context, model=shipped)[0]["text"] == "Gustave Eiffel"


def test_shipped_model_blank_doc_has_no_answer_and_no_category(shipped):
    nlp = pipeline_of(shipped, "cortex_qa", {"questions": ["Who built it?", "Is it old?"]})
    nlp.add_pipe("cortex_textcat", config={"labels": ["sports", "politics"], "none_label": "none"})
    doc = nlp("")
    assert [(e["text"], e["score"]) for e in doc._.cortex_answers] == [(None, 1.0), ("no", 1.0)]
    assert doc.cats == {"politics": 0.0, "sports": 0.0, "none": 1.0}
    assert classify([""], ["sports", "politics"], none_label="none", model=shipped) == [doc.cats]
