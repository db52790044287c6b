"""The GPU check (scripts/gpu_check.sh): what the core does on a device, in one JSON file.

1. agreement: fixed (prompt, text) pairs (extraction prompts, yes/no prompts, one long
   text) run on the device in each reduced precision and compared with CPU fp32: the
   largest |difference| of any probability, and whether the decoded spans (threshold
   spans of the extraction prompts) and yes/no decisions are the same;
2. throughput: documents/s and tokens/s of an extraction and a yes/no prompt per document
   over a grid of max_batch_size x max_batch_tokens, with the peak memory of each setting;
3. training: a few optimizer steps on a built-in batch from the checkpoint (dropout off:
   the same batch every step, so the loss must fall), first and last loss.

    PYTHONPATH=. python -m spacy_cortex.evaluation.device_check --output $OUT/gpu_check.json
    DEVICE=cpu PYTHONPATH=. python -m spacy_cortex.evaluation.device_check --output check.json

DEVICE (default cuda) picks the device; on the CPU the grid is smaller and only bf16 is
compared (fp16 is for CUDA only: core.device.resolve_precision). The JSON is rewritten after
every section, so a run cut short keeps what it measured; a section that fails records its
error and the others still run. Exit status 0 when no section failed and the loss fell.
Imports the core, torch, numpy and typer: no spaCy.
"""
import json
import os
import platform
import resource
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import typer

from ..core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from ..core.decoding import (SPAN_EXTEND_THRESHOLD, SPAN_THRESHOLD, SPAN_WINDOW, best_span, threshold_spans,
                             yes_probability)
from ..core.device import cpu_has_bf16, resolve_device, resolve_precision
from ..core.loss import adamw, collate, encode_example, forward_loss
from ..core.model import CortexModel
from ..commands import run

MIB = 1 << 20
EXTRACTION = [
    ("Find all persons mentioned in the text.", "Angela Merkel met Emmanuel Macron in Berlin on Tuesday."),
    ("Find all organizations mentioned in the text.", "Apple and Microsoft reported earnings; the SEC opened an inquiry."),
    ("Find all locations mentioned in the text.", "The flight from Nairobi to Lima stopped over in Madrid."),
    ("Find all drugs mentioned in the text.", "The patient was given 20 mg atorvastatin and aspirin twice a day."),
    ("Q: Who wrote the report?", "The report, written by Dr. Sara Lind of the Oslo institute, was published in May."),
    ("Q: When did the bridge open?", "Construction began in 1932 and the bridge opened to traffic in May 1937."),
]
CLASSIFICATION = [
    ("Is this text about refunds?", "I returned the shoes two weeks ago and still have not got my money back."),
    ("Is this text about sports?", "The striker scored twice as the home side won the cup final 3-1."),
    ("Is the sentiment of this text positive?", "What a dreadful film: two hours I will never get back."),
    ("Does this text imply that the shop was closed?", "We arrived at noon, but the shutters were down and the lights off."),
    ("Is this similar to: How do I reset my password?", "I forgot my login password, how can I change it?"),
]
LONG_TEXT = "\n\n".join(" ".join(text for _, text in EXTRACTION + CLASSIFICATION) for _ in range(8))
PAIRS = EXTRACTION + CLASSIFICATION + [("Find all persons mentioned in the text.", LONG_TEXT)]
N_EXTRACTION = len(EXTRACTION)  # these and the long text (an extraction prompt) decode to spans
ANSWERS = [["Angela Merkel", "Emmanuel Macron"], ["Apple", "Microsoft", "SEC"], ["Nairobi", "Lima", "Madrid"],
           ["atorvastatin", "aspirin"], ["Dr. Sara Lind"], ["May 1937"]]  # of EXTRACTION, in order
TRAIN_RECORDS = [
    {"task": "extract", "prompt": p, "context": t, "cls": None, "spans": [[t.index(a), t.index(a) + len(a)] for a in answers]}
    for (p, t), answers in zip(EXTRACTION, ANSWERS)
] + [{"task": "yes_no", "prompt": p, "context": t, "cls": c, "spans": None}
     for (p, t), c in zip(CLASSIFICATION, ["positive", "positive", "negative", "positive", "positive"])]
GRID = {"cuda": ([32, 128, 512], [8192, 16384, 65536], 2000), "cpu": ([16, 64], [2048, 8192], 48)}


def environment(device: torch.device, model_path: Path) -> dict:
    """Versions, the device's name and the checkpoint."""
    import transformers

    info = {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__,
            "numpy": np.__version__, "device": str(device), "cpu_count": os.cpu_count(),
            "cpu_native_bf16": cpu_has_bf16(), "torch_threads": torch.get_num_threads(),
            "model": str(model_path), "model_mib": round((model_path / "model.safetensors").stat().st_size / MIB, 2)}
    if device.type == "cuda":
        info.update(device_name=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                    bf16_supported=torch.cuda.is_bf16_supported())
    else:
        info["device_name"] = platform.processor() or platform.machine()
    return info


def weights_dtype(model: CortexModel) -> str:
    return str(next(model.hf_model.parameters()).dtype).replace("torch.", "")


