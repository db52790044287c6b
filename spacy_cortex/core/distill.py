"""Keeping the backbone's sentence similarity while the model learns its tasks: an embedding
distillation term for the trainer (train.py --distill-weight). Imports no spaCy.

The texts and prompts of a batch, each alone as `[CLS] segment [SEP]` (what CortexModel.embed
runs), are embedded by the model being trained (the mean of one layer's hidden states over
the tokens, L2-normalized) and by the frozen teacher, the untrained backbone all-MiniLM-L6-v2
(the same of its last layer: the sentence-transformers embedding); the term is the mean of
1 - cosine between the two, as Reimers and Gurevych (2020, "Making Monolingual Sentence
Embeddings Multilingual using Knowledge Distillation") train a student on a teacher's
sentence embeddings (their MSE on unit vectors is twice this). Trained models lose the
backbone's similarity in their last layers (the model card: banking77 recall@10 of the
label shortlist 22% at the last layer of v3, 72% at layer 3); the term is meant to keep it.
"""
import random
from typing import List, Sequence

import numpy as np
import torch

from .encoding import segment_input
from .model import CortexModel


def segment_views(examples: Sequence, tokenizer, limit: int, rng: random.Random) -> List[np.ndarray]:
    """Up to `limit` distinct `[CLS] segment [SEP]` id arrays of the examples' contexts and
    prompts (TrainingExample: input_ids = [CLS] prompt [SEP] context [SEP], n_prompt), drawn
    with rng. An empty segment is left out."""
    views = {}
    for e in examples:
        prompt, context = e.input_ids[1 : e.n_prompt + 1], e.input_ids[e.n_prompt + 2 : -1]
        for ids in (prompt, context):
            if len(ids):
                views.setdefault(ids.tobytes(), ids)
    keys = sorted(views)
    chosen = rng.sample(keys, min(limit, len(keys)))
    return [segment_input(tokenizer, views[k]) for k in chosen]


def pooled(hf_model: torch.nn.Module, ids: torch.Tensor, mask: torch.Tensor, layer: int) -> torch.Tensor:
    """(n, hidden) unit vectors: the mean over unmasked tokens of hidden_states[layer]."""
    states = hf_model(input_ids=ids, attention_mask=mask, token_type_ids=torch.zeros_like(ids),
                      output_hidden_states=True).hidden_states
    hidden = states[max(layer, -len(states))].float()
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * weights).sum(1) / weights.sum(1), dim=-1)


def distill_loss(model: CortexModel, teacher: torch.nn.Module, views: Sequence[np.ndarray],
                 layer: int = -1) -> torch.Tensor:
    """Mean 1 - cosine of the model's and the teacher's embeddings of `views` (segment_views),
    a scalar in [0, 2]; 0 without views. The teacher runs without gradients (its last layer);
    the model under its autocast, at hidden_states[layer]."""
    if not views:
        return torch.zeros((), device=model.device)
    width = max(len(v) for v in views)
    ids = np.full((len(views), width), model.tokenizer.pad_token_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, v in enumerate(views):
        ids[i, : len(v)], mask[i, : len(v)] = v, 1
    ids, mask = model.to_device(ids), model.to_device(mask)
    with torch.no_grad():
        target = pooled(teacher, ids, mask, -1)
    with model.autocast():
        student = pooled(model.hf_model, ids, mask, layer)
    return (1.0 - (student * target).sum(-1)).mean()
