"""Multi-task CORTEX training on the unified JSONL corpus (training/records.py).

    python -m spacy_cortex.training.train CORPUS_DIR OUTPUT_DIR --mix configs/train_mix.json --steps 9000
    python -m spacy_cortex.training.train gpu_pack/pack.npz OUTPUT_DIR --max-minutes 6   # a packed corpus

CORPUS is a folder of converted JSONL files, or a file packed by `spacy_cortex.training.pack`
(the examples already tokenized and cropped: its mix, max_length, dev rows and seed are the
pack's, recorded in it, and --mix / --max-length / --dev-per-task do not apply).

The loss, example encoding and batching are the core's (`spacy_cortex.core.loss`); this
module samples the mix, runs the optimizer, evaluates dev and checkpoints.
"""
import hashlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import typer
from tqdm import tqdm

from ..core.device import resolve_device, resolve_precision
from ..core.distill import distill_loss, segment_views
from ..core.encoding import IGNORE, NEGATIVE, POSITIVE
from ..core.loss import (TrainingExample, adamw, collate, encode_example, forward_logits, forward_loss, grad_scaler,
                         length_bucketed_batches, set_dropout)
from ..core.model import CortexModel
from ..commands import typer_app
from .backbone import BackboneError, backbone_path

app = typer_app()


def read_jsonl(path: Path, limit: Optional[int] = None) -> List[dict]:
    rows = []
    with path.open(encoding="utf8") as f:
        for line in f:
            if limit is not None and len(rows) >= limit:
                break
            rows.append(json.loads(line))
    return rows


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


def example_arrays(train: Sequence[TrainingExample], dev: Sequence[TrainingExample]) -> Dict[str, np.ndarray]:
    """Examples as flat numpy arrays (no objects, so no pickle), the format load_examples
    reads: every example's ids and labels concatenated, with per-example lengths."""
    examples = [*train, *dev]
    tasks = sorted({e.task for e in examples})
    return {
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


def save_examples(path: Path, train: Sequence[TrainingExample], dev: Sequence[TrainingExample]) -> None:
    """Write example_arrays to a temporary name renamed when complete (the name is the
    process's own: two runs encoding the same corpus at once each rename a whole file)."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    with tmp.open("wb") as f:
        np.savez(f, **example_arrays(train, dev))
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


def vocab_digest(tokenizer) -> str:
    """sha256 of the tokenizer's vocabulary (token -> id): token ids mean the same to two
    tokenizers with the same digest, whatever versions of tokenizers wrote their files."""
    return hashlib.sha256(json.dumps(sorted(tokenizer.get_vocab().items())).encode()).hexdigest()


def load_packed(path: Path, tokenizer):
    """(train, dev, meta) from a file of spacy_cortex.training.pack: load_examples' lists and
    the pack's JSON description. Raises ValueError when the file has no description (not a
    pack) or was tokenized with another vocabulary than `tokenizer`'s."""
    with np.load(path, allow_pickle=False) as data:
        if "meta" not in data:
            raise ValueError(f"{path} is not a packed corpus (no meta): make one with spacy_cortex.training.pack")
        meta = json.loads(str(data["meta"]))
    if meta["vocab_sha256"] != vocab_digest(tokenizer):
        raise ValueError(f"{path} was tokenized with another vocabulary than the model's "
                         f"(packed with {meta['model']}): pack it again with this model's tokenizer")
    train, dev = load_examples(path)
    return train, dev, meta


def training_examples(corpus: Path, mix: Path, tokenizer, cache_dir: Path, max_length: int,
                      dev_per_task: int, seed: int):
    """(train, dev) examples: a packed file's (load_packed), or a corpus folder's encoded
    for the mix in the file `mix` (encoded_corpus, cached in cache_dir)."""
    if corpus.is_file():
        train, dev, meta = load_packed(corpus, tokenizer)
        print(f"Packed corpus {corpus}: max_length {meta['max_length']}, kept {meta['kept_fraction']:.3f} of the mix")
        return train, dev
    return encoded_corpus(corpus, json.loads(mix.read_text()), tokenizer, cache_dir, max_length, dev_per_task, seed)


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


def load_teacher(path: Optional[Path], device: str) -> torch.nn.Module:
    """The distillation teacher in fp32 eval mode on the training device: the encoder at
    `path`, or all-MiniLM-L6-v2 (BadParameter naming --teacher when it is not installed)."""
    if path is None:
        try:
            path = backbone_path()
        except BackboneError as err:
            raise typer.BadParameter(str(err), param_hint="--teacher") from None
    teacher = CortexModel.from_base(path, precision="fp32", device=device).hf_model.eval()
    return teacher.requires_grad_(False)


@app.command()
def train(
    corpus: Path = typer.Argument(..., exists=True,
                                  help="Folder of <task>.jsonl files from spacy_cortex.training.convert, "
                                       "or a file from spacy_cortex.training.pack"),
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
    dropout: float = typer.Option(0.0, min=0.0, max=0.99, help="Dropout of every layer and of attention while training (0: off, and SDPA's fused attention kernel; core.loss.set_dropout)"),
    rank_weight: float = typer.Option(0.0, min=0.0, help="Weight of the listwise term over each group's [CLS] log-odds (module docstring; 0 = off)"),
    cache_dir: Optional[Path] = typer.Option(None, help="Where the tokenized corpus is cached (default OUTPUT/cache)"),
    distill_weight: float = typer.Option(0.0, min=0.0, help="Weight of the embedding distillation term (core/distill.py; 0 = off)"),
    distill_views: int = typer.Option(16, min=1, help="Texts and prompts per batch that the distillation term embeds"),
    distill_layer: int = typer.Option(-1, help="Hidden layer of the model whose mean is distilled (-1: the last)"),
    teacher: Optional[Path] = typer.Option(None, help="Teacher encoder folder of the distillation term (default: all-MiniLM-L6-v2)"),
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
                base = backbone_path()  # all-MiniLM-L6-v2 (Apache-2.0), files checked against recorded sha256
            except BackboneError as err:
                raise typer.BadParameter(str(err), param_hint="--base") from None
        model = CortexModel.from_base(base, precision=precision, device=device)
    set_dropout(model.hf_model, dropout)
    teacher_model = load_teacher(teacher, device) if distill_weight else None
    train_set, dev_set = training_examples(corpus, mix, model.tokenizer, cache_dir or output / "cache",
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
    optimizer = adamw(params, lr)
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
        if teacher_model is not None:
            views = segment_views(batch, model.tokenizer, distill_views, rng)
            loss = loss + distill_weight * distill_loss(model, teacher_model, views, distill_layer)
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