def spans_of(prompt: str, result) -> List[Tuple[int, int]]:
    """Character ranges decoded as the API does: the best answer span of a question ("Q:"),
    else threshold spans at the default thresholds."""
    if prompt.startswith("Q:"):
        spans = [best_span(result)]
    else:
        spans = threshold_spans(result, SPAN_THRESHOLD, SPAN_EXTEND_THRESHOLD)
    return [(s.start_char, s.end_char) for s in spans if s is not None]


def decoded(results) -> Tuple[List[list], List[bool]]:
    """(spans of the extraction pairs and the long text (spans_of), yes decisions of the
    yes/no pairs) of PAIRS' results."""
    spans = [spans_of(PAIRS[i][0], r) for i, r in enumerate(results) if i < N_EXTRACTION or i == len(PAIRS) - 1]
    decisions = [yes_probability(r) >= 0.5 for r in results[N_EXTRACTION:-1]]
    return spans, decisions


def run_pairs(model: CortexModel):
    """PAIRS' results; extraction prompts read SPAN_WINDOW sub-tokens at a time, as extract does."""
    return model.run_texts(PAIRS, window={p: SPAN_WINDOW for p, _ in EXTRACTION})


def precisions_to_compare(device: torch.device) -> List[str]:
    """CUDA: fp32 (TF32 may differ from the CPU), bf16 and fp16; CPU: bf16 (fp32 is the
    reference itself, fp16 is CUDA-only)."""
    return ["fp32", "bf16", "fp16"] if device.type == "cuda" else ["bf16"]


def agreement(model_path: Path, device: torch.device) -> dict:
    """Per precision: max |delta prob| of token and [CLS] probabilities against CPU fp32,
    whether spans and decisions are identical, and the pairs that differ."""
    reference = CortexModel.from_path(model_path, precision="fp32", device="cpu")
    ref_results = run_pairs(reference)
    ref_spans, ref_decisions = decoded(ref_results)
    out = {"pairs": len(PAIRS), "reference": "cpu fp32", "reference_weights_dtype": weights_dtype(reference)}
    if device.type == "cpu":
        out["note"] = "CPU dry run: bf16 against fp32 only; fp16 runs on CUDA only"
    for precision in precisions_to_compare(device):
        model = CortexModel.from_path(model_path, precision=precision, device=str(device))
        results = run_pairs(model)
        spans, decisions = decoded(results)
        token = max(float(np.abs(a.token_probs - b.token_probs).max(initial=0.0)) for a, b in zip(ref_results, results))
        cls = max(float(np.abs(a.cls_probs - b.cls_probs).max()) for a, b in zip(ref_results, results))
        out[precision] = {
            "max_abs_delta_token_prob": token, "max_abs_delta_cls_prob": cls,
            "spans_identical": spans == ref_spans, "decisions_identical": decisions == ref_decisions,
            "differing_span_pairs": [i for i, (a, b) in enumerate(zip(spans, ref_spans)) if a != b],
            "spans": sum(len(s) for s in spans), "reference_spans": sum(len(s) for s in ref_spans),
        }
        del model
    return out


def workload(n_docs: int, seed: int = 0) -> List[Tuple[str, str]]:
    """(prompt, text) requests of n_docs documents of 1 to 12 sentences from the fixed
    texts, each read with one extraction and one yes/no prompt."""
    rng = np.random.default_rng(seed)
    sentences = [t for _, t in EXTRACTION + CLASSIFICATION]
    docs = [" ".join(rng.choice(sentences, size=int(rng.integers(1, 13)))) + f" ({i})" for i in range(n_docs)]
    return [(p, d) for i, d in enumerate(docs) for p in (EXTRACTION[i % 4][0], CLASSIFICATION[i % 3][0])]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(model_path: Path, device: torch.device, n_docs: Optional[int]) -> dict:
    """Rows of {precision, max_batch_size, max_batch_tokens, seconds, docs_per_s,
    tokens_per_s (real, unpadded input tokens), peak_mib (CUDA: max_memory_allocated)}."""
    sizes, budgets, default_docs = GRID[device.type]
    n_docs = n_docs or default_docs
    requests = workload(n_docs)
    precisions = ["bf16", "fp16"] if device.type == "cuda" else [resolve_precision("auto", device)]
    rows = []
    for precision in precisions:
        model = CortexModel.from_path(model_path, precision=precision, device=str(device))
        model.run_texts(requests[:64])  # warm-up: kernels, the cast copy, the prompt cache
        texts = list(dict.fromkeys(t for _, t in requests))
        encoded = dict(zip(texts, model.encode_texts(texts)))
        tokens = sum(len(w.input_ids) for w in model.windows([(p, encoded[t]) for p, t in requests]))
        for size in sizes:
            for budget in budgets:
                model.max_batch_size, model.max_batch_tokens = size, budget
                if device.type == "cuda":
                    torch.cuda.reset_peak_memory_stats(device)
                synchronize(device)
                start = time.perf_counter()
                model.run_texts(requests)
                synchronize(device)
                seconds = time.perf_counter() - start
                row = {"precision": precision, "max_batch_size": size, "max_batch_tokens": budget, "docs": n_docs,
                       "tokens": tokens, "seconds": round(seconds, 4), "docs_per_s": round(n_docs / seconds, 1),
                       "tokens_per_s": round(tokens / seconds)}
                if device.type == "cuda":
                    row["peak_mib"] = round(torch.cuda.max_memory_allocated(device) / MIB, 1)
                rows.append(row)
        del model
    best = max(rows, key=lambda r: r["docs_per_s"])
    return {"rows": rows, "best": {k: best[k] for k in ("precision", "max_batch_size", "max_batch_tokens", "docs_per_s")}}


