"""The CORTEX loss and what feeds it: unified records (training/convert) encoded as
`TrainingExample`s, collated into padded batches, length-bucketed token-budget batching,
and the backward pass that spaCy's `update` and the trainer share. Imports no spaCy.

One loss for every task: cross-entropy on [CLS] (against a soft target where a record's
`cls` is a number in [0, 1]: the probability that the answer is yes, as in Cappy's
regression labels) plus, for extraction examples, the mean cross-entropy over the context
tokens and the mean over the answer tokens, averaged per example so that one long
extraction example does not outweigh many one-token classification examples, while the few
answer tokens of a long context still carry half its token loss.

With rank_weight w > 0 the records of one group (a multiple-choice question's candidates, a
text's gold and wrong labels) also get a listwise term, w times the softmax cross-entropy of
the positive record over the group's [CLS] log-odds (log P(positive) - log P(negative), what
`score` and cortex_textcat rank by): the top-one loss of ListNet (Cao et al., 2007), as
BERT's multiple-choice head trains over a question's choices (Devlin et al., 2019). Groups
stay together in a batch.
"""
import math
import random
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from .encoding import CLS_LABELS, IGNORE, NEGATIVE, POSITIVE, build_input, token_type_ids
from .model import CortexModel

@dataclass
class TrainingExample:
    task: str
    input_ids: np.ndarray
    labels: np.ndarray  # per token: class index or IGNORE ([CLS] IGNORE when cls_target is set)
    n_prompt: int
    cls_target: float = math.nan  # soft [CLS] target: P(positive) in [0, 1]; NaN for a class label
    group: int = -1  # listwise group (assign_groups); -1 for none


def soft_target(cls) -> float:
    """A record's `cls` as a soft target (NaN for a class name or None). Raises ValueError for
    a number outside [0, 1]."""
    if isinstance(cls, bool) or not isinstance(cls, (int, float)):
        return math.nan
    if not 0.0 <= cls <= 1.0:
        raise ValueError(f"a numeric cls is a probability in [0, 1], got {cls}")
    return float(cls)


def span_token_labels(offsets: np.ndarray, spans: Sequence[Sequence[int]]) -> np.ndarray:
    """POSITIVE for sub-tokens overlapping an answer span, NEGATIVE elsewhere."""
    labels = np.full(len(offsets), NEGATIVE, dtype=np.int64)
    for start, end in spans:
        inside = (offsets[:, 0] < end) & (offsets[:, 1] > start)
        labels[inside] = POSITIVE
    return labels


