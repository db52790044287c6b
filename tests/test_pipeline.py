"""The shared `cortex` component and how task components listen to it."""
import json
import logging
import os
import pickle
import random
import shutil
import subprocess
import sys

import numpy as np
import pytest
import spacy
from conftest import USER_NER_LABELS, WORDS

from spacy_cortex.core import checkpoints
from spacy_cortex.core.model import CheckpointError, CortexModel
from spacy_cortex.pipeline import RESULTS_ATTR, Cortex, CortexTask, shared_windows

TEXTS = [
    "The patient was given 20 mg atorvastatin.",
    "I asked about a refund for billing and shipping.",
    "",
    "   ",
    "I love 🍕 and the drug 😀!",
    "What dose of atorvastatin was prescribed to the patient?",
]


def big_text(n_words=50_000, seed=0):
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def summary(doc):
    """Everything the task components wrote, comparable across runs."""
    return {
        "ents": [(e.start_char, e.end_char, e.label_) for e in doc.ents],
        "scores": [e._.cortex_score for e in doc.ents],
        "cats": dict(doc.cats),
        "answers": doc._.cortex_answers,
        "qa_spans": [(s.start_char, s.end_char, s.label_) for s in doc.spans.get("cortex_qa", [])],
    }


def assert_same(a, b):
    sa, sb = summary(a), summary(b)
    assert sa["ents"] == sb["ents"]
    assert np.allclose(sa["scores"], sb["scores"], atol=1e-5)
    assert sorted(sa["cats"]) == sorted(sb["cats"])
    for label in sa["cats"]:
        assert np.isclose(sa["cats"][label], sb["cats"][label], atol=1e-5)
    assert sa["qa_spans"] == sb["qa_spans"]
    assert len(sa["answers"]) == len(sb["answers"])
    for x, y in zip(sa["answers"], sb["answers"]):
        assert {k: v for k, v in x.items() if k != "score"} == {k: v for k, v in y.items() if k != "score"}
        assert np.isclose(x["score"], y["score"], atol=1e-5)


def count_forward(model: CortexModel):
    calls = []
    original = model.hf_model.forward

    def forward(*args, **kwargs):
        calls.append(kwargs["input_ids"].shape)
        return original(*args, **kwargs)

    model.hf_model.forward = forward
    return calls


# --- the user snippet ------------------------------------------------------------------------


def test_user_snippet(make_nlp, tiny_checkpoint):
    nlp = make_nlp(tiny_checkpoint)
    assert nlp.pipe_names == ["cortex", "cortex_ner", "cortex_textcat", "cortex_qa"]
    doc = nlp("The patient was given 20 mg atorvastatin.")
    for ent in doc.ents:
        assert ent.label_ in USER_NER_LABELS
        assert nlp.get_pipe("cortex_ner").task.threshold <= ent._.cortex_score <= 1.0
    assert sorted(doc.cats) == ["billing", "refund", "shipping"]
    assert sum(doc.cats.values()) == pytest.approx(1.0)
    assert all(0.0 <= p <= 1.0 for p in doc.cats.values())
    [entry] = doc._.cortex_answers
    assert entry["question"] == "Who was prescribed the drug?"
    assert entry["type"] == "extractive"
    assert set(entry) >= {"question", "type", "text", "start_char", "end_char", "score"}
    assert 0.0 <= entry["score"] <= 1.0
    assert "cortex_qa" in doc.spans
    # the probabilities are freed once the last listener has read them
    assert doc._.get(RESULTS_ATTR) is None


def test_user_snippet_positive_model(make_nlp, positive_checkpoint):
    nlp = make_nlp(positive_checkpoint)
    text = "The patient was given 20 mg atorvastatin."
    doc = nlp(text)
    [ent] = doc.ents
    assert ent.text == text and ent.label_ in USER_NER_LABELS
    assert ent._.cortex_score > 0.99
    [entry] = doc._.cortex_answers
    assert entry["text"] == text
    [span] = doc.spans["cortex_qa"]
    assert span.text == text and span.label_ == "Who was prescribed the drug?"
    assert span._.cortex_score == pytest.approx(entry["score"])


# --- one model, one run ------------------------------------------------------------------------


def test_one_model_shared(make_nlp, tiny_checkpoint):
    nlp = make_nlp(tiny_checkpoint)
    cortex = nlp.get_pipe("cortex")
    assert isinstance(cortex, Cortex)
    model = cortex.model
    assert isinstance(model, CortexModel)
    assert cortex.model is model  # loaded once
    tasks = [nlp.get_pipe(n) for n in ("cortex_ner", "cortex_textcat", "cortex_qa")]
    assert cortex.listeners() == tasks
    for task in tasks:
        assert isinstance(task, CortexTask)
        assert task.upstream == "cortex"
        held = [v for v in vars(task).values() if isinstance(v, CortexModel)]
        held += [v for v in vars(task.task).values() if isinstance(v, CortexModel)]
        assert held == []
        assert not hasattr(task, "model")
    # the model is reachable from the pipeline exactly once
    holders = [n for n, p in nlp.pipeline if any(v is model for v in vars(p).values())]
    assert holders == ["cortex"]


