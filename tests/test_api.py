"""The Python API (spacy_cortex.extract / classify / answer / entail / similarity / rank / score)."""
import pytest

import spacy_cortex
from spacy_cortex import (
    CortexModel,
    answer,
    classify,
    entail,
    extract,
    load_model,
    rank,
    rerank,
    score,
    score_batch,
    select,
    select_batch,
    similarity,
    transformers_generator,
)
from spacy_cortex.core import checkpoints

TEXTS = ["The patient was given 20 mg atorvastatin.", "I asked about a refund.", ""]


@pytest.fixture(scope="module")
def model(varied_checkpoint):
    return CortexModel.from_path(varied_checkpoint)


@pytest.fixture(scope="module")
def positive(positive_checkpoint):
    return CortexModel.from_path(positive_checkpoint)


def is_prob(x):
    return isinstance(x, float) and 0.0 <= x <= 1.0


def test_extract(model):
    out = extract(TEXTS, "Which medications are mentioned?", threshold=0.05, model=model)
    assert len(out) == len(TEXTS)
    assert out[2] == []
    assert any(out[:2])
    for text, spans in zip(TEXTS, out):
        for s in spans:
            assert set(s) == {"text", "start_char", "end_char", "score"}
            assert text[s["start_char"] : s["end_char"]] == s["text"]
            assert 0.05 <= s["score"] <= 1.0
    # a single string gives a list of one
    assert extract(TEXTS[0], "Which?", model=model) == [extract([TEXTS[0]], "Which?", model=model)[0]]


def test_extract_positive(positive):
    [[span]] = extract("given 20 mg", "What dose?", model=positive)
    assert span["text"] == "given 20 mg"


def test_classify(model):
    labels = ["billing", "shipping", "refund"]
    out = classify(TEXTS, labels, model=model)
    assert len(out) == 3
    for cats in out[:2]:
        assert sorted(cats) == sorted(labels)
        assert sum(cats.values()) == pytest.approx(1.0)
        assert all(is_prob(p) for p in cats.values())
    assert out[2] == dict.fromkeys(labels, 0.0)  # a blank text is about nothing
    multi = classify(TEXTS, labels, exclusive=False, model=model)
    for m, e in zip(multi[:2], out[:2]):
        assert all(is_prob(p) for p in m.values())
        total = sum(m.values())
        assert all(e[k] == pytest.approx(m[k] / total) for k in labels)
    # label order does not matter
    assert classify(TEXTS, labels[::-1], model=model) == out
    custom = classify(TEXTS[0], {"A": "Is this medical?", "B": "Is this about money?"}, model=model)
    assert sorted(custom[0]) == ["A", "B"]


def test_answer(model, positive):
    out = answer("Who was prescribed the drug?", TEXTS, no_answer_threshold=0.0, model=model)  # always answer
    assert len(out) == 3
    for text, a in zip(TEXTS[:2], out[:2]):
        assert set(a) == {"text", "start_char", "end_char", "score", "has_answer"}
        assert text[a["start_char"] : a["end_char"]] == a["text"]
        assert is_prob(a["score"]) and is_prob(a["has_answer"])
    assert out[2]["text"] is None
    [a] = answer("Who?", "the patient", model=positive)
    assert a["text"] == "the patient" and a["has_answer"] > 0.99
    [a] = answer("Who?", "word " * 100, max_answer_words=3, model=positive)
    assert a["text"] == "word word word"


def test_entail(model, positive):
    out = entail("The patient was given a drug.", ["A drug was given.", "Nothing happened.", "x"], model=model)
    assert len(out) == 3
    for probs in out:
        assert set(probs) == {"entailment", "neutral", "contradiction"}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-5)
        assert all(is_prob(p) for p in probs.values())
    [probs] = entail("a", "b", model=positive)
    assert probs["entailment"] > 0.99
    pairs = entail(["a", "b"], ["c", "d"], model=model)
    assert len(pairs) == 2
    with pytest.raises(ValueError, match="2 and 3"):
        entail(["a", "b"], ["c", "d", "e"], model=model)


