"""cortex_select: candidate responses scored in a pipeline, its reader and `spacy train`."""
import json
from pathlib import Path

import pytest
import spacy

from spacy_cortex import score
from spacy_cortex.training.adapt import DataError
from spacy_cortex.scoring import create_scoring_corpus, scoring_items

ROOT = Path(__file__).resolve().parent.parent
ITEMS = [{"instruction": "What is 2 + 2?", "candidates": ["3", "4", "five"], "gold": 1},
         {"instruction": "Name a fruit.", "response": "an apple", "score": 0.8},
         {"instruction": "Capital of France?", "candidates": ["Paris", "Lyon"], "gold": "Paris"}]


def select_nlp(checkpoint, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), "precision": "fp32"}})
    nlp.add_pipe("cortex_select", config=config)
    return nlp


def doc_with(nlp, text, candidates):
    doc = nlp.make_doc(text)
    doc._.cortex_candidates = candidates
    return doc


def test_scores_are_api_scores(varied_checkpoint):
    nlp = select_nlp(varied_checkpoint)
    doc = nlp(doc_with(nlp, "What dose was given? 20 mg.", ["20 mg", "a refund", "shipping"]))
    expected = score("What dose was given? 20 mg.", ["20 mg", "a refund", "shipping"],
                     model=nlp.get_pipe("cortex").model)
    assert doc._.cortex_candidate_scores == pytest.approx(expected, abs=1e-5)
    best = max(range(3), key=lambda i: expected[i])
    assert doc._.cortex_selected["index"] == best and doc._.cortex_selected["candidate"] == doc._.cortex_candidates[best]


def test_no_candidates_empty_doc_and_bad_candidates(positive_checkpoint):
    nlp = select_nlp(positive_checkpoint)
    doc = nlp("An instruction without candidates.")
    assert doc._.cortex_candidate_scores == [] and doc._.cortex_selected is None
    doc = nlp(doc_with(nlp, "", ["a", "b"]))
    assert doc._.cortex_candidate_scores == [0.0, 0.0] and doc._.cortex_selected is None
    doc = nlp(doc_with(nlp, "Say yes.", ["yes", "no"]))
    assert doc._.cortex_selected == {"index": 0, "candidate": "yes", "score": doc._.cortex_candidate_scores[0]}
    with pytest.raises(ValueError, match="must be a list of strings"):
        nlp(doc_with(nlp, "Say yes.", "yes"))
    with pytest.raises(ValueError, match="response"):
        select_nlp(positive_checkpoint, template="Is this right?")


def test_pipe_equals_call(varied_checkpoint):
    nlp = select_nlp(varied_checkpoint)
    texts = [("What is 2 + 2?", ["3", "4"]), ("Name a fruit.", ["apple"]), ("word " * 400, ["a", "b"])]
    one = [nlp(doc_with(nlp, t, c))._.cortex_candidate_scores for t, c in texts]
    many = [d._.cortex_candidate_scores for d in nlp.pipe([doc_with(nlp, t, c) for t, c in texts], batch_size=2)]
    for a, b in zip(one, many):
        assert a == pytest.approx(b, abs=1e-5)


def test_reader(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    assert list(scoring_items(path)) == [("What is 2 + 2?", ["3", "4", "five"], [0.0, 1.0, 0.0]),
                                         ("Name a fruit.", ["an apple"], [0.8]),
                                         ("Capital of France?", ["Paris", "Lyon"], [1.0, 0.0])]
    examples = list(create_scoring_corpus(path)(spacy.blank("en")))
    assert [e.reference.text for e in examples] == [i["instruction"] for i in ITEMS]
    assert examples[0].predicted._.cortex_candidates == ["3", "4", "five"]
    assert examples[0].predicted._.cortex_candidate_targets is None
    assert examples[0].reference._.cortex_candidate_targets == [0.0, 1.0, 0.0]
    path.write_text(json.dumps(ITEMS[0]) + "\n" + json.dumps({"instruction": "q", "response": "a"}) + "\n")
    with pytest.raises(DataError, match="data.jsonl:2: 'score'"):
        list(scoring_items(path))


def test_update_and_evaluate(tiny_checkpoint, tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    nlp = select_nlp(tiny_checkpoint)
    examples = list(create_scoring_corpus(path)(nlp))
    before = nlp.get_pipe("cortex").model.hf_model.classifier.weight.detach().clone()
    optimizer = nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=optimizer)
    assert losses["cortex"] > 0
    assert not (nlp.get_pipe("cortex").model.hf_model.classifier.weight.detach() == before).all()
    scores = nlp.evaluate(examples)
    assert 0.0 <= scores["select_acc"] <= 1.0  # 2 items with several candidates


def test_spacy_train_with_the_adapt_config(tiny_checkpoint, tmp_path):
    from spacy.cli.train import train

    path = tmp_path / "data.jsonl"
    path.write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    overrides = {"paths.train": str(path), "paths.dev": str(path), "paths.checkpoint": str(tiny_checkpoint),
                 "training.max_steps": 2, "training.eval_frequency": 1}
    train(ROOT / "configs" / "adapt_scorer.cfg", tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-best")
    assert trained.pipe_names == ["cortex", "cortex_select"]
    assert "select_acc" in trained.meta["performance"]
    doc = trained(doc_with(trained, "What is 2 + 2?", ["3", "4"]))
    assert len(doc._.cortex_candidate_scores) == 2
