"""Pack the training corpus for the lent GPU machine: the mix's examples tokenized here (the
trainer's `encoded_corpus`, the same TrainingExample arrays as its cache), narrowed to the
smallest integer types and compressed into one file of at most `--budget-mib` (15 MiB: the
model alone is 45 MB of the 64 MiB that travels). When the whole mix does not fit, the same
fraction of every task's training examples is kept (a listwise group whole or not at all),
so the mix keeps its proportions; the dev examples are kept whole.

    python -m spacy_cortex.training.pack CORPUS_DIR --mix configs/train_mix.json --output gpu_pack

writes gpu_pack/pack.npz, which `.gitignore` ignores: the run tool carries it with
`carry: ["gpu_pack"]`, and `python -m spacy_cortex.training.train gpu_pack/pack.npz OUT`
trains from it (scripts/gpu_train.sh).
"""
import io
import json
import os
import random
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import typer

from ..core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from ..core.loss import TrainingExample
from ..core.model import load_hf_model
from .train import encoded_corpus, example_arrays, vocab_digest
from ..commands import typer_app

MIB = 1 << 20
PACK_FILE = "pack.npz"
FIT_ATTEMPTS = 6  # shrinking steps after the first guess; each compresses the pack once (seconds for 15 MiB)

app = typer_app()


def narrow(arrays: Dict[str, np.ndarray], vocab_size: int) -> Dict[str, np.ndarray]:
    """example_arrays with the smallest types that hold their values: ids int16 for a
    vocabulary of up to 32767 tokens (uint16 up to 65535, else int32), labels int8, lengths
    and prompt lengths int16 (max_length < 32768), task indices int16, groups int32.
    load_examples widens them again."""
    ids = np.int16 if vocab_size <= np.iinfo(np.int16).max + 1 else \
        np.uint16 if vocab_size <= np.iinfo(np.uint16).max + 1 else np.int32
    types = {"input_ids": ids, "labels": np.int8, "lengths": np.int16, "n_prompt": np.int16,
             "task": np.int16, "group": np.int32}
    return {k: v.astype(types[k]) if k in types else v for k, v in arrays.items()}


def task_units(train: Sequence[TrainingExample]) -> Dict[str, List[List[int]]]:
    """{task: units}, a unit being the indices of one example or of one listwise group (the
    consecutive examples sharing a group id >= 0, as assign_groups makes them)."""
    units: Dict[str, List[List[int]]] = {}
    for i, e in enumerate(train):
        previous = train[i - 1] if i else None
        if e.group >= 0 and previous is not None and previous.group == e.group and previous.task == e.task:
            units[e.task][-1].append(i)
        else:
            units.setdefault(e.task, []).append([i])
    return units


def subsample(train: Sequence[TrainingExample], fraction: float, seed: int) -> List[TrainingExample]:
    """`fraction` (0, 1] of every task's units, at least one per task, drawn with `seed`;
    the kept examples stay in their order."""
    rng = random.Random(seed)
    kept: List[int] = []
    for units in task_units(train).values():
        count = max(1, min(len(units), round(fraction * len(units))))
        kept.extend(i for unit in rng.sample(units, count) for i in unit)
    return [train[i] for i in sorted(kept)]


def size_text(n_bytes: int) -> str:
    return f"{n_bytes / MIB:.2f} MiB" if n_bytes >= MIB // 10 else f"{n_bytes / 1024:.1f} KiB"