def test_similarity(model):
    a = ["the patient was given a drug", "refund", "billing"]
    b = ["a drug was given", "shipping", "billing"]
    out = similarity(a, b, model=model)
    assert len(out) == 3 and all(is_prob(s) for s in out)
    # symmetric by construction
    assert similarity(b, a, model=model) == pytest.approx(out)
    # one against many
    assert len(similarity("refund", b, model=model)) == 3
    with pytest.raises(ValueError):
        similarity(["a", "b"], ["c", "d", "e"], model=model)
    # a blank text is about nothing: similar to nothing, itself included
    assert similarity(["", "refund", "refund", "\ufeff"], ["", " ", "refund", "refund"], model=model)[:2] == [0.0, 0.0]
    assert similarity(["refund", ""], ["a", "b"], model=model)[1] == 0.0


def test_rank(model):
    passages = ["the patient was given atorvastatin", "refund", "", "shipping and billing", "mg dose"]
    out = rank("Which drug?", passages, model=model)
    assert sorted(r["index"] for r in out) == list(range(len(passages)))
    scores = [r["score"] for r in out]
    assert scores == sorted(scores, reverse=True)
    assert all(is_prob(s) for s in scores)
    assert len(set(scores)) > 1


def test_score(model, positive):
    out = score("What dose was given? The patient was given 20 mg.", ["20 mg", "a refund", ""], model=model)
    assert len(out) == 3 and all(is_prob(s) for s in out)
    assert all(s > 0.99 for s in score("instruction", ["a", "b"], model=positive))
    # a long instruction is windowed, not cut
    assert len(score("word " * 2000, ["a"], model=model)) == 1


def test_score_batch_equals_item_by_item(model):
    items = [("What dose was given? 20 mg.", ["20 mg", "a refund"]), ("Name a colour.", "red"),
             ("word " * 600, ["a", "b", "c"])]
    batched = score_batch(items, model=model)
    assert [len(s) for s in batched] == [2, 1, 3]
    for (instruction, candidates), scores in zip(items, batched):
        assert scores == pytest.approx(score(instruction, candidates, model=model), abs=1e-6)
    assert score_batch([("ok", ["a"]), ("  ", ["a", "b"])], model=model)[1] == [0.0, 0.0]  # asks nothing


def test_select(model):
    candidates = ["20 mg", "a refund", "shipping"]
    out = select("What dose was given?", candidates, model=model)
    scores = score("What dose was given?", candidates, model=model)
    assert out["scores"] == pytest.approx(scores, abs=1e-6)
    best = max(range(3), key=lambda i: scores[i])
    assert (out["index"], out["candidate"]) == (best, candidates[best])
    assert out["score"] == pytest.approx(max(scores), abs=1e-6)
    [a, b] = select_batch([("What dose was given?", candidates), ("Say yes.", "yes")], model=model)
    assert a["index"] == out["index"] and b == {"index": 0, "candidate": "yes", "score": b["scores"][0],
                                                "scores": b["scores"]}
    with pytest.raises(ValueError, match="item 0 has no candidates"):
        select("What dose?", [], model=model)


def test_rerank_with_a_stub_generator(model):
    asked = []

    def generate(instruction, n):
        asked.append((instruction, n))
        return ["20 mg", "a refund", "20 mg", "shipping"][:n]

    out = rerank("What dose was given?", generate, n=4, model=model)
    assert asked == [("What dose was given?", 4)]
    assert sorted(r["candidate"] for r in out) == ["20 mg", "a refund", "shipping"]  # repeats once
    scores = [r["score"] for r in out]
    assert scores == sorted(scores, reverse=True)
    expected = dict(zip(["20 mg", "a refund", "shipping"],
                        score("What dose was given?", ["20 mg", "a refund", "shipping"], model=model)))
    assert all(r["score"] == pytest.approx(expected[r["candidate"]], abs=1e-6) for r in out)
    assert rerank("q", lambda i, n: [], model=model) == []
    with pytest.raises(TypeError, match="list of strings"):
        rerank("q", lambda i, n: "one string", model=model)
    with pytest.raises(ValueError, match="n must be at least 1"):
        rerank("q", generate, n=0, model=model)


