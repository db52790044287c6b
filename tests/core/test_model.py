"""spacy_cortex.core.model: loading checks, windowed batched running, saving."""
import json
import os
import random
import shutil

import numpy as np
import pytest
import torch
from conftest import WORDS, build_checkpoint
from safetensors import safe_open

from spacy_cortex.core.encoding import PromptTooLongError
from spacy_cortex.core.model import CheckpointError, CortexModel

PROMPT = "Which medications are mentioned?"


@pytest.fixture(scope="module")
def model(tiny_checkpoint):
    return CortexModel.from_path(tiny_checkpoint)


def random_text(n_words, seed=0):
    rng = random.Random(seed)
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


# --- checkpoint checks ---------------------------------------------------------------------


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        CortexModel.from_path(tmp_path / "nope")


def test_folder_without_safetensors(tmp_path, tiny_checkpoint):
    folder = tmp_path / "pt_only"
    folder.mkdir()
    for name in os.listdir(tiny_checkpoint):
        if name != "model.safetensors":
            shutil.copy(tiny_checkpoint / name, folder / name)
    torch.save({"dummy": torch.zeros(1)}, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="model.safetensors"):
        CortexModel.from_path(folder)
    with pytest.raises(CheckpointError, match="safetensors only"):
        CortexModel.from_base(folder)


def test_folder_without_config(tmp_path, tiny_checkpoint):
    folder = tmp_path / "no_config"
    shutil.copytree(tiny_checkpoint, folder)
    (folder / "config.json").unlink()
    with pytest.raises(CheckpointError, match="config.json"):
        CortexModel.from_path(folder)


def test_two_label_checkpoint(tmp_path):
    path = build_checkpoint(tmp_path / "two", num_labels=2)
    with pytest.raises(CheckpointError, match="2 labels"):
        CortexModel.from_path(path)
    # as a base encoder it gets a fresh 3-label head
    model = CortexModel.from_base(path)
    assert model.hf_model.config.num_labels == 3
    [result] = model.run_texts([(PROMPT, "the patient was given 20 mg")])
    assert result.cls_probs.shape == (1, 3)
    assert np.allclose(result.token_probs.sum(1), 1.0, atol=1e-5)


def test_checkpoint_error_is_value_error():
    assert issubclass(CheckpointError, ValueError)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"precision": "fp16"}, "precision"),
        ({"max_length": 1024}, "exceeds"),
        ({"max_length": 64, "stride": 32}, "stride"),
        ({"max_length": 64, "stride": -1}, "stride must be at least 0"),
    ],
)
def test_bad_settings(tiny_checkpoint, kwargs, match):
    with pytest.raises(ValueError, match=match):
        CortexModel.from_path(tiny_checkpoint, **kwargs)


# --- running -------------------------------------------------------------------------------


def test_run_shapes_and_probabilities(model):
    texts = ["the patient was given 20 mg atorvastatin", "refund", "billing and shipping"]
    results = model.run_texts([(PROMPT, t) for t in texts])
    assert len(results) == 3
    for text, r in zip(texts, results):
        assert r.encoded.text == text
        assert r.cls_probs.shape == (1, 3)
        assert r.token_probs.shape == (len(r.encoded), 3)
        assert np.allclose(r.cls_probs.sum(1), 1.0, atol=1e-5)
        assert np.allclose(r.token_probs.sum(1), 1.0, atol=1e-5)
        assert (r.token_probs >= 0).all() and (r.token_probs <= 1).all()


def test_run_texts_tokenizes_each_text_once(model):
    results = model.run_texts([(PROMPT, "refund"), ("What doses are given?", "refund")])
    assert results[0].encoded is results[1].encoded