def test_pipe_runs_cortex_once_for_all_components(make_nlp, tiny_checkpoint):
    nlp = make_nlp(tiny_checkpoint, max_batch_tokens=100_000)
    texts = [TEXTS[0], TEXTS[1], TEXTS[4], TEXTS[5]]
    model = nlp.get_pipe("cortex").model
    calls = count_forward(model)
    list(nlp.pipe(texts[:1]))
    assert len(calls) == 1  # NER labels with prompts of their own are not judged for prefer_specific
    calls.clear()
    docs = list(nlp.pipe(texts, batch_size=8))
    assert len(calls) == 1  # 3 components x 4 docs, one combined forward pass
    n_prompts = 2 + 3 + 1
    assert calls[0][0] == n_prompts * len(texts)
    assert all(d.cats and d._.cortex_answers for d in docs)
    # nlp(text) runs one forward per doc, not one per component
    calls.clear()
    nlp(texts[0])
    assert len(calls) == 1


def test_forward_calls_equal_token_budget_batches(make_nlp, tiny_checkpoint):
    nlp = make_nlp(tiny_checkpoint, max_batch_tokens=300)
    cortex = nlp.get_pipe("cortex")
    model = cortex.model
    texts = [TEXTS[0], TEXTS[1], TEXTS[4], TEXTS[5]]
    docs = [nlp.make_doc(t) for t in texts]
    requests = []
    for i, doc in enumerate(docs):
        prompts = sorted({p for task in cortex.listeners() for p in task.batch_prompts(docs)[i]})
        encoded = model.encode_text(doc.text)
        requests += [(p, encoded) for p in prompts]
    expected = len(list(model.batches(model.windows(requests))))
    per_component = sum(
        len(list(model.batches(model.windows([r for r in requests if r[0] in task.batch_prompts(docs)[0]]))))
        for task in cortex.listeners()
    )
    assert 1 < expected < per_component
    calls = count_forward(model)
    nlp.get_pipe("cortex_ner").task.prepare(model)  # the one-time label judgement, not counted
    calls.clear()
    list(nlp.pipe(texts, batch_size=8))
    assert len(calls) == expected
    for shape in calls:
        assert shape[0] == 1 or shape[0] * shape[1] <= 300


# --- pipe == call ------------------------------------------------------------------------------


def test_pipe_equals_call(make_nlp, varied_checkpoint):
    nlp = make_nlp(
        varied_checkpoint,
        ner={"labels": dict(USER_NER_LABELS), "threshold": 0.12},
        qa={"questions": ["Who was prescribed the drug?", "Is it a drug?"], "no_answer_threshold": 0.05},
        max_length=128, stride=32, max_batch_tokens=4096,
    )
    texts = TEXTS + [big_text()]
    one_by_one = [nlp(t) for t in texts]
    for batch_size in (3, 16):
        piped = list(nlp.pipe(texts, batch_size=batch_size))
        assert [d.text for d in piped] == texts
        for a, b in zip(one_by_one, piped):
            assert_same(a, b)
    # the outputs are not trivial
    assert sum(len(d.ents) for d in one_by_one) > 10
    assert any(a["text"] for d in one_by_one for a in d._.cortex_answers)
    big = one_by_one[-1]
    assert len(big) == 50_000 and len(big.ents) > 100
    # empty and whitespace docs get complete, empty outputs
    for doc in one_by_one[2:4]:
        assert list(doc.ents) == []
        assert doc.cats and set(doc.cats.values()) == {0.0}  # no text, no category
        assert [a["text"] for a in doc._.cortex_answers] == [None, doc._.cortex_answers[1]["text"]]
        assert doc._.cortex_answers[1]["text"] in ("yes", "no")


def test_emoji_entities_align_to_spacy_tokens(make_nlp, positive_checkpoint):
    """Pictographs are left out of the model input and no span runs across one."""
    nlp = make_nlp(positive_checkpoint, textcat=False, qa=False)
    text = "I love 🍕 and the drug 😀!"
    doc = nlp(text)
    assert [e.text for e in doc.ents] == ["I love", "and the drug"]


# --- label order -----------------------------------------------------------------------------


