"""Issue 14's user-prompt protocol (4 user prompts, 200 CoNLL-2003 test sentences,
nlp.pipe(batch_size=64), bf16) under variants of the encoder pass, timed side by side in
one process (rounds alternate the variants, the fastest pass of each counts), each
checked to give the same entities as the shipped setting:

- attention: SDPA (transformers' default) vs eager; SDPA with the math backend only;
- the token budget per pass (max_batch_tokens);
- the bf16 cast copy run without autocast (LayerNorm and softmax in bf16 too).

    python benchmarks/encoder_variants.py ../shared/corpus/raw [--model DIR] [--rounds 3]
"""
import contextlib
import time
from pathlib import Path
from typing import Callable, Dict, List

import torch
import typer
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import AutoModelForTokenClassification

from spacy_cortex.evaluation.bench_jobs import read_conll
from spacy_cortex.evaluation.bench_measure import cortex_pipeline
from spacy_cortex.core.model import CortexModel

DEFAULT_MODEL = str(Path(__file__).resolve().parents[1] / "spacy_cortex" / "models" / "cortex-mini-en")


def entities(nlp, texts: List[str]) -> List[list]:
    return [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in nlp.pipe(texts, batch_size=64)]


def eager_copy(nlp, model_dir: str) -> Callable[[], contextlib.AbstractContextManager]:
    """A context that runs the passes on a bf16 copy loaded with eager attention."""
    model = nlp.get_pipe("cortex").model
    model.inference_model  # noqa: B018 - builds the cast copy and its version key
    eager = AutoModelForTokenClassification.from_pretrained(
        model_dir, attn_implementation="eager", local_files_only=True).to(torch.bfloat16).eval()

    @contextlib.contextmanager
    def swap():
        saved = model._cast_copy
        model._cast_copy = (saved[0], eager)
        try:
            yield
        finally:
            model._cast_copy = saved
    return swap


@contextlib.contextmanager
def without_autocast():
    saved = CortexModel.autocast
    CortexModel.autocast = lambda self: contextlib.nullcontext()
    try:
        yield
    finally:
        CortexModel.autocast = saved


def main(raw_dir: Path, model: str = typer.Option(DEFAULT_MODEL), rounds: int = typer.Option(3),
         docs: int = typer.Option(200)):
    texts = [t.text for t in read_conll(raw_dir, docs)]
    user = {"ner_user": 4}
    shipped = cortex_pipeline(model, user, "bf16")[0]
    variants: Dict[str, tuple] = {"shipped (SDPA, 2048 tokens, autocast)": (shipped, contextlib.nullcontext)}
    variants["eager attention"] = (shipped, eager_copy(shipped, model))
    variants["SDPA math backend"] = (shipped, lambda: sdpa_kernel(SDPBackend.MATH))
    variants["no autocast on the bf16 copy"] = (shipped, without_autocast)
    for tokens in (1024, 4096, 16384):
        variants[f"{tokens} tokens per pass"] = (cortex_pipeline(model, user, "bf16", batch_tokens=tokens)[0],
                                                 contextlib.nullcontext)
    reference = entities(shipped, texts)
    best = {name: float("inf") for name in variants}
    same = {}
    for _ in range(rounds):
        for name, (nlp, context) in variants.items():
            with context():
                start = time.perf_counter()
                found = entities(nlp, texts)
                best[name] = min(best[name], time.perf_counter() - start)
            same[name] = found == reference
    base = best["shipped (SDPA, 2048 tokens, autocast)"]
    print(f"{torch.get_num_threads()} torch threads, {len(texts)} docs x 4 prompts, fastest of {rounds}")
    print(f"{'variant':40} {'s':>7} {'x shipped':>10}  same entities")
    for name, seconds in best.items():
        print(f"{name:40} {seconds:7.3f} {base / seconds:10.2f}  {same[name]}")


if __name__ == "__main__":
    typer.run(main)
