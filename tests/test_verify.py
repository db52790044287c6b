"""cortex_verify: entities (and categories) proposed upstream, checked by the cortex model."""
import pytest
import spacy
from spacy.language import Language
from spacy.tokens import Doc

from spacy_cortex.core.decoding import span_probability
from spacy_cortex.templates import label_prompts

TEXTS = ["Ada Lovelace met Charles Babbage at Acme in London.",
         "The patient was given atorvastatin by Acme staff.", "No entities here.", ""]
PATTERNS = [{"label": "PERSON", "pattern": "Ada Lovelace"}, {"label": "PERSON", "pattern": "Charles Babbage"},
            {"label": "ORG", "pattern": "Acme"}, {"label": "GPE", "pattern": "London"},
            {"label": "DRUG", "pattern": "atorvastatin"}]


@Language.component("test_propose_cats")
def propose_cats(doc: Doc) -> Doc:
    doc.cats = {"sports": 0.9, "billing": 0.2}
    return doc


def verify_nlp(checkpoint, cortex_first=False, **config):
    """entity_ruler proposes, cortex_verify checks; cortex after the ruler (so that it sees
    the entities and runs their prompts with everything else) unless cortex_first."""
    nlp = spacy.blank("en")
    if cortex_first:
        nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), "precision": "fp32"}})
    nlp.add_pipe("entity_ruler").add_patterns(PATTERNS)
    nlp.add_pipe("test_propose_cats")
    if not cortex_first:
        nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), "precision": "fp32"}})
    nlp.add_pipe("cortex_verify", config=config)
    return nlp


def expected_scores(nlp, text):
    """What the model gives each proposed entity under its label's NER prompt, run alone."""
    model = nlp.get_pipe("cortex").model
    proposed = spacy.blank("en")
    proposed.add_pipe("entity_ruler").add_patterns(PATTERNS)
    scores = {}
    for ent in proposed(text).ents:
        prompt = label_prompts([ent.label_], None, "ner")[ent.label_]
        [result] = model.run_texts([(prompt, text)])
        scores[ent.text, ent.label_] = span_probability(result, ent.start_char, ent.end_char)
    return scores


def test_scores_are_the_models_and_the_threshold_splits(varied_checkpoint):
    text = TEXTS[0]
    scores = expected_scores(verify_nlp(varied_checkpoint), text)
    assert len(scores) == 4 and len(set(scores.values())) > 1
    threshold = sorted(scores.values())[1] + 1e-6  # two below, two at or above
    doc = verify_nlp(varied_checkpoint, threshold=threshold)(text)
    kept = {(e.text, e.label_): e._.cortex_score for e in doc.ents}
    rejected = {(s.text, s.label_): s._.cortex_score for s in doc.spans["cortex_rejected"]}
    assert len(kept) == 2 and len(rejected) == 2
    assert {**kept, **rejected} == pytest.approx(scores, abs=1e-5)
    assert all(s >= threshold for s in kept.values()) and all(s < threshold for s in rejected.values())
    # a rejected entity's tokens are outside any entity now
    for span in doc.spans["cortex_rejected"]:
        assert all(t.ent_iob_ == "O" for t in span)


def test_positive_keeps_everything_negative_rejects_everything(positive_checkpoint, negative_checkpoint):
    doc = verify_nlp(positive_checkpoint)(TEXTS[1])
    assert [(e.text, e.label_) for e in doc.ents] == [("atorvastatin", "DRUG"), ("Acme", "ORG")]
    assert all(e._.cortex_score > 0.99 for e in doc.ents) and list(doc.spans["cortex_rejected"]) == []
    doc = verify_nlp(negative_checkpoint)(TEXTS[1])
    assert list(doc.ents) == []
    assert [(s.text, s.label_) for s in doc.spans["cortex_rejected"]] == [("atorvastatin", "DRUG"), ("Acme", "ORG")]
    assert all(s._.cortex_score < 0.01 for s in doc.spans["cortex_rejected"])