def test_label_order_does_not_change_results(make_nlp, varied_checkpoint):
    labels = dict(USER_NER_LABELS, CHEM="Which chemicals are mentioned?")
    reordered = dict(reversed(list(labels.items())))
    cats = ["billing", "shipping", "refund", "support"]
    a = make_nlp(varied_checkpoint, ner={"labels": labels, "threshold": 0.1},
                 textcat={"labels": cats})
    b = make_nlp(varied_checkpoint, ner={"labels": reordered, "threshold": 0.1},
                 textcat={"labels": list(reversed(cats))})
    texts = TEXTS + [big_text(400, seed=1)]
    docs_a, docs_b = list(a.pipe(texts)), list(b.pipe(texts))
    assert sum(len(d.ents) for d in docs_a) > 5
    for da, db in zip(docs_a, docs_b):
        assert_same(da, db)
    # textcat with a list in another order through the call path too
    assert_same(a(texts[0]), b(texts[0]))


# --- adding components -------------------------------------------------------------------------


def test_task_component_adds_cortex_first():
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": ["X"]})
    assert nlp.pipe_names == ["cortex", "cortex_ner"]
    cortex = nlp.get_pipe("cortex")
    assert cortex.spec.checkpoint == checkpoints.DEFAULT_CHECKPOINT
    assert not cortex.model.loaded  # nothing loaded yet
    nlp.add_pipe("cortex_textcat", config={"labels": ["a", "b"]})
    assert nlp.pipe_names == ["cortex", "cortex_ner", "cortex_textcat"]  # reused, not added again
    assert cortex.listeners() == [nlp.get_pipe("cortex_ner"), nlp.get_pipe("cortex_textcat")]


def test_auto_added_cortex_with_custom_upstream():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("cortex_qa", config={"questions": ["Who?"], "upstream": "shared"})
    assert nlp.pipe_names == ["shared", "sentencizer", "cortex_qa"]
    assert isinstance(nlp.get_pipe("shared"), Cortex)
    assert nlp.get_pipe("shared").listeners() == [nlp.get_pipe("cortex_qa")]


def test_auto_added_cortex_loads_default_checkpoint(monkeypatch, tmp_path, tiny_checkpoint):
    shutil.copytree(tiny_checkpoint, tmp_path / checkpoints.DEFAULT_CHECKPOINT)
    monkeypatch.setattr(checkpoints, "MODELS_DIR", tmp_path)
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": ["DRUG"], "threshold": 0.01})
    doc = nlp("The patient was given 20 mg atorvastatin.")
    assert len(doc.ents) >= 1  # almost any word passes a 0.01 threshold
    assert nlp.get_pipe("cortex").model.hf_model.config.num_labels == 3


def test_registered_checkpoint_name(tiny_checkpoint):
    checkpoints.register("tiny-test", lambda: tiny_checkpoint)
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": "tiny-test"}})
    nlp.add_pipe("cortex_ner", config={"labels": ["DRUG"]})
    nlp.add_pipe("cortex_textcat", config={"labels": ["billing", "refund"]})
    assert nlp.pipe_names == ["cortex", "cortex_ner", "cortex_textcat"]
    doc = nlp("I asked about a refund.")
    assert sum(doc.cats.values()) == pytest.approx(1.0)
    assert nlp.get_pipe("cortex").model.max_length == 384


def test_task_without_cortex_pass_still_works(make_nlp, varied_checkpoint):
    """A doc that skipped cortex (e.g. cortex disabled) is still processed, batched."""
    nlp = make_nlp(varied_checkpoint, ner={"labels": dict(USER_NER_LABELS), "threshold": 0.12})
    reference = [nlp(t) for t in TEXTS]
    with nlp.select_pipes(disable=["cortex"]):
        assert nlp.pipe_names == ["cortex_ner", "cortex_textcat", "cortex_qa"]
        docs = list(nlp.pipe(TEXTS))
    for a, b in zip(reference, docs):
        assert_same(a, b)


# --- serialization ------------------------------------------------------------------------------


def test_to_disk_and_load_round_trip(make_nlp, varied_checkpoint, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(varied_checkpoint, checkpoint)
    nlp = make_nlp(checkpoint, ner={"labels": dict(USER_NER_LABELS), "threshold": 0.12},
                   max_length=128, stride=32)
    texts = TEXTS + [big_text(600)]
    before = list(nlp.pipe(texts))
    out = tmp_path / "pipeline"
    nlp.to_disk(out)
    shutil.rmtree(checkpoint)  # the saved pipeline must not need the original checkpoint
    weights = sorted(p.relative_to(out) for p in out.rglob("*.safetensors"))
    assert [str(p) for p in weights] == ["cortex/model.safetensors"]  # weights stored once
    assert not list(out.rglob("pytorch_model.bin"))

    loaded = spacy.load(out)
    assert loaded.pipe_names == nlp.pipe_names
    assert loaded.get_pipe("cortex").model.max_length == 128
    after = list(loaded.pipe(texts))
    for a, b in zip(before, after):
        assert_same(a, b)
    assert sum(len(d.ents) for d in before) > 0


def test_cortex_to_bytes_from_bytes(make_nlp, positive_checkpoint, negative_checkpoint):
    pos = make_nlp(positive_checkpoint, textcat=False)
    neg = make_nlp(negative_checkpoint, textcat=False)
    text = "The patient was given 20 mg atorvastatin."
    assert len(pos(text).ents) == 1 and len(neg(text).ents) == 0
    data = pos.get_pipe("cortex").to_bytes()
    assert isinstance(data, bytes)
    returned = neg.get_pipe("cortex").from_bytes(data)
    assert returned is neg.get_pipe("cortex")
    assert_same(neg(text), pos(text))


# --- bad configuration ---------------------------------------------------------------------


def test_unknown_config_key():
    from confection import ConfigValidationError

    nlp = spacy.blank("en")
    with pytest.raises(ConfigValidationError, match="labelz"):
        nlp.add_pipe("cortex_ner", config={"labelz": ["X"]})
    with pytest.raises(ConfigValidationError, match="max_lenght"):
        nlp.add_pipe("cortex", config={"model": {"max_lenght": 128}})
    assert nlp.pipe_names == []


def test_bad_precision():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="precision"):
        nlp.add_pipe("cortex", config={"model": {"precision": "int8"}})


