"""`python -m spacy_cortex annotate`: zero-shot annotation of a text or JSONL file.

Every input line gives exactly one output line (in order), empty lines included, so a
batch job never loses a document.
"""
import json
import sys
from pathlib import Path
from typing import Iterator, List, Optional

import spacy
import typer
from tqdm import tqdm

from .decoding import SPAN_THRESHOLD
from .registry import DEFAULT_CHECKPOINT
from .templates import label_prompts

app = typer.Typer(add_completion=False, help="spacy_cortex command line")


def read_texts(path: Path) -> Iterator[str]:
    """Plain text: one document per line. JSONL (.jsonl): objects with a "text" field."""
    with (sys.stdin if str(path) == "-" else path.open(encoding="utf8")) as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if path.suffix != ".jsonl":
                yield line
                continue
            try:
                yield json.loads(line)["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as err:
                raise typer.BadParameter(f"{path}:{number}: not a JSON object with a 'text' field ({err})")


def parse_labels(values: List[str]) -> dict:
    """'LABEL' or 'LABEL=prompt' -> {label: prompt or None}; an empty or repeated label is
    a usage error naming the option value."""
    labels = {}
    for value in values:
        label, _, prompt = value.partition("=")
        if not label.strip():
            raise typer.BadParameter(f"--ner {value!r}: the label before '=' is empty")
        if label.strip() in labels:
            raise typer.BadParameter(f"--ner {value!r}: label {label.strip()!r} is given twice")
        labels[label.strip()] = prompt.strip() or None
    return labels


def build_pipeline(model: str, precision: str, ner: List[str], cats: List[str],
                   questions: List[str], exclusive: bool, threshold: float, prefer_specific: bool = True,
                   none_label: Optional[str] = None):
    """The pipeline the options describe; a bad option value is a usage error naming it."""
    try:
        return _build_pipeline(model, precision, ner, cats, questions, exclusive, threshold,
                               prefer_specific, none_label)
    except ValueError as err:  # labels, prompts, thresholds, checkpoint (CheckpointError)
        raise typer.BadParameter(str(err)) from None


def _build_pipeline(model, precision, ner, cats, questions, exclusive, threshold, prefer_specific, none_label):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": model, "precision": precision}})
    if ner:
        labels = parse_labels(ner)
        # labels given without a prompt get the NER template
        config_labels = {label: prompt or label_prompts(label, None, "ner")[label]
                         for label, prompt in labels.items()}
        nlp.add_pipe("cortex_ner", config={"labels": config_labels, "threshold": threshold,
                                           "prefer_specific": prefer_specific})
    if cats:
        nlp.add_pipe("cortex_textcat", config={"labels": cats, "exclusive": exclusive, "none_label": none_label})
    if questions:
        nlp.add_pipe("cortex_qa", config={"questions": questions})
    if len(nlp.pipe_names) == 1:
        raise typer.BadParameter("Nothing to do: give --ner, --cat and/or --question")
    return nlp


def doc_record(doc) -> dict:
    record = {"text": doc.text}
    record["ents"] = [
        {"text": e.text, "label": e.label_, "start_char": e.start_char,
         "end_char": e.end_char, "score": e._.cortex_score}
        for e in doc.ents
    ]
    if doc.cats:
        record["cats"] = doc.cats
    if doc.has_extension("cortex_answers") and doc._.cortex_answers is not None:
        record["answers"] = doc._.cortex_answers
    return record


@app.command()
def annotate(
    input: Path = typer.Argument(..., help="Text file (one doc per line), .jsonl with 'text', or -"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSONL output (default stdout)"),
    ner: List[str] = typer.Option([], "--ner", help="Entity label, or LABEL=prompt (repeatable)"),
    cat: List[str] = typer.Option([], "--cat", help="Text category label (repeatable)"),
    question: List[str] = typer.Option([], "--question", "-q", help="Question (repeatable)"),
    multi_label: bool = typer.Option(False, help="Categories are not mutually exclusive"),
    none_label: Optional[str] = typer.Option(None, help="Add this category for 'none of these' (one --cat alone is a yes/no question)"),
    threshold: float = typer.Option(SPAN_THRESHOLD, help="NER span threshold"),
    prefer_specific: bool = typer.Option(True, help="A span found by several labels gets the most specific"),
    model: str = typer.Option(DEFAULT_CHECKPOINT, help="Registered checkpoint name or folder"),
    precision: str = typer.Option("auto", help="auto (bf16 on CPUs with native bf16), fp32 or bf16"),
    batch_size: int = typer.Option(64),
):
    """Annotate every document with entities, categories and answers as JSONL."""
    nlp = build_pipeline(model, precision, ner, cat, question, not multi_label, threshold, prefer_specific, none_label)
    out = output.open("w", encoding="utf8") if output else sys.stdout
    written = 0
    try:
        docs = nlp.pipe(read_texts(input), batch_size=batch_size)
        for doc in tqdm(docs, desc="annotate", unit="doc", disable=output is None):
            out.write(json.dumps(doc_record(doc), ensure_ascii=False) + "\n")
            written += 1
    finally:
        if output:
            out.close()
    typer.echo(f"Annotated {written} documents", err=True)


@app.command()
def info():
    """Where the default checkpoint is and whether it is installed."""
    from .registry import resolve_checkpoint

    path = resolve_checkpoint(DEFAULT_CHECKPOINT)
    typer.echo(f"{DEFAULT_CHECKPOINT}: {path} ({'present' if (path / 'model.safetensors').exists() else 'missing'})")
