"""cortex_textcat: zero-shot classification from one yes/no prompt per label."""
import numpy as np
import pytest
import spacy
from conftest import task_nlp
from spacy.training import Example

from spacy_cortex.textcat import make_textcat_task

LABELS = ["billing", "shipping", "refund"]
TEXT = "I asked about a refund for billing and shipping."


def textcat_nlp(checkpoint, **config):
    return task_nlp(checkpoint, "cortex_textcat", {"labels": list(LABELS), **config})


def test_exclusive_sums_to_one(varied_checkpoint):
    nlp = textcat_nlp(varied_checkpoint, exclusive=True)
    for text in [TEXT, "", "🍕", "the drug dose " * 200]:
        doc = nlp(text)
        assert sorted(doc.cats) == sorted(LABELS)
        assert sum(doc.cats.values()) == pytest.approx(1.0)
        assert all(0.0 <= p <= 1.0 for p in doc.cats.values())


def test_multi_label_is_independent(positive_checkpoint, negative_checkpoint):
    doc = textcat_nlp(positive_checkpoint, exclusive=False)(TEXT)
    assert all(p > 0.99 for p in doc.cats.values())
    assert sum(doc.cats.values()) > 2.9
    doc = textcat_nlp(negative_checkpoint, exclusive=False)(TEXT)
    assert all(p < 0.01 for p in doc.cats.values())
    # exclusive normalises the same yes-probabilities
    doc = textcat_nlp(positive_checkpoint, exclusive=True)(TEXT)
    assert np.allclose(list(doc.cats.values()), 1 / 3)


def test_exclusive_is_normalised_multilabel(varied_checkpoint):
    multi = textcat_nlp(varied_checkpoint, exclusive=False)(TEXT).cats
    excl = textcat_nlp(varied_checkpoint, exclusive=True)(TEXT).cats
    total = sum(multi.values())
    for label in LABELS:
        assert excl[label] == pytest.approx(multi[label] / total)


def test_prompts_from_template_and_dict():
    task = make_textcat_task(["SPORTS_NEWS", "billing"])
    assert task.label_prompts == {
        "SPORTS_NEWS": "Is this text about sports news?",
        "billing": "Is this text about billing?",
    }
    task = make_textcat_task(["billing"], template="Is this a {label} request?")
    assert task.label_prompts == {"billing": "Is this a billing request?"}
    task = make_textcat_task({"POS": "Is this text positive?", "NEG": "Is this text negative?"})
    assert task.labels == ["NEG", "POS"]
    assert task.prompts(None) == ["Is this text positive?", "Is this text negative?"]


def test_keeps_other_cats(varied_checkpoint):
    nlp = textcat_nlp(varied_checkpoint)
    nlp.add_pipe("cortex_textcat", name="urgency", config={"labels": ["urgent"], "exclusive": False})
    assert nlp.pipe_names == ["cortex", "cortex_textcat", "urgency"]
    doc = nlp(TEXT)
    assert sorted(doc.cats) == sorted(LABELS + ["urgent"])
    assert sum(doc.cats[l] for l in LABELS) == pytest.approx(1.0)


@pytest.mark.parametrize(
    "config,match",
    [
        ({"labels": []}, "No labels"),
        ({"labels": None}, "No labels"),
        ({"labels": ["a"], "template": "Is it?"}, "placeholder"),
        ({"labels": ["a"], "threshold": 1.5}, "threshold"),
        ({"labels": ["a"], "threshold": -0.1}, "threshold"),
    ],
)
def test_bad_config(config, match):
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match=match):
        nlp.add_pipe("cortex_textcat", config=config)
    assert nlp.pipe_names == []


def test_score_multilabel(positive_checkpoint):
    nlp = textcat_nlp(positive_checkpoint, exclusive=False)
    ref = nlp.make_doc(TEXT)
    ref.cats = {"billing": 1.0, "shipping": 0.0, "refund": 1.0}
    scores = nlp.evaluate([Example(nlp.make_doc(TEXT), ref)])
    assert "cats_score" in scores
    # every label predicted: billing, refund right; shipping a false positive
    assert scores["cats_f_per_type"]["billing"]["f"] == pytest.approx(1.0)
    assert scores["cats_f_per_type"]["shipping"]["p"] == pytest.approx(0.0)
    assert scores["cats_micro_p"] == pytest.approx(2 / 3)
    assert scores["cats_micro_r"] == pytest.approx(1.0)


def test_score_exclusive(varied_checkpoint):
    nlp = textcat_nlp(varied_checkpoint, exclusive=True)
    texts = [TEXT, "the patient was given 20 mg", "refund"]
    predicted = [nlp(t).cats for t in texts]
    examples = []
    for text, cats in zip(texts, predicted):
        ref = nlp.make_doc(text)
        best = max(cats, key=cats.get)
        ref.cats = {label: float(label == best) for label in LABELS}
        examples.append(Example(nlp.make_doc(text), ref))
    scores = nlp.evaluate(examples)
    assert scores["cats_score"] is not None
    assert scores["cats_micro_f"] == pytest.approx(1.0)  # gold = the model's own argmax