def test_rerank_with_a_tiny_causal_lm(model):
    """The transformers path: a random 2-layer GPT-2 built here, sampled through a
    text-generation pipeline, its outputs scored by the cortex model."""
    from conftest import tiny_tokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, pipeline

    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    tok = tiny_tokenizer()
    lm = GPT2LMHeadModel(GPT2Config(vocab_size=tok.vocab_size, n_positions=64, n_embd=32, n_layer=2, n_head=2,
                                    bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id,
                                    pad_token_id=tok.pad_token_id))
    generator = pipeline("text-generation", model=lm, tokenizer=tok, device="cpu")
    out = rerank("the patient was given", transformers_generator(generator, max_new_tokens=5), n=3, model=model)
    assert 1 <= len(out) <= 3
    assert all(isinstance(r["candidate"], str) and is_prob(r["score"]) for r in out)
    assert [r["score"] for r in out] == sorted((r["score"] for r in out), reverse=True)


def test_load_model_by_name_is_cached(tiny_checkpoint):
    checkpoints.register("tiny-api-test", lambda: tiny_checkpoint)
    m1 = load_model("tiny-api-test")
    assert isinstance(m1, CortexModel)
    assert load_model("tiny-api-test") is m1
    assert load_model(str(tiny_checkpoint)) is not m1
    assert classify("refund", ["a", "b"], model=m1)[0].keys() == {"a", "b"}


def test_public_names():
    for name in spacy_cortex.__all__:
        assert hasattr(spacy_cortex, name)


def test_a_string_is_one_label_passage_or_candidate(model):
    """classify(text, "sports") scored the labels s/p/o/r/t."""
    [cats] = classify("a sports text", "sports", model=model)
    assert list(cats) == ["sports"] and 0.0 <= cats["sports"] <= 1.0
    assert len(rank("Which drug?", "atorvastatin was given", model=model)) == 1
    assert len(score("Say a drug.", "atorvastatin", model=model)) == 1
    assert select("Say a drug.", "atorvastatin", model=model)["candidate"] == "atorvastatin"


def test_classify_none_label(model):
    [cats] = classify("a refund", ["refund", "billing"], none_label="none", model=model)
    assert set(cats) == {"refund", "billing", "none"} and sum(cats.values()) == pytest.approx(1.0)


@pytest.mark.parametrize("call,match", [
    (lambda m: extract("text", "Which drug?", threshold=1.5, model=m), "threshold"),
    (lambda m: extract("text", "Which drug?", threshold=0.0, model=m), "threshold"),
    (lambda m: extract("text", "  ", model=m), "prompt"),
    (lambda m: extract("text", "Which drug?", window=4, model=m), "window"),
    (lambda m: extract("text", "Which drug?", extend_threshold=0.0, model=m), "extend_threshold"),
    (lambda m: answer("", "context", model=m), "question"),
    (lambda m: answer("Who?", "context", max_answer_words=0, model=m), "max_answer_words"),
    (lambda m: rank(" ", ["a"], model=m), "query"),
    (lambda m: classify("text", ["a", ""], model=m), "empty"),
    (lambda m: classify("text", "x", template="Is it {topic}?", model=m), "placeholder"),
])
def test_bad_arguments_are_named(model, call, match):
    with pytest.raises(ValueError, match=match):
        call(model)


def test_similarity_broadcasts_one_text_either_way(model):
    many = ["a drug was given", "shipping", "billing"]
    assert similarity(many, "refund", model=model) == pytest.approx(similarity("refund", many, model=model))