def training(model_path: Path, device: torch.device, steps: int, lr: float) -> dict:
    """`steps` AdamW steps on TRAIN_RECORDS as one batch, in the device's automatic
    precision (fp16 with loss scaling); dropout off. Losses per step, first and last."""
    import random

    torch.manual_seed(0)
    model = CortexModel.from_path(model_path, precision="auto", device=str(device))
    examples = [encode_example(model.tokenizer, r, 256, random.Random(0)) for r in TRAIN_RECORDS]
    optimizer = adamw(model.hf_model.parameters(), lr)
    scaler = torch.amp.GradScaler(device.type, enabled=model.precision == "fp16")
    model.hf_model.eval()  # dropout off; autograd stays on
    losses = []
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        loss = forward_loss(model, examples)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        losses.append(round(loss.item(), 5))
    synchronize(device)
    seconds = time.perf_counter() - start
    tokens = int(collate(examples, model.tokenizer.pad_token_id)["attention_mask"].sum())
    return {"precision": model.precision, "weights_dtype": weights_dtype(model), "steps": steps, "lr": lr,
            "batch_examples": len(examples), "batch_tokens": tokens, "losses": losses,
            "first_loss": losses[0], "last_loss": losses[-1], "loss_decreased": losses[-1] < losses[0],
            "finite": bool(np.isfinite(losses).all()), "seconds": round(seconds, 3),
            "examples_per_s": round(steps * len(examples) / seconds, 1)}


def peak_memory(device: torch.device) -> dict:
    """CUDA: torch.cuda.max_memory_allocated over the whole run; CPU: the process's peak RSS."""
    if device.type == "cuda":
        return {"kind": "cuda max_memory_allocated (since the last reset: the last throughput row or training)",
                "mib": round(torch.cuda.max_memory_allocated(device) / MIB, 1),
                "reserved_mib": round(torch.cuda.max_memory_reserved(device) / MIB, 1)}
    return {"kind": "cpu max RSS", "mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}


def write(result: dict, output: Path) -> None:
    """Atomically (re)write the JSON file."""
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(output.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2), encoding="utf8")
    os.replace(tmp, output)


def run_sections(sections: Sequence[Tuple[str, Callable[[], dict]]], result: dict, output: Path) -> dict:
    """Run each (name, function): result[name] = its dict, or result["errors"][name] = the
    traceback's last lines; timings in result["seconds"]; the file rewritten after each."""
    for name, section in sections:
        start = time.perf_counter()
        try:
            result[name] = section()
        except Exception:  # noqa: BLE001 - one failed section must not lose the others' figures
            result.setdefault("errors", {})[name] = traceback.format_exc().splitlines()[-6:]
        result["seconds"][name] = round(time.perf_counter() - start, 2)
        write(result, output)
    return result


def check(output: Path, model: Optional[str], device_name: str, docs: Optional[int], steps: int, lr: float) -> dict:
    """All sections; returns the result, with "ok" (no errors and the loss fell)."""
    device = resolve_device(device_name)
    model_path = resolve_checkpoint(model or DEFAULT_CHECKPOINT)
    result: dict = {"environment": environment(device, model_path), "seconds": {}}
    run_sections([("agreement", lambda: agreement(model_path, device)),
                  ("throughput", lambda: throughput(model_path, device, docs)),
                  ("training", lambda: training(model_path, device, steps, lr)),
                  ("peak_memory", lambda: peak_memory(device))], result, output)
    result["ok"] = "errors" not in result and result.get("training", {}).get("loss_decreased", False)
    write(result, output)
    return result


def main(
    output: Path = typer.Option(Path("gpu_check.json"), help="The JSON file to write"),
    model: Optional[str] = typer.Option(None, help="Checkpoint name or folder (default: the shipped model)"),
    device: str = typer.Option(os.environ.get("DEVICE", "cuda"), help="cuda, cuda:N or cpu (default: $DEVICE, else cuda)"),
    docs: Optional[int] = typer.Option(None, help="Documents per throughput setting (default: 2000 on CUDA, 48 on CPU)"),
    steps: int = typer.Option(20, help="Training steps"),
    lr: float = typer.Option(1e-4, help="Training learning rate"),
):
    """Run the device check and write one JSON file."""
    result = check(output, model, device, docs, steps, lr)
    typer.echo(json.dumps({k: result.get(k) for k in ("ok", "seconds", "errors")}, indent=2))
    sys.exit(0 if result["ok"] else 1)


if __name__ == "__main__":
    run(main)
