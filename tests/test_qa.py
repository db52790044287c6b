"""cortex_qa: extractive and yes/no questions."""
import pytest
import spacy
from conftest import task_nlp
from spacy.training import Example

from spacy_cortex.qa import (
    SPANS_KEY,
    exact_match,
    normalize_answer,
    normalize_question,
    question_type,
    token_f1,
)

TEXT = "The patient was given 20 mg atorvastatin."
QUESTIONS = ["Who was prescribed the drug?", "Is it a drug?"]


def qa_nlp(checkpoint, questions=QUESTIONS, **config):
    return task_nlp(checkpoint, "cortex_qa", {"questions": list(questions), **config})


def test_positive_model_answers(positive_checkpoint):
    doc = qa_nlp(positive_checkpoint)(TEXT)
    extractive, boolean = doc._.cortex_answers
    assert extractive["question"] == QUESTIONS[0] and extractive["type"] == "extractive"
    assert extractive["text"] == TEXT
    assert (extractive["start_char"], extractive["end_char"]) == (0, len(TEXT))
    assert extractive["score"] > 0.99
    assert boolean["type"] == "boolean"
    assert boolean["text"] == "yes"
    assert boolean["start_char"] is None and boolean["score"] > 0.99
    [span] = doc.spans[SPANS_KEY]  # only the extractive answer is a span
    assert span.text == TEXT and span.label_ == QUESTIONS[0]


def test_negative_model_has_no_answer(negative_checkpoint):
    doc = qa_nlp(negative_checkpoint)(TEXT)
    extractive, boolean = doc._.cortex_answers
    assert extractive["text"] is None
    assert extractive["start_char"] is None and extractive["end_char"] is None
    assert extractive["score"] > 0.99  # confident there is no answer
    assert boolean["text"] == "no" and boolean["score"] > 0.99
    assert list(doc.spans[SPANS_KEY]) == []


def test_max_answer_words(positive_checkpoint):
    text = " ".join(["the patient was given 20 mg atorvastatin"] * 6)
    doc = qa_nlp(positive_checkpoint, ["Who?"], max_answer_words=5)(text)
    [answer] = doc._.cortex_answers
    assert len(answer["text"].split()) == 5
    assert text[answer["start_char"] : answer["end_char"]] == answer["text"]


def test_empty_doc(positive_checkpoint):
    doc = qa_nlp(positive_checkpoint)("")
    extractive, boolean = doc._.cortex_answers
    assert extractive["text"] is None
    assert boolean["text"] in ("yes", "no")
    assert list(doc.spans[SPANS_KEY]) == []


def test_per_doc_questions(positive_checkpoint):
    nlp = qa_nlp(positive_checkpoint, ["Who was prescribed the drug?"])
    model = nlp.get_pipe("cortex").model
    calls = []
    original = model.hf_model.forward
    model.hf_model.forward = lambda *a, **k: calls.append(1) or original(*a, **k)

    doc = nlp.make_doc(TEXT)
    doc._.cortex_questions = ["Does the patient take atorvastatin?", {"question": "What dose?", "type": "extractive"}]
    plain = nlp.make_doc(TEXT)  # similar lengths: one padded batch
    docs = list(nlp.pipe([doc, plain]))
    assert len(calls) == 1  # per-doc questions go through the same single cortex run
    answers = docs[0]._.cortex_answers
    assert [a["question"] for a in answers] == [
        "Who was prescribed the drug?", "Does the patient take atorvastatin?", "What dose?",
    ]
    assert [a["type"] for a in answers] == ["extractive", "boolean", "extractive"]
    assert [a["text"] for a in answers] == [TEXT, "yes", TEXT]
    assert [s.label_ for s in docs[0].spans[SPANS_KEY]] == ["Who was prescribed the drug?", "What dose?"]
    assert [a["question"] for a in docs[1]._.cortex_answers] == ["Who was prescribed the drug?"]
    # the same through __call__
    doc2 = nlp.make_doc(TEXT)
    doc2._.cortex_questions = ["Is it a drug?"]
    assert [a["text"] for a in nlp(doc2)._.cortex_answers] == [TEXT, "yes"]


def test_questions_only_per_doc(negative_checkpoint):
    nlp = qa_nlp(negative_checkpoint, [])
    assert list(nlp("refund")._.cortex_answers) == []
    doc = nlp.make_doc(TEXT)
    doc._.cortex_questions = ["Who?"]
    [answer] = nlp(doc)._.cortex_answers
    assert answer["text"] is None


# --- questions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question,kind",
    [
        ("Is it a drug?", "boolean"),
        ("does the patient take it?", "boolean"),
        ("  Can he walk?", "boolean"),
        ("Who was prescribed the drug?", "extractive"),
        ("What dose?", "extractive"),
        ("Island of the patient?", "extractive"),
        ("", "extractive"),
    ],
)
def test_question_type(question, kind):
    assert question_type(question) == kind


def test_normalize_question():
    assert normalize_question(" Is it? ") == {"question": "Is it?", "type": "boolean"}
    assert normalize_question({"question": "Is it?", "type": "extractive"}) == {
        "question": "Is it?", "type": "extractive",
    }
    for bad, match in [
        ("   ", "Empty question"),
        ({"type": "boolean"}, "Empty question"),
        ({"question": "Who?", "type": "multiple_choice"}, "Unknown question type"),
        ({"question": "Who?", "kind": "boolean"}, "Unknown question keys"),
    ]:
        with pytest.raises(ValueError, match=match):
            normalize_question(bad)