def test_long_text_covers_every_sub_token(tiny_checkpoint):
    model = CortexModel.from_path(tiny_checkpoint, max_length=64, stride=16)
    text = random_text(5000)
    encoded = model.encode_text(text)
    assert len(encoded) >= 5000
    [result] = model.run([(PROMPT, encoded)])
    assert result.token_probs.shape == (len(encoded), 3)
    # every row was filled from some window (merged rows start as zeros)
    assert np.allclose(result.token_probs.sum(1), 1.0, atol=1e-5)
    room = 64 - len(model.prompt_ids(PROMPT)) - 3
    n_windows = len(model.windows([(PROMPT, encoded)]))
    assert n_windows > len(encoded) / room
    assert result.cls_probs.shape == (n_windows, 3)


def test_window_probabilities_match_a_direct_run(tiny_checkpoint):
    """A token in the middle of a window gets the same probabilities as when that window
    is run alone as its own text."""
    model = CortexModel.from_path(tiny_checkpoint, max_length=64, stride=16)
    text = random_text(300, seed=3)
    encoded = model.encode_text(text)
    [result] = model.run([(PROMPT, encoded)])
    windows = model.windows([(PROMPT, encoded)])
    w = windows[1]
    room = len(w.input_ids) - w.context_offset - 1
    sub = type(encoded)(text, encoded.ids[w.start : w.start + room],
                        encoded.offsets[w.start : w.start + room],
                        encoded.word_ids[w.start : w.start + room])
    [alone] = model.run([(PROMPT, sub)])
    mid = room // 2
    assert np.allclose(result.token_probs[w.start + mid], alone.token_probs[mid], atol=1e-5)


def test_results_do_not_depend_on_batch_composition(tiny_checkpoint):
    model = CortexModel.from_path(tiny_checkpoint, max_length=64, stride=16)
    target = (PROMPT, model.encode_text("the patient was given 20 mg atorvastatin"))
    others = [
        ("What doses are given?", model.encode_text(random_text(n, seed=n)))
        for n in (3, 40, 200)
    ]
    [alone] = model.run([target])
    mixed = model.run(others[:2] + [target] + others[2:])
    with_it = mixed[2]
    assert np.allclose(alone.token_probs, with_it.token_probs, atol=1e-5)
    assert np.allclose(alone.cls_probs, with_it.cls_probs, atol=1e-5)
    # and with a tiny token budget (one window per forward pass)
    model.max_batch_tokens = 1
    small = model.run(others + [target])
    assert np.allclose(alone.token_probs, small[-1].token_probs, atol=1e-5)
    for a, b in zip(mixed[:2] + mixed[3:], small[:3]):
        assert np.allclose(a.token_probs, b.token_probs, atol=1e-5)


def test_empty_and_whitespace_requests(model):
    results = model.run_texts([(PROMPT, ""), (PROMPT, "   "), (PROMPT, "🍕 refund")])
    assert results[0].token_probs.shape == (0, 3)
    assert results[1].token_probs.shape == (0, 3)
    assert results[0].cls_probs.shape == (1, 3)
    assert results[2].token_probs.shape == (len(results[2].encoded), 3)


def test_run_restores_training_mode(model):
    model.hf_model.train()
    model.run_texts([(PROMPT, "refund")])
    assert model.hf_model.training
    model.hf_model.eval()
    model.run_texts([(PROMPT, "refund")])
    assert not model.hf_model.training


def test_prompt_too_long(tiny_checkpoint):
    model = CortexModel.from_path(tiny_checkpoint, max_length=32, stride=8)
    prompt = " ".join(["refund"] * 20)
    with pytest.raises(PromptTooLongError, match="Prompt of 20 tokens"):
        model.run_texts([(prompt, "the patient")])


def test_bf16_precision_runs(tiny_checkpoint):
    fp32 = CortexModel.from_path(tiny_checkpoint, precision="fp32")
    bf16 = CortexModel.from_path(tiny_checkpoint, precision="bf16")
    pairs = [(PROMPT, "the patient was given 20 mg atorvastatin")]
    a, b = fp32.run_texts(pairs)[0], bf16.run_texts(pairs)[0]
    assert b.token_probs.dtype == np.float32
    assert np.allclose(a.token_probs, b.token_probs, atol=0.05)
    assert fp32.inference_model is fp32.hf_model
    assert bf16.hf_model.dtype == torch.float32  # the trainable weights stay fp32
    assert bf16.inference_model.dtype == torch.bfloat16


