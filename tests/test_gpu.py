"""On a CUDA GPU with spaCy installed (skipped without a GPU): scores against the CPU within
bf16 tolerance, nlp.pipe == nlp(), training steps, saving. The lent GPU machine has neither
spaCy nor pytest: there scripts/gpu_check.sh checks the core (evaluation/device_check.py)."""
import numpy as np
import pytest
import spacy
import torch
from safetensors import safe_open

from spacy_cortex.core.model import CortexModel

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")]
PAIRS = [("Which medications are mentioned?", "the patient was given 20 mg atorvastatin"),
         ("Is this text about refunds?", "refund " * 300)]
TOLERANCE = 0.02  # bf16 keeps 8 bits of mantissa: probabilities agree to about 1e-2


def probs(model):
    results = model.run_texts(PAIRS)
    return [r.token_probs for r in results], [r.cls_probs for r in results]


@pytest.mark.parametrize("precision", ["fp32", "auto"])
def test_gpu_scores_match_cpu(tiny_checkpoint, precision):
    cpu_tokens, cpu_cls = probs(CortexModel.from_path(tiny_checkpoint, precision="fp32", device="cpu"))
    gpu = CortexModel.from_path(tiny_checkpoint, precision=precision, device="cuda")
    assert next(gpu.hf_model.parameters()).is_cuda
    gpu_tokens, gpu_cls = probs(gpu)
    atol = 1e-4 if precision == "fp32" else TOLERANCE
    for a, b in zip(cpu_tokens + cpu_cls, gpu_tokens + gpu_cls):
        np.testing.assert_allclose(a, b, atol=atol)


def test_require_gpu_moves_the_pipeline(tiny_checkpoint, tmp_path):
    spacy.require_gpu(0)
    try:
        nlp = spacy.blank("en")
        nlp.add_pipe("cortex", config={"model": {"checkpoint": str(tiny_checkpoint)}})
        nlp.add_pipe("cortex_ner", config={"labels": ["DRUG", "DOSE"], "threshold": 0.3})
        assert nlp.get_pipe("cortex").model.device.type == "cuda"
        texts = [t for _, t in PAIRS] + ["", "Aspirin 🍎 twice a day."]
        one = [[(e.start, e.end, e.label_) for e in nlp(t).ents] for t in texts]
        many = [[(e.start, e.end, e.label_) for e in d.ents] for d in nlp.pipe(texts, batch_size=2)]
        assert one == many
        nlp.to_disk(tmp_path / "pipe")
        with safe_open(str(tmp_path / "pipe" / "cortex" / "model.safetensors"), framework="pt") as f:
            assert all(f.get_tensor(k).device.type == "cpu" for k in f.keys())
    finally:
        from thinc.api import NumpyOps, set_current_ops

        set_current_ops(NumpyOps())


def test_training_steps_on_gpu(tiny_checkpoint):
    import random

    from spacy_cortex.core.loss import backward_on_records, grad_scaler

    model = CortexModel.from_path(tiny_checkpoint, precision="auto", device="cuda")
    scaler = grad_scaler(model)
    optimizer = torch.optim.AdamW(model.hf_model.parameters(), lr=1e-3)
    records = [{"task": "t", "prompt": p, "context": c, "cls": "positive", "spans": None} for p, c in PAIRS]
    before = model.hf_model.classifier.weight.detach().clone()
    for _ in range(2):
        loss = backward_on_records(model, records, random.Random(0), scaler=scaler)
        scaler.unscale_(optimizer)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad()
    assert np.isfinite(loss)
    assert not torch.equal(before, model.hf_model.classifier.weight.detach())