@pytest.mark.parametrize(
    "config,match",
    [
        ({"questions": [{"question": "Who?", "type": "yesno"}]}, "Unknown question type 'yesno'"),
        ({"questions": [""]}, "Empty question"),
        ({"questions": ["Who?"], "no_answer_threshold": 1.5}, "no_answer_threshold"),
        ({"questions": ["Who?"], "max_answer_words": 0}, "max_answer_words"),
    ],
)
def test_bad_config(config, match):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=match):
        nlp.add_pipe("cortex_qa", config=config)
    assert nlp.pipe_names == []


def test_bad_per_doc_question(tiny_checkpoint):
    nlp = qa_nlp(tiny_checkpoint)
    doc = nlp.make_doc(TEXT)
    doc._.cortex_questions = [{"question": "Who?", "type": "nope"}]
    with pytest.raises(ValueError, match="Unknown question type"):
        nlp(doc)


# --- scoring --------------------------------------------------------------------------------


def test_squad_metrics():
    assert normalize_answer("The  Patient, given!") == "patient given"
    assert exact_match("the patient", "Patient.") == 1.0
    assert exact_match("a patient", "doctor") == 0.0
    assert token_f1("20 mg atorvastatin", "20 mg") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0
    assert token_f1("", "x") == 0.0
    assert token_f1("x y", "z") == 0.0


def test_score_with_nlp_evaluate(positive_checkpoint):
    nlp = qa_nlp(positive_checkpoint)
    examples = []
    # gold answer = the whole text: exact match
    ref = nlp.make_doc(TEXT)
    ref.spans[SPANS_KEY] = [ref.char_span(0, len(TEXT), label=QUESTIONS[0])]
    examples.append(Example(nlp.make_doc(TEXT), ref))
    scores = nlp.evaluate(examples)
    assert scores["qa_f1"] == pytest.approx(1.0)
    assert scores["qa_exact"] == pytest.approx(1.0)
    # gold answer = '20 mg': partial overlap
    ref = nlp.make_doc(TEXT)
    ref.spans[SPANS_KEY] = [ref.char_span(22, 27, label=QUESTIONS[0])]
    expected_f1 = token_f1(TEXT, "20 mg")
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), ref)])
    assert scores["qa_exact"] == 0.0
    assert scores["qa_f1"] == pytest.approx(expected_f1)
    # yes/no gold answers from reference._.cortex_answers
    ref = nlp.make_doc(TEXT)
    ref._.cortex_answers = [{"question": QUESTIONS[1], "text": "yes"}]
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), ref)])
    assert scores["qa_exact"] == pytest.approx(1.0)
    # no gold at all: no score
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), nlp.make_doc(TEXT))])
    assert scores["qa_f1"] is None


def test_no_answer_threshold(negative_checkpoint):
    # with a threshold of 0 even a model that sees no answer returns its best span
    doc = qa_nlp(negative_checkpoint, ["Who?"], no_answer_threshold=0.0)(TEXT)
    [answer] = doc._.cortex_answers
    assert answer["text"] and answer["text"] in TEXT
    assert TEXT[answer["start_char"] : answer["end_char"]] == answer["text"]
    assert len(doc.spans[SPANS_KEY]) == 1


def test_answer_and_span_agree_on_spacy_tokens(positive_checkpoint):
    """The tokenizer splits 'm_okafor99' at '_': the answer said 'm' (10, 11) while
    Doc.spans held 'm_okafor99' (10, 20). Both now give the spaCy tokens' text."""
    nlp = qa_nlp(positive_checkpoint, questions=["What is the username?"], max_answer_words=1)
    doc = nlp("Username: m_okafor99 was locked.")
    [entry] = doc._.cortex_answers
    [span] = doc.spans[SPANS_KEY]
    assert (entry["text"], entry["start_char"], entry["end_char"]) == (span.text, span.start_char, span.end_char)
    assert all(doc.text[entry["start_char"]:entry["end_char"]] == entry["text"] for entry in doc._.cortex_answers)
    assert span.start_char in {t.idx for t in doc} and span.end_char in {t.idx + len(t) for t in doc}


def test_repeated_questions_warn():
    from spacy_cortex.qa import make_qa_task

    with pytest.warns(UserWarning, match="more than once"):
        make_qa_task(["Who?", "Who?"])


@pytest.mark.parametrize("text", ["", "  \n", "\ufeff"])
def test_a_blank_doc_holds_no_answer(positive_checkpoint, text):
    """The shared blank-text rule (issue 25 item 7): even a model that says 'answer' to
    everything finds none in a blank doc; before, its no-answer score was 1 - 0.99."""
    extractive, boolean = qa_nlp(positive_checkpoint)(text)._.cortex_answers
    assert (extractive["text"], extractive["score"]) == (None, 1.0)
    assert (boolean["text"], boolean["score"]) == ("no", 1.0)
    assert qa_nlp(positive_checkpoint, no_answer_threshold=0.0)(text)._.cortex_answers[0]["text"] is None


@pytest.mark.parametrize("config,match", [
    ({"no_answer_threshold": 1.5}, "no_answer_threshold must be a number between 0 and 1, got 1.5"),
    ({"max_answer_words": 0}, "max_answer_words must be a whole number of at least 1, got 0"),
])
def test_answer_settings_are_checked_as_in_the_api(tiny_checkpoint, config, match):
    with pytest.raises(ValueError, match=match):
        qa_nlp(tiny_checkpoint, **config)