def encode_example(tokenizer, record: dict, max_length: int, rng: random.Random) -> TrainingExample:
    # verbose=False: a context past the tokenizer's max length is cropped below, not an error to warn of
    prompt_ids = tokenizer(record["prompt"], add_special_tokens=False, verbose=False)["input_ids"]
    prompt_ids = np.asarray(prompt_ids[: max_length // 2], dtype=np.int64)
    enc = tokenizer(record["context"], add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    context_ids = np.asarray(enc["input_ids"], dtype=np.int64)
    offsets = np.asarray(enc["offset_mapping"], dtype=np.int64).reshape(-1, 2)
    spans = record.get("spans")
    extraction = spans is not None
    context_labels = (
        span_token_labels(offsets, spans)
        if extraction
        else np.full(len(context_ids), IGNORE, dtype=np.int64)
    )
    room = max_length - len(prompt_ids) - 3
    if len(context_ids) > room:
        # Crop to a window that keeps the first answer when there is one.
        positives = np.flatnonzero(context_labels == POSITIVE)
        lo, hi = 0, len(context_ids) - room
        if len(positives):
            lo = max(lo, positives[-1] - room + 1)
            hi = min(hi, positives[0])
            if lo > hi:  # answer longer than the window: start at it
                lo = hi = min(positives[0], len(context_ids) - room)
        start = rng.randint(lo, hi)
        context_ids = context_ids[start : start + room]
        context_labels = context_labels[start : start + room]
    input_ids = build_input(tokenizer, prompt_ids, context_ids)
    labels = np.full(len(input_ids), IGNORE, dtype=np.int64)
    target = soft_target(record.get("cls"))
    labels[0] = IGNORE if not math.isnan(target) else CLS_LABELS[record.get("cls")]
    if extraction:
        # [CLS] of an extraction example says whether this window holds an answer.
        labels[0] = POSITIVE if (context_labels == POSITIVE).any() else NEGATIVE
    ctx = len(prompt_ids) + 2
    labels[ctx : ctx + len(context_ids)] = context_labels
    return TrainingExample(record["task"], input_ids, labels, len(prompt_ids), target)


def collate(examples: Sequence[TrainingExample], pad_id: int) -> Dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in examples)
    ids = np.full((len(examples), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    labels = np.full_like(ids, IGNORE)
    for i, e in enumerate(examples):
        n = len(e.input_ids)
        ids[i, :n], mask[i, :n], labels[i, :n] = e.input_ids, 1, e.labels
        types[i, :n] = token_type_ids(e.n_prompt, n)
    return {
        "input_ids": torch.from_numpy(ids),
        "attention_mask": torch.from_numpy(mask),
        "token_type_ids": torch.from_numpy(types),
        "labels": torch.from_numpy(labels),
        "cls_targets": torch.tensor([e.cls_target for e in examples], dtype=torch.float32),
        "groups": torch.tensor([e.group for e in examples], dtype=torch.int64),
    }


def cortex_loss(logits: torch.Tensor, labels: torch.Tensor, cls_targets: Optional[torch.Tensor] = None,
                groups: Optional[torch.Tensor] = None, rank_weight: float = 0.0) -> torch.Tensor:
    """Per example: [CLS] cross-entropy + mean context-token cross-entropy + mean answer-token
    cross-entropy (answers are ~2% of a SQuAD context; without the last term the model learns
    to under-predict them); batch mean. logits (batch, tokens, 3); labels (batch, tokens);
    cls_targets (batch,): a soft target t replaces the [CLS] label of its example with the
    cross-entropy against (neutral 0, positive t, negative 1 - t); NaN keeps the label.
    groups (batch,): with rank_weight > 0, plus rank_weight * rank_loss (module docstring)."""
    logits = logits.float()
    ce = torch.nn.functional.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE, reduction="none")
    cls_ce = ce[:, 0]
    if cls_targets is not None and not torch.isnan(cls_targets).all():
        soft = ~torch.isnan(cls_targets)
        t = torch.nan_to_num(cls_targets)
        log_p = torch.log_softmax(logits[:, 0], dim=-1)
        soft_ce = -(t * log_p[:, POSITIVE] + (1 - t) * log_p[:, NEGATIVE])
        cls_ce = torch.where(soft, soft_ce, cls_ce)
    token_ce = ce[:, 1:]

    def masked_mean(mask: torch.Tensor) -> torch.Tensor:
        mask = mask.float()
        return (token_ce * mask).sum(1) / mask.sum(1).clamp(min=1.0)

    context = masked_mean(labels[:, 1:] != IGNORE)
    answer = masked_mean(labels[:, 1:] == POSITIVE)
    loss = (cls_ce + context + answer).mean()
    if rank_weight and groups is not None:
        loss = loss + rank_weight * rank_loss(logits, groups, labels[:, 0] == POSITIVE)
    return loss


def rank_loss(logits: torch.Tensor, groups: torch.Tensor, positive: torch.Tensor) -> torch.Tensor:
    """Mean over the batch's groups of -log softmax(group's [CLS] log-odds)[positive record]
    (0 without groups). logits (batch, tokens, 3) float; groups (batch,) ids, -1 none;
    positive (batch,) bool, one True per group (assign_groups)."""
    log_odds = logits[:, 0, POSITIVE] - logits[:, 0, NEGATIVE]
    terms = [torch.logsumexp(log_odds[members], 0) - log_odds[members & positive].sum()
             for members in (groups == g for g in groups[groups >= 0].unique())]
    return torch.stack(terms).mean() if terms else logits.new_zeros(())


def forward_logits(model: CortexModel, batch: Dict[str, torch.Tensor]) -> torch.Tensor:
    with model.autocast():
        return model.hf_model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            token_type_ids=batch["token_type_ids"],
        ).logits


def forward_loss(model: CortexModel, examples: Sequence[TrainingExample], rank_weight: float = 0.0) -> torch.Tensor:
    """Mean loss of a batch on the model's device (inputs moved there as in inference)."""
    batch = {k: model.to_device(v.numpy()) for k, v in collate(examples, model.tokenizer.pad_token_id).items()}
    return cortex_loss(forward_logits(model, batch), batch["labels"], batch["cls_targets"],
                       batch["groups"], rank_weight)


def set_dropout(hf_model: torch.nn.Module, p: float) -> None:
    """Set every dropout probability of `hf_model` to p in [0, 1): the dropout layers, the
    attention dropout SDPA reads (`dropout_prob` in transformers 4.x, the layer's `p` in 5.x)
    and the config, so that a saved checkpoint says how it was trained. Raises ValueError for
    p outside [0, 1).

    Why 0 is the trainer's default: with attention dropout, scaled_dot_product_attention
    cannot use its fused kernel and materialises (batch, heads, tokens, tokens) probabilities
    and their random mask; drawing the masks (aten::bernoulli_) took 22% of a CPU training
    step in the trainer's profile (docs/TRAINING.md, "Throughput"). Training that sees its
    data about once does without dropout (Geiping and Goldstein, "Cramming", ICLR 2023)."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout is a probability in [0, 1), got {p}")
    for module in hf_model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p
        if hasattr(module, "dropout_prob"):
            module.dropout_prob = p
    config = hf_model.config
    config.hidden_dropout_prob = config.attention_probs_dropout_prob = p
    if getattr(config, "classifier_dropout", None) is not None:
        config.classifier_dropout = p


def adamw(params, lr: float) -> torch.optim.AdamW:
    """torch AdamW over `params` (tensors or parameter groups) at learning rate lr, fused
    into one kernel per step where the installed torch has that for the parameters' device
    (CPU from torch 2.4; it made the trainer's CPU step about a fifth faster), else its
    multi-tensor (foreach) form. Every step marks the parameters as changed in place."""
    params = list(params)
    try:
        optimizer = torch.optim.AdamW(params, lr=lr, fused=True)
    except RuntimeError:  # no fused kernel for this device in this torch
        optimizer = torch.optim.AdamW(params, lr=lr)
    optimizer.register_step_post_hook(_mark_changed)
    return optimizer


def _mark_changed(optimizer: torch.optim.Optimizer, args, kwargs) -> None:
    # The fused kernel writes the weights without bumping their autograd version, which
    # CortexModel reads (weights_version) to know that its bf16 / fp16 inference copy is
    # stale: without this, evaluation during `spacy train` scored the weights it started from.
    for group in optimizer.param_groups:
        for param in group["params"]:  # one at a time: torch before 2.5 takes no list
            torch.autograd.graph.increment_version(param)


def grad_scaler(model: CortexModel) -> torch.amp.GradScaler:
    """fp16 training needs loss scaling (its gradients underflow); bf16 and fp32 do not:
    then the scaler is disabled and passes everything through."""
    return torch.amp.GradScaler(model.device.type, enabled=model.precision == "fp16")


def backward_on_records(
    model: CortexModel, records: Sequence[dict], rng: random.Random, max_length: Optional[int] = None,
    scaler: Optional[torch.amp.GradScaler] = None,
) -> float:
    """Accumulate gradients for unified-format records in token-budget minibatches (scaled
    by `scaler` when given, for fp16); returns the mean loss. Used by spaCy's `update` (the
    trainer loop batches itself)."""
    max_length = max_length or model.max_length
    examples = [encode_example(model.tokenizer, r, max_length, rng) for r in records]
    total = 0.0
    for part in length_bucketed_batches(examples, model.max_batch_tokens, model.max_batch_size, rng):
        loss = forward_loss(model, part) * (len(part) / len(examples))
        (scaler.scale(loss) if scaler is not None else loss).backward()
        total += loss.item()
    return total


def length_bucketed_batches(
    examples: Sequence[TrainingExample], batch_tokens: int, max_batch: int, rng: random.Random
) -> List[List[TrainingExample]]:
    """Shuffle, sort within chunks by length, cut into token-budget batches, shuffle those.
    The examples of one group stay together (a group larger than a batch is a batch)."""
    units: Dict[int, List[TrainingExample]] = {}
    for i, e in enumerate(examples):
        units.setdefault(e.group if e.group >= 0 else -1 - i, []).append(e)
    order = list(units.values())
    rng.shuffle(order)
    batches: List[List[TrainingExample]] = []
    chunk = max_batch * 50
    for i in range(0, len(order), chunk):
        part = sorted(order[i : i + chunk], key=lambda u: max(len(e.input_ids) for e in u))
        current: List[TrainingExample] = []
        for unit in part:
            size, width = len(current) + len(unit), max(len(e.input_ids) for e in unit)
            if current and (size * width > batch_tokens or size > max_batch):
                batches.append(current)
                current = []
            current.extend(unit)
        if current:
            batches.append(current)
    rng.shuffle(batches)
    return batches
