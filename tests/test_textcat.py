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
    for text in [TEXT, "🍕", "the drug dose " * 200]:
        doc = nlp(text)
        assert sorted(doc.cats) == sorted(LABELS)
        assert sum(doc.cats.values()) == pytest.approx(1.0)
        assert all(0.0 <= p <= 1.0 for p in doc.cats.values())


@pytest.mark.parametrize("exclusive", [True, False])
def test_a_doc_without_text_has_no_category(positive_checkpoint, exclusive):
    for text in ["", "   ", "\n\n", "\ufeff", " \u200b "]:  # invisible format characters are blank too
        assert textcat_nlp(positive_checkpoint, exclusive=exclusive)(text).cats == dict.fromkeys(LABELS, 0.0)
        cats = textcat_nlp(positive_checkpoint, exclusive=exclusive, none_label="none")(text).cats
        assert cats == {**dict.fromkeys(LABELS, 0.0), "none": 1.0}


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


@pytest.mark.parametrize("exclusive", [True, False])
def test_one_label_is_a_yes_no_question(negative_checkpoint, positive_checkpoint, exclusive):
    """One label with the default exclusive scored 1.0 for every text."""
    for checkpoint, expect_yes in [(negative_checkpoint, False), (positive_checkpoint, True)]:
        nlp = task_nlp(checkpoint, "cortex_textcat", {"labels": ["refund"], "exclusive": exclusive})
        score = nlp("please refund me").cats["refund"]
        assert (score > 0.99) if expect_yes else (score < 0.01)


def test_none_label_says_none_of_these(negative_checkpoint, positive_checkpoint):
    cats = textcat_nlp(negative_checkpoint, none_label="none")(TEXT).cats
    assert set(cats) == set(LABELS) | {"none"}
    assert cats["none"] > 0.99 and sum(cats.values()) == pytest.approx(1.0)
    cats = textcat_nlp(positive_checkpoint, none_label="none")(TEXT).cats
    assert cats["none"] < 0.01 and sum(cats.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("none_label", ["", "  ", "refund"])
def test_bad_none_label(none_label):
    with pytest.raises(ValueError, match="none_label"):
        make_textcat_task(list(LABELS), none_label=none_label)


def test_a_label_applies_to_a_long_text_when_one_part_shows_it(varied_checkpoint):
    """[CLS] answers of yes/no prompts were averaged over windows, so a label faded as
    unrelated text followed: the window that says yes most strongly now decides."""
    from spacy_cortex.core.decoding import yes_probability

    spacy_nlp = spacy.blank("en")
    spacy_nlp.add_pipe("cortex", config={"model": {"checkpoint": str(varied_checkpoint), "max_length": 64, "stride": 8}})
    spacy_nlp.add_pipe("cortex_textcat", config={"labels": list(LABELS), "exclusive": False})
    model = spacy_nlp.get_pipe("cortex").model
    head = "I asked about a refund for billing."
    filler = "\n\n".join(["the patient was given a dose of the drug"] * 30)
    long_doc = spacy_nlp(head + "\n\n" + filler)
    prompt = spacy_nlp.get_pipe("cortex_textcat").task.label_prompts["refund"]
    [alone] = model.run_texts([(prompt, head)])
    assert long_doc.cats["refund"] >= yes_probability(alone) - 1e-4


SHORTLIST_TEXTS = [TEXT, "", "🍕", "My parcel never arrived and I want my money back.", "the drug dose " * 200]


def test_shortlist_asks_only_the_closest_labels(varied_checkpoint):
    """shortlist=k: one embedding pass per text ranks the labels; only the top k are
    prompted, the others score 0; the top k are the labels whose words' embeddings are
    closest to the text's."""
    labels = ["billing", "shipping", "refund", "account access", "card payment"]
    nlp = task_nlp(varied_checkpoint, "cortex_textcat", {"labels": labels, "exclusive": True, "shortlist": 2})
    model, task = nlp.get_pipe("cortex").model, nlp.get_pipe("cortex_textcat").task
    asked = []
    real_run = model.run
    model.run = lambda requests, window=None: asked.append(len(requests)) or real_run(requests, window)
    docs = list(nlp.pipe(SHORTLIST_TEXTS, batch_size=8))
    assert asked == [2 * len(SHORTLIST_TEXTS)]  # one run for the batch, 2 prompts per doc
    ordered = sorted(labels)
    similarity = model.embed([d.text for d in docs]) @ model.embed(ordered).T
    for doc, row in zip(docs, similarity):
        if not doc.text:  # no text, no category (test_a_doc_without_text_has_no_category)
            assert set(doc.cats.values()) == {0.0}
            continue
        expected = {ordered[i] for i in np.argsort(-row, kind="stable")[:2]}
        assert {label for label, p in doc.cats.items() if p > 0} == expected
        assert sorted(doc.cats) == sorted(labels) and sum(doc.cats.values()) == pytest.approx(1.0)
    # a doc that skipped cortex is filled in by the component itself, with the same shortlist
    alone = nlp.get_pipe("cortex_textcat")(nlp.make_doc(SHORTLIST_TEXTS[3]))
    assert alone.cats == pytest.approx(docs[3].cats)
    assert task._shortlists.keys() <= set(SHORTLIST_TEXTS)  # only the current batch is kept


def test_shortlist_of_all_labels_changes_nothing(varied_checkpoint):
    full = textcat_nlp(varied_checkpoint, exclusive=True)
    same = textcat_nlp(varied_checkpoint, exclusive=True, shortlist=len(LABELS))
    for text in SHORTLIST_TEXTS:
        assert same(text).cats == pytest.approx(full(text).cats)


@pytest.mark.parametrize("shortlist", [-1, 1.5, True, "3"])
def test_bad_shortlist(shortlist):
    with pytest.raises(ValueError, match="shortlist"):
        make_textcat_task(LABELS, shortlist=shortlist)
    with pytest.raises(ValueError, match="shortlist"):
        spacy.blank("en").add_pipe("cortex_textcat", config={"labels": LABELS, "shortlist": -1})


def test_embed_gives_unit_vectors_whatever_the_batch(tiny_checkpoint):
    from spacy_cortex.core.model import CortexModel

    model = CortexModel.from_path(tiny_checkpoint)
    alone = model.embed(["short text"])
    together = model.embed(["short text", "a much longer text " * 40, ""])
    assert together.shape == (3, model.hf_model.config.hidden_size)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(alone[0], together[0], atol=1e-5)  # padding does not change a vector
    assert model.embed([]).shape == (0, model.hf_model.config.hidden_size)