def test_missing_checkpoint_path_fails_at_add_pipe(tmp_path):
    nlp = spacy.blank("en")
    missing = str(tmp_path / "no_such_model")
    with pytest.raises(FileNotFoundError, match="no_such_model"):
        nlp.add_pipe("cortex", config={"model": {"checkpoint": missing}})
    assert nlp.pipe_names == []


def test_saved_pipeline_loads_where_its_checkpoint_is_gone(tmp_path):
    """spacy.load reads the weights from the pipeline folder: the checkpoint it was built
    from need not exist any more (a pipeline moved to another machine)."""
    from conftest import build_checkpoint

    checkpoint = build_checkpoint(tmp_path / "ckpt")
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint)}})
    nlp.add_pipe("cortex_ner", config={"labels": ["X"]})
    nlp.to_disk(tmp_path / "pipe")
    shutil.rmtree(checkpoint)
    loaded = spacy.load(tmp_path / "pipe")
    assert [e.text for e in loaded("some text").ents] == [e.text for e in nlp("some text").ents]


def test_two_label_checkpoint_in_pipeline(tmp_path):
    from conftest import build_checkpoint

    path = build_checkpoint(tmp_path / "two", num_labels=2)
    nlp = spacy.blank("en")
    with pytest.raises(CheckpointError, match="2 labels"):
        nlp.add_pipe("cortex", config={"model": {"checkpoint": str(path)}})


def test_bad_task_config_leaves_pipeline_untouched():
    nlp = spacy.blank("en")
    with pytest.raises(ValueError, match="No labels"):
        nlp.add_pipe("cortex_ner", config={"labels": []})
    assert nlp.pipe_names == []  # no cortex added for a component that failed


def test_listener_protocol_check_does_not_load_the_model(monkeypatch, tmp_path, tiny_checkpoint):
    """spaCy runs isinstance(proc, ListenedToComponent) after every add_pipe and on load;
    on Python < 3.12 that hasattr()s the protocol members in random (hash) order, so it
    must never trigger (or fail) loading the weights."""
    import typing

    from spacy import ty

    if hasattr(typing, "_get_protocol_attrs"):
        original = typing._get_protocol_attrs
        monkeypatch.setattr(
            typing, "_get_protocol_attrs",
            lambda cls: sorted(original(cls), key=lambda a: (a != "model", a)),  # 'model' first
        )
    nlp = spacy.blank("en")
    checkpoint = shutil.copytree(tiny_checkpoint, tmp_path / "ckpt")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint)}})
    nlp.add_pipe("cortex_ner", config={"labels": ["X"]})
    cortex = nlp.get_pipe("cortex")
    assert not isinstance(cortex, ty.ListenedToComponent)
    assert not cortex.model.loaded
    (checkpoint / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="safetensors"):
        cortex.model.hf_model  # a real access still loads (and reports what is wrong)


# --- training through spaCy (nlp.update) --------------------------------------------------------


