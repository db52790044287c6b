"""`python -m spacy_cortex annotate`: zero-shot annotation of text, JSONL and DocBin files;
`python -m spacy_cortex adapt ner|textcat`: few-shot adaptation (training/fewshot.py).

One JSON line per input document, in input order; a bad record goes to the rejects file
instead, with file:line and the reason. The job is spacy_cortex.batch (in this process) or
spacy_cortex.distributed (Ray); this module only maps options onto it.
"""
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Optional

import typer

from .batch import Engine, JobSummary, LocalEngine, PipelineSpec, RejectedRecord, prepare_job
from .core.decoding import SPAN_EXTEND_THRESHOLD, SPAN_THRESHOLD, SPAN_WINDOW
from .core.checkpoints import DEFAULT_CHECKPOINT
from .relation_rules import REL_NO_ANSWER_THRESHOLD
from .commands import typer_app
from .training.fewshot import app as adapt_app

app = typer_app("spacy_cortex command line")
app.add_typer(adapt_app, name="adapt")

RAY_DEFAULTS = {"address": None, "actors": 1, "num_cpus": 1.0, "num_gpus": 0.0}  # Ray options unset


@contextmanager
def usage_errors() -> Iterator[None]:
    """Option values that are wrong (ValueError) or name nothing readable (OSError) are
    usage errors: exit code 2 with the message, no traceback. Only the checks before a
    job starts run inside."""
    try:
        yield
    except (ValueError, OSError) as err:
        raise typer.BadParameter(str(err)) from None


@app.command()
def annotate(
    inputs: List[str] = typer.Argument(..., help="Text files (one doc per line), .jsonl, .spacy, folders, glob patterns, or - (stdin)"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="One output file: .jsonl, or .spacy (DocBin); default JSONL on stdout"),
    output_dir: Optional[Path] = typer.Option(None, help="A folder of shards with manifest.json and rejects.jsonl"),
    formats: List[str] = typer.Option([], "--format", help="Shard format in --output-dir (repeatable): jsonl (default), spacy; parquet with --engine ray"),
    shard_size: int = typer.Option(10_000, min=1, help="Input lines per shard: the unit written at once and resumed"),
    resume: bool = typer.Option(False, "--resume", help="Finish the interrupted job at --output / --output-dir"),
    strict: bool = typer.Option(False, "--strict", help="Stop at the first bad record instead of writing it to the rejects file"),
    text_field: str = typer.Option("text", help="The text field of .jsonl records (other fields are copied to the output)"),
    spans: bool = typer.Option(False, "--spans", help="Write the span format of annotation tools ({text, spans: [{start, end, label, score}], cats}): pre-annotations to correct and train on with `adapt`"),
    pipeline: Optional[str] = typer.Option(None, help="Run a saved pipeline (folder or package name) instead of --ner/--cat/--question"),
    ner: List[str] = typer.Option([], "--ner", help="Entity label, or LABEL=prompt (repeatable)"),
    cat: List[str] = typer.Option([], "--cat", help="Text category label, or LABEL=prompt (repeatable)"),
    question: List[str] = typer.Option([], "--question", "-q", help="Question (repeatable)"),
    rel: List[str] = typer.Option([], "--rel", help="Relation between --ner entities: LABEL, LABEL=prompt with {head}, or LABEL:HEAD>TAIL[=prompt] with entity types (several joined by ','; a side left empty: any) (repeatable)"),
    rel_no_answer_threshold: float = typer.Option(REL_NO_ANSWER_THRESHOLD, help="--rel: a (head, relation) prompt gives tails only where the model's answer probability at [CLS] reaches this (0: off)"),
    multi_label: bool = typer.Option(False, help="Categories are not mutually exclusive"),
    none_label: Optional[str] = typer.Option(None, help="Add this category for 'none of these' (one --cat alone is a yes/no question)"),
    threshold: float = typer.Option(SPAN_THRESHOLD, help="NER: a span needs a word at this probability"),
    extend_threshold: float = typer.Option(SPAN_EXTEND_THRESHOLD, help="NER: a span extends over its neighbouring words down to this probability (at or above --threshold: off)"),
    ner_window: int = typer.Option(SPAN_WINDOW, min=16, help="NER: the most text sub-tokens read at once (longer texts in overlapping windows)"),
    prefer_specific: bool = typer.Option(True, help="A span found by several labels gets the most specific"),
    model: str = typer.Option(DEFAULT_CHECKPOINT, help="Registered checkpoint name or folder"),
    precision: str = typer.Option("auto", help="auto (GPU: bf16 or fp16; CPU: bf16 with native bf16, else fp32), fp32, bf16 or fp16 (GPU)"),
    device: str = typer.Option("auto", help="auto (CPU unless spaCy was told to use a GPU), cpu, cuda or cuda:N; with --engine ray and --num-gpus, each actor's GPU"),
    gpu_id: int = typer.Option(-1, "--gpu-id", "-g", help="GPU to run on, as in spaCy's commands: N is --device cuda:N; -1 (default): --device decides"),
    batch_size: int = typer.Option(64, min=1, help="Docs per nlp.pipe batch"),
    engine: str = typer.Option("local", help="local (this process) or ray"),
    address: Optional[str] = typer.Option(RAY_DEFAULTS["address"], help="--engine ray: the cluster (default: a local one)"),
    actors: int = typer.Option(RAY_DEFAULTS["actors"], min=1, help="--engine ray: actors, each loading the pipeline once"),
    num_cpus: float = typer.Option(RAY_DEFAULTS["num_cpus"], help="--engine ray: CPUs per actor (its torch threads)"),
    num_gpus: float = typer.Option(RAY_DEFAULTS["num_gpus"], help="--engine ray: GPUs reserved per actor"),
):
    """Annotate every document with entities, relations, categories and answers."""
    with usage_errors():
        device = gpu_device(gpu_id, device)
        spec = PipelineSpec(pipeline, model, precision, tuple(ner), tuple(cat), tuple(question), multi_label,
                            none_label, threshold, extend_threshold, ner_window, prefer_specific, device,
                            rel=tuple(rel), rel_no_answer_threshold=rel_no_answer_threshold)
        runner = make_engine(engine, batch_size, address=address, actors=actors, num_cpus=num_cpus,
                             num_gpus=num_gpus)
        job = prepare_job(inputs, spec, output=output, output_dir=output_dir, formats=formats,
                          text_field=text_field, shard_size=shard_size, resume=resume, strict=strict,
                          engine=runner, spans=spans)
    try:
        summary = job.run(progress=True)
    except RejectedRecord as err:
        typer.echo(f"Error: {err} (--strict)", err=True)
        raise typer.Exit(1)
    except KeyboardInterrupt:
        kept = "; the finished shards are kept: add --resume to finish the job" if output or output_dir else ""
        typer.echo(f"Interrupted{kept}", err=True)
        raise typer.Exit(130)
    typer.echo(summary_line(summary), err=True)