def test_entail_needs_a_hypothesis(model):
    with pytest.raises(ValueError, match="hypothesis"):
        entail("A man sleeps.", "", model=model)


@pytest.mark.parametrize("call,error,match", [
    (lambda m: extract(b"Emma Watson", "Who?", model=m), TypeError, "texts must be a string .* got bytes"),
    (lambda m: extract(None, "Who?", model=m), TypeError, "texts must be a string .* got NoneType"),
    (lambda m: extract(["a", 1], "Who?", model=m), TypeError, "texts must be .*; item 1 is int"),
    (lambda m: extract("a", None, model=m), TypeError, "prompt must be a string, got NoneType"),
    (lambda m: classify({"a": 1}, "x", model=m), TypeError, "texts must be .* got dict"),
    (lambda m: classify("a", [1, 2], model=m), TypeError, "labels must be .*; item 0 is int"),
    (lambda m: classify("a", {"x": None}, model=m), TypeError, "label prompts must be .*; item 0 is NoneType"),
    (lambda m: classify("a", ["x", "y"], none_label=0, model=m), TypeError, "none_label must be a string, got int"),
    (lambda m: answer(b"Who?", "a", model=m), TypeError, "question must be a string, got bytes"),
    (lambda m: answer("Who?", ["a", None], model=m), TypeError, "contexts must be .*; item 1 is NoneType"),
    (lambda m: answer("Who?", "a", no_answer_threshold=2, model=m), ValueError, "no_answer_threshold .* got 2"),
    (lambda m: answer("Who?", "a", max_answer_words=2.5, model=m), ValueError, "max_answer_words .* got 2.5"),
    (lambda m: entail(["a", None], "b", model=m), TypeError, "premise must be .*; item 1 is NoneType"),
    (lambda m: entail("a", 3, model=m), TypeError, "hypothesis must be .* got int"),
    (lambda m: similarity("a", [b"b"], model=m), TypeError, "b must be .*; item 0 is bytes"),
    (lambda m: rank(None, ["a"], model=m), TypeError, "query must be a string, got NoneType"),
    (lambda m: rank("q", [1.5], model=m), TypeError, "passages must be .*; item 0 is float"),
    (lambda m: score("instruction", [1, 2], model=m), TypeError, "candidates must be .*; item 0 is int"),
    (lambda m: score(None, ["a"], model=m), TypeError, "instruction must be a string, got NoneType"),
    (lambda m: score_batch([("ok", ["a"]), ("x",)], model=m), TypeError, "item 1 must be an .* pair, got tuple of 1"),
    (lambda m: score_batch([("ok", ["a"]), (5, ["a"])], model=m), TypeError, "instruction of item 1 must be a string"),
    (lambda m: score_batch("ok", model=m), TypeError, "items must be a sequence .* got str"),
    (lambda m: select("instruction", [None], model=m), TypeError, "candidates must be .*; item 0 is NoneType"),
    (lambda m: select_batch([("ok", [3])], model=m), TypeError, "candidates of item 0 must be .*; item 0 is int"),
    (lambda m: rerank("q", lambda i, n: None, model=m), TypeError, "must return a list of strings, got NoneType"),
    (lambda m: rerank("q", lambda i, n: ["a", 2], model=m), TypeError, "candidates of generate.*; item 1 is int"),
    (lambda m: rerank("q", "not callable", model=m), TypeError, "generate must be a callable"),
    (lambda m: rerank("q", lambda i, n: ["a"], n="2", model=m), ValueError, "n must be at least 1"),
    (lambda m: extract("a", "Who?", model="cortex-mini-en"), TypeError, "model must be a CortexModel"),
])
def test_inputs_of_the_wrong_type_are_named(model, call, error, match):
    """Issue 25 item 9: extract(b"...") raised AttributeError: 'int' object has no attribute
    'translate'; score("...", [1, 2]) scored ints; select("...", [None]) selected None."""
    with pytest.raises(error, match=match):
        call(model)