def test_nlp_update_trains_the_shared_model(make_nlp, tiny_checkpoint):
    from spacy.tokens import Span
    from spacy.training import Example

    nlp = make_nlp(tiny_checkpoint, textcat={"labels": ["billing", "refund"]})
    text = "The patient was given 20 mg atorvastatin."
    ref = nlp.make_doc(text)
    ref.ents = [Span(ref, 4, 6, label="DOSE"), Span(ref, 6, 7, label="DRUG")]
    ref.cats = {"billing": 0.0, "refund": 1.0}
    ref.spans["cortex_qa"] = [Span(ref, 0, 2, label="Who was prescribed the drug?")]
    eg = Example(nlp.make_doc(text), ref)

    cortex = nlp.get_pipe("cortex")
    records = [r for task in cortex.listeners() for r in task.training_records(eg)]
    by_prompt = {r["prompt"]: r for r in records}
    assert by_prompt["What doses are given?"]["spans"] == [(22, 27)]
    assert by_prompt["What doses are given?"]["cls"] == "positive"
    assert by_prompt["Which medications are mentioned?"]["spans"] == [(28, 40)]
    assert by_prompt["Is this text about refund?"]["cls"] == "positive"
    assert by_prompt["Is this text about billing?"]["cls"] == "negative"
    assert by_prompt["Who was prescribed the drug?"]["spans"] == [(0, 11)]
    assert {r["task"] for r in records} == {"cortex_ner", "cortex_textcat", "cortex_qa"}

    before = cortex.model.hf_model.classifier.weight.detach().clone()
    optimizer = nlp.initialize(lambda: [eg])
    losses = [nlp.update([eg], sgd=optimizer)["cortex"] for _ in range(6)]
    assert all(np.isfinite(losses))
    assert losses[-1] < losses[0]
    assert not np.allclose(before.numpy(), cortex.model.hf_model.classifier.weight.detach().numpy())
    # still a single model after training
    assert cortex.listeners() and all(not hasattr(t, "model") for t in cortex.listeners())


def test_evaluate_all_components(make_nlp, positive_checkpoint):
    from spacy.tokens import Span
    from spacy.training import Example

    nlp = make_nlp(positive_checkpoint)
    text = "The patient was given 20 mg atorvastatin."
    ref = nlp.make_doc(text)
    ref.ents = [Span(ref, 0, len(ref), label="DOSE")]
    ref.cats = {"billing": 0.0, "shipping": 0.0, "refund": 1.0}
    ref.spans["cortex_qa"] = [Span(ref, 0, len(ref), label="Who was prescribed the drug?")]
    scores = nlp.evaluate([Example(nlp.make_doc(text), ref)])
    assert {"ents_f", "cats_score", "qa_f1", "qa_exact"} <= set(scores)
    assert scores["ents_f"] == pytest.approx(1.0)
    assert scores["qa_f1"] == pytest.approx(1.0)
    assert 0.0 <= scores["cats_score"] <= 1.0


N_PROCESS_SCRIPT = """
import multiprocessing, sys, spacy
if __name__ == "__main__":
    multiprocessing.set_start_method(sys.argv[2], force=True)
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": sys.argv[1]}})
    nlp.add_pipe("cortex_textcat", config={"labels": ["sports", "business"]})
    nlp.add_pipe("cortex_ner", config={"labels": ["drug", "dose"]})
    texts = [f"Text number {i} is about sports and 20 mg atorvastatin." for i in range(12)]
    def run(**kwargs):
        return [(d.text, sorted((k, round(v, 4)) for k, v in d.cats.items()), [(e.text, e.label_) for e in d.ents])
                for d in nlp.pipe(texts, **kwargs)]
    fresh = run(n_process=2, batch_size=4)  # the model is not loaded yet: it pickles deferred
    single = run()  # torch's and tokenizers' thread pools are now in use in this process
    print(fresh == single == run(n_process=2, batch_size=4))
"""


@pytest.mark.parametrize("start_method", ["fork", "spawn"])
def test_pipe_with_n_process(tiny_checkpoint, tmp_path, start_method):
    """n_process works under fork (Linux) and spawn (macOS, Windows), before and after a
    run in the parent, with the same results and without the tokenizers fork warning. A
    forked child once deadlocked in torch's OpenMP pool: the script runs in a subprocess
    so that a regression fails on the timeout instead of hanging the suite."""
    script = tmp_path / "n_process.py"  # spawn re-imports the main module from a file
    script.write_text(N_PROCESS_SCRIPT)
    env = {k: v for k, v in os.environ.items() if k != "TOKENIZERS_PARALLELISM"}
    done = subprocess.run([sys.executable, str(script), str(tiny_checkpoint), start_method],
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["True"]
    assert "huggingface/tokenizers" not in done.stderr


def test_fresh_and_used_pipelines_pickle(make_nlp, varied_checkpoint):
    nlp = make_nlp(varied_checkpoint, ner={"labels": ["drug", "dose", "patient"]})
    fresh = pickle.loads(pickle.dumps(nlp))
    assert not nlp.get_pipe("cortex").model.loaded  # pickling did not load the weights
    expected = [doc_summary(d) for d in nlp.pipe(TEXTS)]
    assert [doc_summary(d) for d in fresh.pipe(TEXTS)] == expected
    used = pickle.loads(pickle.dumps(nlp))  # loaded model, judged label subtypes
    assert [doc_summary(d) for d in used.pipe(TEXTS)] == expected


def doc_summary(doc):
    return ([(e.text, e.label_, round(e._.cortex_score, 4)) for e in doc.ents],
            sorted((k, round(v, 4)) for k, v in doc.cats.items()),
            [(a["text"], a["start_char"]) for a in doc._.cortex_answers])


@pytest.mark.parametrize("first_call", ["pipeline", "api"])
def test_concurrent_first_calls_load_once_and_agree(varied_checkpoint, first_call):
    """Several threads calling a fresh pipeline (or the Python API) at once: the deferred
    load ran several times at once and left torch's meta tensors in the model and in any
    module created later. Now one load, and the same results as serial calls."""
    import threading

    import torch

    from spacy_cortex import api

    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(varied_checkpoint)}})
    nlp.add_pipe("cortex_ner", config={"labels": ["PERSON", "drug"]})
    model = nlp.get_pipe("cortex").model
    text = "Margaret Okafor was given 20 mg of atorvastatin."
    loads = []
    real_loader = model._loader
    model._loader = lambda: loads.append(1) or real_loader()
    call = {"pipeline": lambda: [(e.text, e.label_) for e in nlp(text).ents],
            "api": lambda: api.extract(text, "Find all drug mentioned in the text.", model=model)}[first_call]
    results, errors = [], []
    barrier = threading.Barrier(4)

    def worker():
        barrier.wait()
        try:
            for _ in range(3):
                results.append(call())
        except Exception as err:  # collected: a failing thread must fail the test
            errors.append(err)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(loads) == 1
    assert all(r == call() for r in results)
    assert torch.nn.Linear(2, 2).weight.device.type == "cpu"