def compressed(arrays: Dict[str, np.ndarray]) -> bytes:
    """The np.savez_compressed file of `arrays`, in memory."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return buffer.getvalue()


def per_task(examples: Sequence[TrainingExample]) -> Dict[str, int]:
    counts: Dict[str, int] = {}
    for e in examples:
        counts[e.task] = counts.get(e.task, 0) + 1
    return counts


def fit(train: Sequence[TrainingExample], dev: Sequence[TrainingExample], meta: dict, vocab_size: int,
        budget: int, seed: int) -> Tuple[bytes, dict]:
    """(file bytes of at most `budget`, its meta) for the largest kept fraction found: all of
    train when it fits; else the fraction is interpolated between the smallest pack (one unit
    per task and the dev examples) and the whole, then shrunk in at most FIT_ATTEMPTS steps.
    meta gets kept_fraction, train/dev counts and per_task {task: [encoded, kept]}. Raises
    ValueError when even the smallest pack does not fit."""
    encoded = per_task(train)

    def attempt(fraction: float) -> Tuple[bytes, dict]:
        kept = subsample(train, fraction, seed) if fraction < 1.0 else list(train)
        counts = per_task(kept)
        described = {**meta, "kept_fraction": fraction, "train_examples": len(kept), "dev_examples": len(dev),
                     "per_task": {t: [n, counts.get(t, 0)] for t, n in encoded.items()}}
        arrays = {**narrow(example_arrays(kept, dev), vocab_size), "meta": np.array(json.dumps(described))}
        return compressed(arrays), described

    data, described = attempt(1.0)
    if len(data) <= budget:
        return data, described
    whole = len(data)
    smallest = len(attempt(0.0)[0])
    if smallest > budget:
        raise ValueError(f"even one example per task and the dev examples take {size_text(smallest)}, over the "
                         f"{size_text(budget)} budget: give a larger --budget-mib or fewer dev rows")
    fraction = 0.98 * (budget - smallest) / (whole - smallest)
    for _ in range(FIT_ATTEMPTS):
        data, described = attempt(fraction)
        if len(data) <= budget:
            return data, described
        fraction *= 0.98 * (budget - smallest) / (len(data) - smallest)
    raise ValueError(f"no kept fraction fitted {size_text(budget)} in {FIT_ATTEMPTS} tries "
                     f"(last {size_text(len(data))} at {fraction:.4f})")


def pack(corpus: Path, mix: Dict[str, int], model: Path, output: Path, budget: int, max_length: int,
         dev_per_task: int, seed: int, cache_dir: Path) -> dict:
    """Encode `corpus` for `mix` with `model`'s tokenizer and write output/pack.npz of at
    most `budget` bytes (fit); returns its meta (bytes added)."""
    _, tokenizer = load_hf_model(model, fresh_head=True)  # a base without a cortex head packs too
    train, dev = encoded_corpus(corpus, mix, tokenizer, cache_dir, max_length, dev_per_task, seed)
    meta = {"model": str(model), "vocab_sha256": vocab_digest(tokenizer), "mix": mix, "max_length": max_length,
            "dev_per_task": dev_per_task, "seed": seed}
    data, meta = fit(train, dev, meta, len(tokenizer), budget, seed)
    output.mkdir(parents=True, exist_ok=True)
    tmp = output / (PACK_FILE + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, output / PACK_FILE)
    return {**meta, "bytes": len(data)}


def describe(meta: dict) -> str:
    """What a pack kept, one line per task, for the console."""
    lines = [f"{size_text(meta['bytes'])}: {meta['train_examples']} training examples "
             f"({meta['kept_fraction']:.3f} of the encoded mix) and {meta['dev_examples']} dev examples"]
    lines += [f"  {task}: kept {kept} of {encoded}" for task, (encoded, kept) in meta["per_task"].items()]
    return "\n".join(lines)


@app.command()
def main(
    corpus: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of converted <task>.jsonl files"),
    mix: Path = typer.Option(Path("configs/train_mix.json"), exists=True, help="JSON {task: training examples}"),
    output: Path = typer.Option(Path("gpu_pack"), help="Folder for pack.npz (ignored by git; carried to the GPU)"),
    model: Optional[str] = typer.Option(None, help="Checkpoint or base whose tokenizer encodes (default: the shipped model)"),
    budget_mib: float = typer.Option(15.0, help="Largest pack in MiB"),
    max_length: int = typer.Option(256, help="Tokens per example at most (as train.py's --max-length)"),
    dev_per_task: int = typer.Option(100, help="Rows per task held out for dev (as train.py)"),
    seed: int = typer.Option(0),
    cache_dir: Path = typer.Option(Path("training/cache"), help="train.py's cache of encoded corpora (not carried)"),
):
    """Pack the training corpus into OUTPUT/pack.npz for a GPU run."""
    folder = resolve_checkpoint(model or DEFAULT_CHECKPOINT)
    meta = pack(corpus, json.loads(mix.read_text()), folder, output, int(budget_mib * MIB), max_length,
                dev_per_task, seed, cache_dir)
    typer.echo(f"Wrote {output / PACK_FILE}: {describe(meta)}")


if __name__ == "__main__":
    app()
