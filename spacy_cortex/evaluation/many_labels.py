"""Many-label classification with and without cortex_textcat's label shortlist, side by
side in one process on the same docs: accuracy, docs/s, and the recall of the first stage.

    python -m spacy_cortex.evaluation.many_labels RAW_DIR [--docs 500] [--k 3,5,10,20]

Sets: banking77 test (77 intents), DBpedia-14 and AG News (4) test, each a seeded random
sample of --docs texts; labels and prompts as `evaluate` (topics) and the textcat
template with the labels as words (intents). The full run asks every label; shortlist k
asks the k labels closest to the text (one embedding pass of the text alone).
"""
import json
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import spacy
import typer
from wasabi import msg

from ..core.model import EMBEDDING_LAYER
from ..core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from ..corpus.registry import read_eval
from ..templates import label_words, task_template
from .evaluator import eval_labels
from .rows import ag_news_rows, dbpedia_rows
from ..commands import typer_app

Rows = List[Tuple[str, str]]


def banking77_rows(raw: Path) -> Rows:
    return [(r["text"], r["category"]) for r in read_eval(raw, "banking77", "test")]


def label_set(name: str, raw: Path) -> Tuple[Rows, Dict[str, str]]:
    """(text, gold label) rows and {label: label as words} of one set."""
    if name == "banking77":
        labels = read_eval(raw, "banking77", "categories")
        return banking77_rows(raw), {label: label_words(label) for label in labels}
    load = {"dbpedia": dbpedia_rows, "ag_news": ag_news_rows}[name]
    return load(raw), dict(eval_labels()["topics"][name])


def textcat(checkpoint: str, words: Dict[str, str], shortlist: int, precision: str):
    template = task_template("textcat")
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": checkpoint, "precision": precision}})
    nlp.add_pipe("cortex_textcat", config={"labels": {label: template.format(label=w) for label, w in words.items()},
                                           "exclusive": True, "shortlist": shortlist})
    return nlp


def timed_accuracy(nlp, rows: Rows, batch_size: int) -> Tuple[float, float]:
    """(accuracy in %, docs/s) of one pass over rows, after a warm-up on the first batch."""
    texts = [t for t, _ in rows]
    list(nlp.pipe(texts[:batch_size], batch_size=batch_size))
    start = time.perf_counter()
    docs = list(nlp.pipe(texts, batch_size=batch_size))
    seconds = time.perf_counter() - start
    correct = [max(sorted(d.cats), key=d.cats.get) == gold for d, (_, gold) in zip(docs, rows)]
    return 100 * float(np.mean(correct)), len(rows) / seconds


def first_stage_recall(nlp, rows: Rows, ks: Sequence[int], layer: int = EMBEDDING_LAYER) -> Dict[int, float]:
    """% of texts whose gold label is among the k labels the shortlist ranks first, with
    embeddings from hidden layer `layer` (the shortlist's own: EMBEDDING_LAYER)."""
    model, task = nlp.get_pipe("cortex").model, nlp.get_pipe("cortex_textcat").task
    labels = sorted(task.label_prompts)
    words = [label_words(label) for label in labels]
    similarity = model.embed([t for t, _ in rows], layer) @ model.embed(words, layer).T
    gold = np.array([labels.index(g) for _, g in rows])
    rank = (similarity > similarity[np.arange(len(rows)), gold][:, None]).sum(axis=1)
    return {k: 100 * float(np.mean(rank < k)) for k in ks}


def sample(name: str, raw: Path, docs: int, seed: int = 0) -> Tuple[Rows, Dict[str, str]]:
    rows, words = label_set(name, raw)
    return [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))[:docs]], words


def measure(name: str, raw: Path, checkpoint: str, docs: int, ks: Sequence[int], precision: str,
            batch_size: int) -> dict:
    rows, words = sample(name, raw, docs)
    full = textcat(checkpoint, words, 0, precision)
    accuracy, speed = timed_accuracy(full, rows, batch_size)
    out = {"set": name, "labels": len(words), "docs": len(rows), "full": {"accuracy": accuracy, "docs_per_s": speed},
           "shortlist": {}}
    usable = [k for k in ks if k < len(words)]
    recall = first_stage_recall(textcat(checkpoint, words, 1, precision), rows, usable) if usable else {}
    for k in usable:
        acc, docs_per_s = timed_accuracy(textcat(checkpoint, words, k, precision), rows, batch_size)
        out["shortlist"][k] = {"accuracy": acc, "docs_per_s": docs_per_s, "recall": recall[k],
                               "accuracy_delta": acc - accuracy, "speedup": docs_per_s / speed}
    return out


def report(results: List[dict]) -> None:
    table = []
    for r in results:
        table.append([r["set"], r["labels"], r["docs"], "all", "", f"{r['full']['accuracy']:.1f}", "",
                      f"{r['full']['docs_per_s']:.1f}", "1.00"])
        for k, s in r["shortlist"].items():
            table.append(["", "", "", k, f"{s['recall']:.1f}", f"{s['accuracy']:.1f}", f"{s['accuracy_delta']:+.1f}",
                          f"{s['docs_per_s']:.1f}", f"{s['speedup']:.2f}"])
    msg.table(table, header=["set", "labels", "docs", "k", "recall@k", "accuracy", "d acc", "docs/s", "x full"],
              divider=True, aligns=["l", "r", "r", "r", "r", "r", "r", "r", "r"])


app = typer_app()


@app.command()
def main(
    raw_dir: Path = typer.Argument(..., help="Folder with banking77/, dbpedia14_subset/, ag_news/"),
    model: Optional[str] = typer.Option(None, help="Checkpoint (default: the shipped model)"),
    docs: int = typer.Option(500, help="Texts per set (a seeded random sample)"),
    k: str = typer.Option("3,5,10,20", help="Shortlist sizes, comma-separated"),
    sets: str = typer.Option("banking77,dbpedia,ag_news", help="Sets, comma-separated"),
    precision: str = typer.Option("auto", help="auto, fp32 or bf16"),
    batch_size: int = typer.Option(64, help="Docs per nlp.pipe batch"),
    output: Optional[Path] = typer.Option(None, help="JSON results"),
    layers: str = typer.Option("", help="Only the first stage's recall@k per hidden layer, e.g. -1,-4,-7"),
):
    """Accuracy and docs/s of the full label set against shortlists of k labels."""
    try:
        ks = [int(x) for x in k.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"{k!r}: comma-separated whole numbers, e.g. 3,5,10", param_hint="--k") from None
    if not ks or min(ks) < 1:
        raise typer.BadParameter(f"{k!r}: shortlist sizes are at least 1", param_hint="--k")
    checkpoint = str(resolve_checkpoint(model or DEFAULT_CHECKPOINT))
    if layers:
        for name in sets.split(","):
            rows, words = sample(name, raw_dir, docs)
            nlp = textcat(checkpoint, words, 1, precision)
            for layer in (int(x) for x in layers.split(",")):
                recall = first_stage_recall(nlp, rows, [x for x in ks if x < len(words)], layer)
                msg.text(f"{name} layer {layer}: " + ", ".join(f"R@{x} {r:.1f}" for x, r in recall.items()))
        return
    results = [measure(name, raw_dir, checkpoint, docs, ks, precision, batch_size) for name in sets.split(",")]
    report(results)
    if output:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    app()