def test_bf16_copy_follows_weight_changes(tiny_checkpoint):
    model = CortexModel.from_path(tiny_checkpoint, precision="bf16")
    pairs = [(PROMPT, "the patient was given 20 mg atorvastatin")]
    before = model.run_texts(pairs)[0].token_probs
    copy = model.inference_model
    assert model.inference_model is copy  # cast once, reused
    with torch.no_grad():
        model.hf_model.classifier.bias.copy_(torch.tensor([0.0, 5.0, -5.0]))  # as a training step would
    assert model.inference_model is not copy
    after = model.run_texts(pairs)[0].token_probs
    assert after[:, 1].min() > before[:, 1].max()


# --- saving --------------------------------------------------------------------------------


@pytest.mark.parametrize("fp16", [False, True])
def test_save_round_trip(tmp_path, tiny_checkpoint, fp16):
    model = CortexModel.from_path(tiny_checkpoint, max_length=64, stride=16)
    out = tmp_path / "saved"
    model.save(out, fp16=fp16)
    assert (out / "model.safetensors").exists()
    assert (out / "tokenizer.json").exists()
    assert not (out / "pytorch_model.bin").exists()
    # the weights get the mode of the other files (transformers' temporary file is 0600)
    assert (out / "model.safetensors").stat().st_mode & 0o777 == (out / "config.json").stat().st_mode & 0o777
    assert json.loads((out / "cortex.json").read_text()) == {"max_length": 64, "stride": 16}
    with safe_open(str(out / "model.safetensors"), framework="pt") as f:
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert dtypes == ({torch.float16} if fp16 else {torch.float32})
    # the in-memory model stays fp32
    assert next(model.hf_model.parameters()).dtype == torch.float32

    loaded = CortexModel.from_path(out, max_length=64, stride=16)
    pairs = [(PROMPT, random_text(100)), ("What doses are given?", "20 mg")]
    for a, b in zip(model.run_texts(pairs), loaded.run_texts(pairs)):
        atol = 1e-2 if fp16 else 1e-6
        assert np.allclose(a.token_probs, b.token_probs, atol=atol)
        assert np.allclose(a.cls_probs, b.cls_probs, atol=atol)


def test_fp16_weights_load_as_fp32_quietly(tmp_path, tiny_checkpoint, capfd):
    """fp16 safetensors (the shipped model) give fp32 weights in memory under transformers 4
    and 5 (5 loads a checkpoint in its stored dtype unless told), equal to the fp16 values;
    loading and saving draw no progress bar on stderr and leave transformers' switch on."""
    from transformers.utils import logging as hf_logging

    CortexModel.from_path(tiny_checkpoint).save(tmp_path / "half", fp16=True)
    capfd.readouterr()
    model = CortexModel.from_path(tmp_path / "half", precision="fp32", device="cpu")
    assert {p.dtype for p in model.hf_model.parameters()} == {torch.float32}
    with safe_open(str(tmp_path / "half" / "model.safetensors"), framework="pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    for key, value in model.hf_model.state_dict().items():
        if key in stored:
            assert torch.equal(value, stored[key].float()), key
    model.save(tmp_path / "again")  # unchanged fp16 weights stay fp16
    assert capfd.readouterr().err == ""
    assert hf_logging.is_progress_bar_enabled()


def test_a_wordpiece_vocabulary_alone_gives_the_same_fast_tokenizer(tmp_path, tiny_checkpoint):
    """A folder with vocab.txt and no tokenizer.json (transformers 5 saves no vocab.txt, 4.x
    both): the fast tokenizer is built from the vocabulary, with the same ids and offsets."""
    model = CortexModel.from_path(tiny_checkpoint)
    shutil.copytree(tiny_checkpoint, tmp_path / "vocab")
    vocab = model.tokenizer.get_vocab()
    (tmp_path / "vocab" / "vocab.txt").write_text("".join(t + "\n" for t in sorted(vocab, key=vocab.get)))
    (tmp_path / "vocab" / "tokenizer.json").unlink()
    rebuilt = CortexModel.from_path(tmp_path / "vocab")
    assert rebuilt.tokenizer.is_fast
    text = "The patient was given 20 mg of Atorvastatin, asked about a refund!"
    a, b = model.encode_text(text), rebuilt.encode_text(text)
    assert a.ids.tolist() == b.ids.tolist() and a.offsets.tolist() == b.offsets.tolist()


# --- the real loading path: a pretrained-style base checkpoint built here --------------------


def build_base_checkpoint(path):
    """A 2-layer BertForMaskedLM saved the way a pretrained encoder is published (safetensors
    + fast tokenizer): a base for CortexModel.from_base, not a cortex checkpoint."""
    from conftest import tiny_tokenizer
    from transformers import BertConfig, BertForMaskedLM

    torch.manual_seed(1)
    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512,
    )
    BertForMaskedLM(config).save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


