"""spacy_cortex.core.device: device and precision resolution (CUDA and thinc's GPU ops are
monkeypatched here; tests/test_gpu.py runs on a real GPU)."""
import sys

import numpy as np
import pytest
import torch
from safetensors import safe_open

from spacy_cortex import api
from spacy_cortex.core import device as device_module
from spacy_cortex.core.device import DeviceError, resolve_device, resolve_precision
from spacy_cortex.core.model import CortexModel

PROMPT = "Which medications are mentioned?"
TEXT = "the patient was given 20 mg atorvastatin"


@pytest.fixture
def two_gpus(monkeypatch):
    """torch reports two CUDA devices (the tensors stay on the CPU: only resolution is tested)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)


def test_auto_follows_spacy(monkeypatch):
    pytest.importorskip("thinc")
    assert resolve_device("auto") == torch.device("cpu")  # thinc's NumpyOps: no GPU asked for
    assert resolve_device(None) == torch.device("cpu")
    # after spacy.require_gpu(1) thinc's ops are CuPy ops on GPU 1; its helper says cuda:1
    import thinc.util

    monkeypatch.setattr(thinc.util, "get_torch_default_device", lambda: torch.device("cuda:1"))
    assert resolve_device("auto") == torch.device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")  # an explicit device wins


def test_auto_is_cpu_where_thinc_was_never_imported(monkeypatch):
    """The core without spaCy (the GPU scripts): nothing to follow, so the CPU."""
    monkeypatch.delitem(sys.modules, "thinc.util", raising=False)
    assert resolve_device("auto") == torch.device("cpu")


def test_explicit_cuda(two_gpus):
    assert resolve_device("cuda") == torch.device("cuda:0")
    assert resolve_device("CUDA:1") == torch.device("cuda:1")
    with pytest.raises(DeviceError, match="'cuda:2' asked for, but there are 2 CUDA devices.*cpu, cuda:0, cuda:1"):
        resolve_device("cuda:2")


@pytest.mark.parametrize("spec,match", [
    ("cuda", "'cuda' asked for, but torch has no CUDA GPU here"),
    ("cuda:0", "no CUDA GPU"),
    ("gpu", "Unknown device 'gpu': use auto, cpu, cuda, cuda:N or mps \\(available here: cpu"),
    ("cuda:x", "Unknown device"),
])
def test_unavailable_or_unknown_device(monkeypatch, spec, match):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match=match):
        resolve_device(spec)


@pytest.mark.parametrize("bf16_gpu,native_cpu,expected_gpu,expected_cpu", [
    (True, True, "bf16", "bf16"), (False, False, "fp16", "fp32")])
def test_auto_precision(monkeypatch, bf16_gpu, native_cpu, expected_gpu, expected_cpu):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16_gpu)
    monkeypatch.setattr(device_module, "cpu_has_bf16", lambda: native_cpu)
    assert resolve_precision("auto", torch.device("cuda:0")) == expected_gpu
    assert resolve_precision("auto", torch.device("cpu")) == expected_cpu
    assert resolve_precision("auto", torch.device("mps")) == "fp32"
    assert resolve_precision("fp32", torch.device("cuda:0")) == "fp32"
    assert resolve_precision("fp16", torch.device("cuda:0")) == "fp16"
    with pytest.raises(ValueError, match="'fp16' is for CUDA GPUs; on cpu"):
        resolve_precision("fp16", torch.device("cpu"))
    with pytest.raises(ValueError, match="Unknown precision 'int4'"):
        resolve_precision("int4")


def test_missing_device_is_a_clear_error_everywhere(tiny_checkpoint, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="cuda:3"):
        CortexModel.from_path(tiny_checkpoint, device="cuda:3")
    with pytest.raises(DeviceError, match="Unknown device 'tpu'"):
        api.load_model(str(tiny_checkpoint), device="tpu")


def test_missing_device_is_a_clear_error_in_a_pipeline(tiny_checkpoint, monkeypatch):
    spacy = pytest.importorskip("spacy")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    nlp = spacy.blank("en")
    with pytest.raises(DeviceError, match="cuda"):
        nlp.add_pipe("cortex", config={"model": {"checkpoint": str(tiny_checkpoint), "device": "cuda"}})


def test_default_batch_tokens_follow_the_device(tiny_checkpoint, two_gpus, monkeypatch):
    assert CortexModel.from_path(tiny_checkpoint, device="cpu").max_batch_tokens == 2048
    assert CortexModel.from_path(tiny_checkpoint, device="cpu", max_batch_tokens=512).max_batch_tokens == 512
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    lazy = CortexModel(loader=lambda: None, device="cuda:1")  # not loaded: nothing moves yet
    assert (lazy.device, lazy.max_batch_tokens, lazy.precision) == (torch.device("cuda:1"), 16384, "bf16")


def test_to_and_back_gives_the_same_scores(tiny_checkpoint):
    model = CortexModel.from_path(tiny_checkpoint, precision="bf16", device="cpu")
    before = model.run_texts([(PROMPT, TEXT)])[0].token_probs
    cast = model.inference_model
    assert model.to("cpu") is model and model.inference_model is not cast  # a move makes a new cast copy
    np.testing.assert_allclose(model.run_texts([(PROMPT, TEXT)])[0].token_probs, before, atol=1e-6)
    assert next(model.hf_model.parameters()).device == torch.device("cpu")


def test_save_from_a_gpu_model_writes_cpu_tensors(tiny_checkpoint, tmp_path, monkeypatch):
    """The weights stay on the CPU here; the model says it is on a GPU, so save takes the
    path that copies every tensor to the CPU first."""
    model = CortexModel.from_path(tiny_checkpoint, device="cpu", precision="fp32")
    model.device = torch.device("cuda:0")
    moved = []
    real_cpu = torch.Tensor.cpu
    monkeypatch.setattr(torch.Tensor, "cpu", lambda self, *a, **k: moved.append(1) or real_cpu(self, *a, **k))
    model.save(tmp_path / "saved")
    assert len(moved) >= len(model.hf_model.state_dict())
    with safe_open(str(tmp_path / "saved" / "model.safetensors"), framework="pt") as f:
        for name in f.keys():
            assert f.get_tensor(name).device == torch.device("cpu")
    model.device = torch.device("cpu")
    reloaded = CortexModel.from_path(tmp_path / "saved", device="cpu", precision="fp32")
    np.testing.assert_allclose(reloaded.run_texts([(PROMPT, TEXT)])[0].token_probs,
                               model.run_texts([(PROMPT, TEXT)])[0].token_probs, atol=1e-6)