def test_api_load_model_under_threads_loads_once(monkeypatch, tiny_checkpoint):
    import threading

    from spacy_cortex import api

    checkpoints.register("tiny-threads-test", lambda: str(tiny_checkpoint))
    models = []
    threads = [threading.Thread(target=lambda: models.append(api.load_model("tiny-threads-test"))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(models) == 4 and all(m is models[0] for m in models)


@pytest.mark.parametrize("change", ["remove", "rename"])
def test_listener_without_its_cortex_says_which(make_nlp, tiny_checkpoint, change):
    nlp = make_nlp(tiny_checkpoint, textcat=False, qa=False)
    if change == "remove":
        nlp.remove_pipe("cortex")
    else:
        nlp.rename_pipe("cortex", "shared")
    with pytest.raises(ValueError, match="'cortex_ner' listens to the cortex component 'cortex', which is not in"):
        nlp("some text")


def test_labels_are_listed_in_meta(make_nlp, tiny_checkpoint, tmp_path):
    nlp = make_nlp(tiny_checkpoint, textcat={"labels": ["billing", "refund"], "none_label": "none"})
    assert nlp.get_pipe("cortex_ner").labels == ("DOSE", "DRUG")
    assert nlp.get_pipe("cortex_textcat").labels == ("billing", "refund", "none")
    assert nlp.get_pipe("cortex_qa").labels == ("Who was prescribed the drug?",)
    nlp.to_disk(tmp_path / "pipe")
    meta = json.loads((tmp_path / "pipe" / "meta.json").read_text())
    assert meta["labels"]["cortex_ner"] == ["DOSE", "DRUG"]
    assert meta["labels"]["cortex_textcat"] == ["billing", "refund", "none"]


def test_saved_pipeline_keeps_fp16_weights_unless_trained(tmp_path, tiny_checkpoint):
    """A pipeline on an fp16 checkpoint (as shipped) is saved in fp16, not twice as big in
    fp32; once training changed the weights they are saved in fp32."""
    from safetensors import safe_open

    fp16 = tmp_path / "fp16"
    CortexModel.from_path(tiny_checkpoint).save(fp16, fp16=True)

    def dtypes(folder):
        with safe_open(str(folder / "cortex" / "model.safetensors"), framework="pt") as f:
            return {str(f.get_tensor(k).dtype) for k in f.keys()}

    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(fp16)}})
    nlp.add_pipe("cortex_textcat", config={"labels": ["refund", "billing"]})
    nlp("a refund")
    nlp.to_disk(tmp_path / "saved")
    assert dtypes(tmp_path / "saved") == {"torch.float16"}
    resaved = spacy.load(tmp_path / "saved")
    resaved.to_disk(tmp_path / "again")
    assert dtypes(tmp_path / "again") == {"torch.float16"}
    with torch_no_grad():
        for param in nlp.get_pipe("cortex").model.hf_model.parameters():
            param.add_(0.01)  # training changes the weights in place
    nlp.to_disk(tmp_path / "trained")
    assert dtypes(tmp_path / "trained") == {"torch.float32"}


def torch_no_grad():
    import torch

    return torch.no_grad()