def gpu_device(gpu_id: int, device: str) -> str:
    """The --device that --gpu-id N names (cuda:N; -1: --device as given). Raises
    ValueError for an id below -1 or beside another --device, DeviceError (a ValueError)
    where that GPU is not there."""
    if gpu_id == -1:
        return device
    if gpu_id < -1:
        raise ValueError(f"--gpu-id {gpu_id}: use a GPU number (0, 1, ...) or -1 for none")
    if device != "auto":
        raise ValueError(f"--gpu-id {gpu_id} and --device {device}: give one of them")
    from .core.device import DeviceError, resolve_device  # torch: loaded only when a GPU is asked for here

    try:
        return str(resolve_device(f"cuda:{gpu_id}"))
    except DeviceError as err:
        raise DeviceError(f"--gpu-id {gpu_id}: {err}") from None


def make_engine(name: str, batch_size: int, **ray_options) -> Engine:
    """The engine named by --engine. Raises ValueError for an unknown name, Ray options
    without --engine ray, or Ray not installed."""
    if name == "local":
        given = [f"--{key.replace('_', '-')}" for key, value in ray_options.items() if value != RAY_DEFAULTS[key]]
        if given:
            raise ValueError(f"{', '.join(given)}: only with --engine ray")
        return LocalEngine(batch_size)
    if name == "ray":
        try:
            from .distributed import RayEngine
        except ImportError as err:
            raise ValueError(f"--engine ray needs Ray: pip install 'spacy-cortex[ray]' ({err})") from None
        return RayEngine(batch_size=batch_size, **ray_options)
    raise ValueError(f"--engine {name!r}: use local or ray")


def summary_line(summary: JobSummary) -> str:
    line = f"Annotated {plural(summary.docs, 'document')}"
    if summary.rejects:
        line += f"; {plural(summary.rejects, 'bad record')} rejected" + (f" (see {summary.rejects_file})" if summary.rejects_file else "")
    return line


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


@app.command()
def info():
    """Where the default checkpoint is, whether it is installed, and the licence of its weights."""
    from .core.checkpoints import resolve_checkpoint
    from .pipeline import checkpoint_source

    path = resolve_checkpoint(DEFAULT_CHECKPOINT)
    typer.echo(f"{DEFAULT_CHECKPOINT}: {path} ({'present' if (path / 'model.safetensors').exists() else 'missing'})")
    source = checkpoint_source(path)
    licence = f"{source['license']} (model card: {source['url']})" if source else "not stated by the checkpoint"
    typer.echo(f"Licence of the weights: {licence}. The spacy-cortex code is MIT.")