def test_real_pretrained_encoder_loading_path(tmp_path):
    path = build_base_checkpoint(tmp_path / "base")
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        assert (path / name).exists()
    # a BertForMaskedLM: not a cortex checkpoint
    with pytest.raises(CheckpointError, match="labels"):
        CortexModel.from_path(path)
    model = CortexModel.from_base(path, max_length=64, stride=16)
    assert model.hf_model.config.num_labels == 3
    assert model.hf_model.config.id2label == {0: "neutral", 1: "positive", 2: "negative"}
    assert model.tokenizer.is_fast
    # pretrained encoder weights were loaded, only the head is new
    with safe_open(str(path / "model.safetensors"), framework="pt") as f:
        stored = {k: f.get_tensor(k) for k in f.keys()}
    encoder = {k: v for k, v in model.hf_model.state_dict().items() if k.startswith("bert.")}
    assert encoder and set(encoder) <= set(stored)
    for key, value in encoder.items():
        assert torch.equal(value, stored[key]), key
    assert not any(k.startswith("classifier.") for k in stored)
    text = "The patient was given 20 mg of atorvastatin. " * 10
    pairs = [(PROMPT, text), ("What doses are given?", "20 mg")]
    results = model.run_texts(pairs)
    result = results[0]
    assert result.token_probs.shape == (len(model.encode_text(text)), 3)
    assert result.cls_probs.shape[0] > 1  # windowed
    assert np.allclose(result.token_probs.sum(1), 1.0, atol=1e-5)
    # saved as a cortex checkpoint, it loads without from_base and scores the same
    out = tmp_path / "cortex"
    model.save(out)
    assert json.loads((out / "cortex.json").read_text()) == {"max_length": 64, "stride": 16}
    loaded = CortexModel.from_path(out, max_length=64, stride=16)
    assert loaded.hf_model.config.num_labels == 3
    for a, b in zip(results, loaded.run_texts(pairs)):
        assert np.allclose(a.token_probs, b.token_probs, atol=1e-6)
        assert np.allclose(a.cls_probs, b.cls_probs, atol=1e-6)


@pytest.mark.skipif(not hasattr(os, "register_at_fork"), reason="no fork on this platform")
def test_forked_child_runs_single_threaded():
    """nlp.pipe(n_process=N) forks N children sharing the cores: each must start with one
    torch thread, also when the parent has not run the model yet (it once kept torch's
    default pool, one thread per core, and 2 children on 2 cores ran ~10x slower)."""
    import multiprocessing

    from spacy_cortex.core.device import install_fork_hooks

    install_fork_hooks()  # what creating a cortex component does

    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply(torch.get_num_threads) == 1
