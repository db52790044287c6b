"""Quality smoke test of the shipped default model (cortex-mini-en), loaded by name as a
user gets it: a few unambiguous cases every release must get right."""
import pytest
import spacy

from spacy_cortex import answer, entail, load_model
from spacy_cortex.registry import DEFAULT_CHECKPOINT, resolve_checkpoint


@pytest.fixture(scope="module")
def nlp():
    assert (resolve_checkpoint(DEFAULT_CHECKPOINT) / "model.safetensors").exists()
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": {"PERSON": "person", "LOC": "location"}})
    nlp.add_pipe("cortex_textcat", config={"labels": ["sports", "business", "politics"]})
    return nlp


def test_ner_finds_people_and_places(nlp):
    doc = nlp("Barack Obama visited Paris last week.")
    found = {(e.text, e.label_) for e in doc.ents}
    assert ("Barack Obama", "PERSON") in found
    assert ("Paris", "LOC") in found
    assert all(0.3 <= e._.cortex_score <= 1.0 for e in doc.ents)  # the default threshold


def test_textcat_picks_the_topic(nlp):
    doc = nlp("The team won the championship game last night after a late goal.")
    assert max(doc.cats, key=doc.cats.get) == "sports"


def test_extractive_answer():
    context = "Microsoft was founded by Bill Gates and Paul Allen in 1975 in Albuquerque."
    result = answer("In which year was Microsoft founded?", context)[0]
    assert result["text"] == "1975"


def test_entailment():
    probs = entail("A man is playing a guitar on stage.", "A man is playing an instrument.")[0]
    assert max(probs, key=probs.get) == "entailment"
    probs = entail("A man is playing a guitar on stage.", "Nobody is playing music.")[0]
    assert max(probs, key=probs.get) == "contradiction"


def test_default_model_is_cached():
    assert load_model() is load_model()


def test_ner_prefers_the_more_specific_label():
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": ["person", "writer", "politician", "location"]})
    found = {(e.text, e.label_) for text in ("The novel Oliver Twist was written by Charles Dickens.",
                                             "Senator Elizabeth Warren introduced the bill.",
                                             "My neighbour Tom Jones fixed the car.") for e in nlp(text).ents}
    assert {("Charles Dickens", "writer"), ("Elizabeth Warren", "politician"), ("Tom Jones", "person")} <= found
    assert {("writer", "person"), ("politician", "person")} <= nlp.get_pipe("cortex_ner").task.subtypes