def test_debug_log_shows_prompts_windows_and_passes(make_nlp, tiny_checkpoint, caplog):
    nlp = make_nlp(tiny_checkpoint, textcat=False, qa=False)
    with caplog.at_level(logging.DEBUG, logger="spacy_cortex"):
        list(nlp.pipe(["20 mg atorvastatin", "refund"]))
    text = caplog.text
    assert "prompts run" in text and USER_NER_LABELS["DRUG"] in text
    assert "windows" in text and "pass:" in text


def test_the_prompts_run_are_visible(make_nlp, tiny_checkpoint):
    nlp = make_nlp(tiny_checkpoint, ner={"labels": ["ORG", "MilitaryPlatform"]})
    assert nlp.get_pipe("cortex_ner").label_prompts == {
        "ORG": "Find all organization mentioned in the text.",
        "MilitaryPlatform": "Find all military platform mentioned in the text."}
    assert nlp.get_pipe("cortex_qa").label_prompts == {"Who was prescribed the drug?": "Who was prescribed the drug?"}
    doc = nlp("20 mg atorvastatin")
    assert all(e.label_ in {"ORG", "MilitaryPlatform"} for e in doc.ents)  # the user's labels


def test_unpickled_unchanged_pipeline_still_saves_fp16(tmp_path, tiny_checkpoint):
    from safetensors import safe_open

    fp16 = tmp_path / "fp16"
    CortexModel.from_path(tiny_checkpoint).save(fp16, fp16=True)
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(fp16)}})
    nlp.add_pipe("cortex_textcat", config={"labels": ["refund", "billing"]})
    nlp("a refund")
    pickle.loads(pickle.dumps(nlp)).to_disk(tmp_path / "saved")
    with safe_open(str(tmp_path / "saved" / "cortex" / "model.safetensors"), framework="pt") as f:
        assert {str(f.get_tensor(k).dtype) for k in f.keys()} == {"torch.float16"}


def test_a_misspelt_upstream_warns_before_adding_a_second_model(tiny_checkpoint):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", name="enc", config={"model": {"checkpoint": str(tiny_checkpoint)}})
    with pytest.warns(UserWarning, match=r"'encc' is not in the pipeline.*\['enc'\]"):
        nlp.add_pipe("cortex_textcat", config={"labels": ["a", "b"], "upstream": "encc"})


@pytest.mark.parametrize("remove", [["tokenizer.json", "vocab.txt"]])
def test_checkpoint_without_tokenizer_fails_at_add_pipe(tmp_path, tiny_checkpoint, remove):
    folder = shutil.copytree(tiny_checkpoint, tmp_path / "no-tokenizer")
    for name in remove:
        (folder / name).unlink(missing_ok=True)
    with pytest.raises(CheckpointError, match="no tokenizer"):
        spacy.blank("en").add_pipe("cortex", config={"model": {"checkpoint": str(folder)}})


def test_empty_checkpoint_name_is_named():
    with pytest.raises(ValueError, match="Empty cortex checkpoint"):
        spacy.blank("en").add_pipe("cortex", config={"model": {"checkpoint": " "}})


