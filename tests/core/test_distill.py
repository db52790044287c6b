"""spacy_cortex.core.distill: the embedding distillation term."""
import random

import numpy as np
import torch
from conftest import build_checkpoint

from spacy_cortex.core.distill import distill_loss, segment_views
from spacy_cortex.core.loss import TrainingExample
from spacy_cortex.core.model import CortexModel


def example(prompt, context, cls_id=101, sep_id=102):
    ids = np.array([cls_id, *prompt, sep_id, *context, sep_id])
    return TrainingExample("t", ids, np.zeros(len(ids), dtype=np.int64), len(prompt))


def test_segment_views_are_distinct_segments(tiny_checkpoint):
    tok = CortexModel.from_path(tiny_checkpoint).tokenizer
    batch = [example([5, 6], [7, 8, 9]), example([5, 6], [10]), example([], [11, 12])]
    views = segment_views(batch, tok, 10, random.Random(0))
    inner = sorted(v[1:-1].tolist() for v in views)
    assert inner == [[5, 6], [7, 8, 9], [10], [11, 12]]  # the shared prompt once, no empty prompt
    assert all(v[0] == tok.cls_token_id and v[-1] == tok.sep_token_id for v in views)
    assert len(segment_views(batch, tok, 2, random.Random(0))) == 2


def test_distill_loss_is_zero_against_itself_and_trains_the_student_only(tiny_checkpoint, tmp_path):
    model = CortexModel.from_path(tiny_checkpoint, precision="fp32")
    same = CortexModel.from_path(tiny_checkpoint, precision="fp32").hf_model.eval().requires_grad_(False)
    views = [np.array([101, 5, 6, 102]), np.array([101, 7, 102])]
    model.hf_model.eval()
    assert distill_loss(model, same, views).item() < 1e-5
    other = CortexModel.from_path(build_checkpoint(tmp_path / "other", inside_bias=1.0), precision="fp32")
    torch.manual_seed(1)
    for p in other.hf_model.parameters():
        p.data.normal_()
    teacher = other.hf_model.eval().requires_grad_(False)
    loss = distill_loss(model, teacher, views)
    assert 0 < loss.item() <= 2
    loss.backward()
    assert model.hf_model.bert.encoder.layer[0].attention.self.query.weight.grad is not None
    assert all(p.grad is None for p in teacher.parameters())
    assert distill_loss(model, teacher, []).item() == 0.0