def test_only_the_given_labels_are_checked(negative_checkpoint):
    nlp = verify_nlp(negative_checkpoint, labels={"ORG": "Which companies are named?"})
    doc = nlp(TEXTS[0])
    assert [(e.text, e.label_, e._.cortex_score) for e in doc.ents] == [
        ("Ada Lovelace", "PERSON", None), ("Charles Babbage", "PERSON", None), ("London", "GPE", None)]
    assert [s.text for s in doc.spans["cortex_rejected"]] == ["Acme"]
    assert nlp.get_pipe("cortex_verify").labels == ("ORG",)


def test_labels_are_worded_as_cortex_ner_words_them(positive_checkpoint):
    task = verify_nlp(positive_checkpoint).get_pipe("cortex_verify").task
    assert task.prompt("ORG", "ner") == label_prompts(["ORG"], None, "ner")["ORG"]
    assert "organization" in task.prompt("ORG", "ner")
    assert task.prompt("billing_issue", "textcat") == label_prompts(["billing_issue"], None, "textcat")["billing_issue"]


def test_categories(positive_checkpoint, negative_checkpoint):
    doc = verify_nlp(negative_checkpoint, cats=True)(TEXTS[0])
    assert doc.cats == {"sports": 0.0, "billing": 0.2}  # only the assigned category is checked
    assert set(doc._.cortex_cat_scores) == {"sports"} and doc._.cortex_cat_scores["sports"] < 0.01
    assert set(doc._.cortex_rejected_cats) == {"sports"}
    doc = verify_nlp(positive_checkpoint, cats=True)(TEXTS[0])
    assert doc.cats == {"sports": 0.9, "billing": 0.2} and doc._.cortex_rejected_cats == {}
    assert verify_nlp(negative_checkpoint)(TEXTS[0]).cats == {"sports": 0.9, "billing": 0.2}  # cats off


@pytest.mark.parametrize("cortex_first", [False, True])
def test_pipe_equals_call_wherever_cortex_sits(varied_checkpoint, cortex_first):
    nlp = verify_nlp(varied_checkpoint, cortex_first=cortex_first, threshold=0.5, cats=True)
    one = [nlp(t) for t in TEXTS]
    many = list(nlp.pipe(TEXTS, batch_size=3))
    for a, b in zip(one, many):
        assert [(e.start, e.end, e.label_) for e in a.ents] == [(e.start, e.end, e.label_) for e in b.ents]
        assert [e._.cortex_score for e in a.ents] == pytest.approx([e._.cortex_score for e in b.ents], abs=1e-5)
        assert [s.text for s in a.spans["cortex_rejected"]] == [s.text for s in b.spans["cortex_rejected"]]
        assert a._.cortex_results is None and b._.cortex_results is None  # freed


def test_round_trip(varied_checkpoint, tmp_path):
    nlp = verify_nlp(varied_checkpoint, threshold=0.4, labels=["ORG", "PERSON"])
    before = nlp(TEXTS[0])
    nlp.to_disk(tmp_path / "pipe")
    after = spacy.load(tmp_path / "pipe")(TEXTS[0])
    assert [(e.text, e.label_) for e in before.ents] == [(e.text, e.label_) for e in after.ents]
    assert [s.text for s in before.spans["cortex_rejected"]] == [s.text for s in after.spans["cortex_rejected"]]


@pytest.mark.parametrize("config,match", [
    ({"threshold": 0.0}, "threshold"), ({"threshold": 1.5}, "threshold"),
    ({"cats_threshold": 1.0}, "cats_threshold"), ({"rejected_key": " "}, "rejected_key"),
    ({"template": "Find all entities."}, "label"),
])
def test_bad_config(tiny_checkpoint, config, match):
    with pytest.raises(ValueError, match=match):
        verify_nlp(tiny_checkpoint, **config)


def test_training_records(tiny_checkpoint):
    task = verify_nlp(tiny_checkpoint, labels=["ORG", "DRUG"]).get_pipe("cortex_verify").task
    doc = spacy.blank("en")(TEXTS[1])
    doc.ents = [doc.char_span(38, 42, label="ORG"), doc.char_span(0, 3, label="PERSON")]
    records = {r["prompt"]: r["spans"] for r in task.training_records(doc)}
    assert records == {task.prompt("DRUG", "ner"): [], task.prompt("ORG", "ner"): [(38, 42)]}