def test_spacy_apply_runs_a_cortex_pipeline(tiny_checkpoint, tmp_path):
    """The spaCy-native batch path: `spacy apply` over a saved cortex pipeline."""
    import json

    from spacy.cli.apply import apply
    from spacy.tokens import DocBin

    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(tiny_checkpoint), "precision": "fp32"}})
    nlp.add_pipe("cortex_textcat", config={"labels": ["refund", "billing"]})
    nlp.to_disk(tmp_path / "pipe")
    texts = ["please refund me", "", "my bill is wrong 🧾"]
    (tmp_path / "texts.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    apply(tmp_path / "texts.jsonl", tmp_path / "out.spacy", str(tmp_path / "pipe"), "text", 2, 1)
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    assert [d.text for d in docs] == texts
    expected = [nlp(t).cats for t in texts]
    for doc, cats in zip(docs, expected):
        assert doc.cats == pytest.approx(cats, abs=1e-5)


def window_sizes(model, monkeypatch):
    """{prompt: the largest text slice of a window}, recorded on every CortexModel.windows call."""
    sizes = {}
    original = CortexModel.windows

    def windows(self, requests, window=None):
        made = original(self, requests, window)
        for w in made:
            prompt = requests[w.request][0]
            sizes[prompt] = max(sizes.get(prompt, 0), len(w.input_ids) - w.context_offset - 1)
        return made

    monkeypatch.setattr(CortexModel, "windows", windows)
    return sizes


def test_ner_reads_long_texts_in_its_own_window(make_nlp, positive_checkpoint, monkeypatch):
    nlp = make_nlp(positive_checkpoint, ner={"labels": ["drug"], "window": 40}, qa=False)
    sizes = window_sizes(nlp.get_pipe("cortex").model, monkeypatch)
    doc = nlp(big_text(400))
    [ner_prompt] = nlp.get_pipe("cortex_ner").label_prompts.values()
    assert 30 <= sizes.pop(ner_prompt) <= 40
    assert sizes and all(size > 40 for size in sizes.values())  # textcat keeps the model's room
    # the model marks every word: the windows' spans merge into one over the whole text
    assert [(e.start, e.end) for e in doc.ents] == [(0, len(doc))]


def test_a_prompt_two_tasks_ask_is_read_in_the_shorter_window(make_nlp, tiny_checkpoint, monkeypatch):
    nlp = make_nlp(tiny_checkpoint, ner={"labels": ["drug"], "window": 64}, textcat=False, qa=False)
    nlp.add_pipe("cortex_ner", name="ner2", config={"labels": ["drug"], "window": 32, "spans_key": "drugs"})
    sizes = window_sizes(nlp.get_pipe("cortex").model, monkeypatch)
    with pytest.warns(UserWarning, match=r"'cortex_ner' \(window 64\) and 'ner2' \(window 32\).*windows of 32"):
        nlp(big_text(400))
    assert list(sizes) == list(nlp.get_pipe("ner2").label_prompts.values())
    assert max(sizes.values()) <= 32


def test_shared_windows_without_a_limit_on_one_side():
    tasks = [type("T", (), {"name": name, "window": size}) for name, size in (("a", None), ("b", 48), ("c", None))]
    per_task = [[["p", "q"]], [["p"]], [["q", "r"]]]
    with pytest.warns(UserWarning, match="'a' \\(window None\\) and 'b' \\(window 48\\)"):
        assert shared_windows(tasks, per_task) == {"p": 48}


def test_a_doc_that_skipped_cortex_is_read_in_the_task_window(make_nlp, tiny_checkpoint, monkeypatch):
    nlp = make_nlp(tiny_checkpoint, ner={"labels": ["drug"], "window": 32}, textcat=False, qa=False)
    sizes = window_sizes(nlp.get_pipe("cortex").model, monkeypatch)
    nlp.get_pipe("cortex_ner")(nlp.make_doc(big_text(400)))  # fill_missing runs the prompts
    assert 16 <= max(sizes.values()) <= 32


def test_ner_window_null_uses_the_model_room(make_nlp, tiny_checkpoint, monkeypatch):
    nlp = make_nlp(tiny_checkpoint, ner={"labels": ["drug"], "window": None}, textcat=False, qa=False,
                   max_length=128, stride=32)
    sizes = window_sizes(nlp.get_pipe("cortex").model, monkeypatch)
    nlp(big_text(400))
    assert 64 < max(sizes.values()) <= 128


SHIPPED_SOURCE = {"name": "cortex-mini-en", "url": "spacy_cortex/models/cortex-mini-en/README.md",
                  "license": "research and non-commercial use only"}


def test_meta_json_carries_the_licence_of_the_shipped_weights(tmp_path):
    """Issue 25 item 11: the weights are for research and non-commercial use, the package
    MIT; a saved (and so a packaged) pipeline says so in meta.json."""
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": ["PERSON"]})
    nlp.add_pipe("cortex", name="second")  # one model, one entry
    nlp.to_disk(tmp_path / "p")
    meta = json.loads((tmp_path / "p" / "meta.json").read_text(encoding="utf8"))
    assert meta["sources"] == [SHIPPED_SOURCE]
    assert meta["license"] == f"weights: {SHIPPED_SOURCE['license']}"  # what `spacy package` shows
    loaded = spacy.load(tmp_path / "p")  # listed once after a load and a second save
    loaded.to_disk(tmp_path / "q")
    assert json.loads((tmp_path / "q" / "meta.json").read_text(encoding="utf8"))["sources"] == [SHIPPED_SOURCE]
    # the statement travels with the weights (their config.json), as a checkpoint to build on
    configs = [json.loads(p.read_text()) for p in (tmp_path / "q").rglob("config.json")]
    assert configs and all(c["cortex_source"]["license"] == SHIPPED_SOURCE["license"] for c in configs)


def test_a_checkpoint_states_its_own_licence_or_nothing(tiny_checkpoint, tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(tiny_checkpoint)}})
    assert nlp.meta.get("sources", []) == [] and not nlp.meta.get("license")  # nothing said, nothing claimed
    own = shutil.copytree(tiny_checkpoint, tmp_path / "own")
    config = json.loads((own / "config.json").read_text())
    (own / "config.json").write_text(json.dumps({**config, "cortex_source": {"name": "mine", "license": "Apache-2.0"}}))
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(own)}})
    assert nlp.meta["sources"] == [{"name": "mine", "url": "", "license": "Apache-2.0"}]  # no card in the folder
    assert nlp.meta["license"] == "weights: Apache-2.0"
    mit = spacy.blank("en")
    mit.meta["license"] = "MIT"  # a pipeline that states its own licence keeps it
    mit.add_pipe("cortex", config={"model": {"checkpoint": str(own)}})
    assert mit.meta["license"] == "MIT"
