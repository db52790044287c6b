"""Trainer throughput, side by side: the v3 trainer's step (dropout 0.1, AdamW's multi-tensor
step) against today's (dropout off, fused AdamW; train.py), on the same examples, in
alternating rounds of one process, so that both see the same machine load.

    python -m spacy_cortex.training.speed CORPUS OUTPUT.json [--mix configs/train_mix.json] [--examples 700] [--rounds 2] [--threads 0] [--base FOLDER]

CORPUS is what train.py reads (a folder of converted JSONL files with --mix, or a packed
file). Per setting: examples/s, padded tokens/s, training FLOP/s (3 x the forward FLOPs of
core.flops.encoder_flops: the backward pass costs about twice the forward, Kaplan et al. 2020)
and that rate as a share of the bf16 1024^3 matmul peak measured in the same process and
thread count (core.flops.flop_rate, the benchmark's peak). Imports no spaCy.
"""
import json
import random
import time
from pathlib import Path
from typing import Dict, List, Sequence

import torch
import typer

from ..commands import typer_app
from ..core.flops import encoder_flops, flop_rate
from ..core.loss import TrainingExample, adamw, forward_loss, length_bucketed_batches, set_dropout
from ..core.model import CortexModel
from .backbone import backbone_path
from .train import training_examples

app = typer_app(__doc__.split("\n\n")[0])
SETTINGS = {"v3": {"dropout": 0.1, "fused": False}, "now": {"dropout": 0.0, "fused": True}}


def bf16_peak(seconds: float = 2.0) -> float:
    """FLOP/s of a bf16 1024^3 matmul on this device and thread count (best of 5 windows)."""
    x, w = torch.randn(1024, 1024).bfloat16(), torch.randn(1024, 1024).bfloat16()
    with torch.inference_mode():
        return flop_rate(lambda: x @ w, 2.0 * 1024 ** 3, seconds)


def timed_pass(model: CortexModel, batches: Sequence[List[TrainingExample]], setting: dict) -> Dict[str, float]:
    """Train on every batch with `setting` (after one untimed step); examples, padded tokens,
    training FLOPs and seconds."""
    set_dropout(model.hf_model, setting["dropout"])
    params = list(model.hf_model.parameters())
    optimizer = adamw(params, 1e-7) if setting["fused"] else torch.optim.AdamW(params, lr=1e-7)
    model.hf_model.train()

    def step(batch):
        forward_loss(model, batch).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step(batches[0])
    examples = tokens = flops = 0.0
    start = time.perf_counter()
    for batch in batches:
        step(batch)
        width = max(len(e.input_ids) for e in batch)
        examples += len(batch)
        tokens += len(batch) * width
        flops += 3 * encoder_flops(model.hf_model.config, len(batch), width)
    return {"examples": examples, "tokens": tokens, "flops": flops, "seconds": time.perf_counter() - start}


@app.command()
def speed(
    corpus: Path = typer.Argument(..., exists=True, help="What train.py reads: a converted corpus folder or a packed file"),
    output: Path = typer.Argument(..., help="JSON file for the figures"),
    mix: Path = typer.Option(Path("configs/train_mix.json"), help="JSON {task: examples} (a corpus folder only)"),
    examples: int = typer.Option(700, min=50, help="Examples drawn (seeded) from the training set, the same for every setting"),
    rounds: int = typer.Option(2, min=1, help="Alternating rounds per setting"),
    threads: int = typer.Option(0, min=0, help="torch threads (0 = torch default)"),
    base: Path = typer.Option(None, help="Encoder folder to train (default: all-MiniLM-L6-v2, the `train` extra)"),
    batch_tokens: int = typer.Option(3072), max_batch: int = typer.Option(32), max_length: int = typer.Option(256),
):
    """Examples/s and % of the bf16 matmul peak of the v3 and today's training step."""
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = CortexModel.from_base(base or backbone_path(), precision="bf16", device="cpu")
    train, _ = training_examples(corpus, mix, model.tokenizer, output.parent / "speed_cache", max_length, 0, 0)
    sample = random.Random(1).sample(train, min(examples, len(train)))
    peak = bf16_peak()
    totals = {name: {"examples": 0.0, "tokens": 0.0, "flops": 0.0, "seconds": 0.0} for name in SETTINGS}
    for r in range(rounds):
        batches = length_bucketed_batches(sample, batch_tokens, max_batch, random.Random(r))
        for name, setting in SETTINGS.items():
            for key, value in timed_pass(model, batches, setting).items():
                totals[name][key] += value
    report = {"threads": torch.get_num_threads(), "examples": len(sample), "rounds": rounds,
              "bf16_peak_gflops": round(peak / 1e9, 1), "settings": SETTINGS, "rows": {}}
    for name, t in totals.items():
        rate = t["flops"] / t["seconds"]
        report["rows"][name] = {"examples_per_s": round(t["examples"] / t["seconds"], 2),
                                "padded_tokens_per_s": round(t["tokens"] / t["seconds"]),
                                "train_gflops": round(rate / 1e9, 1), "share_of_bf16_peak": round(rate / peak, 4)}
    rows = report["rows"]
    report["speedup"] = round(rows["now"]["examples_per_s"] / rows["v3"]["examples_per_s"], 3)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=1))
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    app()
