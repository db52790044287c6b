"""A batch annotation job: inputs, pipeline, output and engine, all checked before anything
is written (`prepare_job`), then run shard by shard (`AnnotationJob.run`)."""
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from tqdm import tqdm

from ..training.annotations import span_record
from .formats import SUFFIXES
from .pipelines import PipelineSpec, too_long
from .readers import Item, Source, count_records, resolve_inputs
from .records import doc_annotations, output_record
from .rejects import Reject
from .shards import FileTarget, FolderTarget, ShardOutput, StdoutTarget, Target, file_format, iter_shards

PathLike = Union[str, Path]


@dataclass
class JobSummary:
    """docs annotated and records rejected over the whole job (resumed runs included),
    finished shards, the output files (none for stdout) and the rejects file."""

    docs: int
    rejects: int
    shards: int
    outputs: List[Path]
    rejects_file: Optional[Path]


class Engine:
    """Where the pipeline runs. `formats`: the output formats it can write."""

    name = ""
    formats: Tuple[str, ...] = ()

    def check_sources(self, sources: Sequence[Source]) -> None:
        """Raises ValueError for inputs this engine cannot read (none by default)."""

    def run(self, job: "AnnotationJob", progress: bool) -> None:
        """Writes every shard of the job that is not finished yet."""
        raise NotImplementedError


class LocalEngine(Engine):
    """This process: `nlp.pipe` over each shard, `batch_size` docs at a time (>= 1)."""

    name = "local"
    formats = ("jsonl", "spacy")

    def __init__(self, batch_size: int = 64):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size

    def run(self, job: "AnnotationJob", progress: bool) -> None:
        with progress_bar(count_records(job.sources), job.done_records(), progress) as bar:
            for index, file, records in iter_shards(job.sources, job.shard_size, job.text_field, job.nlp.vocab):
                if not job.target.is_finished(index):  # a finished shard is read past, not run
                    # the zone frees the strings the shard added to the vocab (every new
                    # number, name, typo), which would grow without bound over a long job
                    with job.target.shard(index, file) as out, job.nlp.memory_zone():
                        self._annotate(job, _counted(records, bar), out)

    def _annotate(self, job: "AnnotationJob", records: Iterable[Union[Item, Reject]], out: ShardOutput) -> None:
        items = ((item.text, item) for item in _without_rejects(records, job.nlp, out))
        for doc, item in job.nlp.pipe(items, as_tuples=True, batch_size=self.batch_size):
            doc.user_data.update(item.fields)  # passthrough fields travel with the doc (.spacy output)
            out.add(item.line, job.output_record(doc.text, item.fields, doc_annotations(doc)), doc)


def _without_rejects(records: Iterable[Union[Item, Reject]], nlp: Language, out: ShardOutput) -> Iterator[Item]:
    """The items nlp can take; the rest go to out.reject."""
    for record in records:
        reason = too_long(nlp, record.text) if isinstance(record, Item) else None
        if reason:
            record = Reject(record.file, record.line, reason)
        if isinstance(record, Reject):
            out.reject(record)
        else:
            yield record


def _counted(records: Iterable, bar: tqdm) -> Iterator:
    for record in records:
        bar.update(1)
        yield record


def progress_bar(total: Optional[int], initial: int, enabled: bool) -> tqdm:
    """Progress on stderr in docs (records) with docs/s and, when the total is known, ETA."""
    return tqdm(total=total, initial=initial, unit="doc", desc="annotate", file=sys.stderr,
                disable=not enabled, dynamic_ncols=True)


@dataclass
class AnnotationJob:
    sources: List[Source]
    pipeline: PipelineSpec
    nlp: Language
    target: Target
    text_field: str
    shard_size: int
    engine: Engine
    spans: bool = False  # write the span format of annotation tools (training.annotations.span_record)

    def output_record(self, text: str, fields: dict, annotations: dict) -> dict:
        """What the job writes for one document: the input record's fields with the text and
        annotations, or with `spans` the span format that `adapt` reads back."""
        if self.spans:
            return span_record(text, fields, annotations)
        return output_record(self.text_field, text, fields, annotations)

    def done_records(self) -> int:
        """Input records (docs and rejects) of the shards finished before this run."""
        return sum(e.docs + e.rejects for e in self.target.entries())

    def run(self, progress: bool = True) -> JobSummary:
        """Annotates every shard that is not finished, then completes the outputs.
        Raises RejectedRecord (strict) naming file:line; after any interruption, prepare
        the same job with resume=True to finish it."""
        self.engine.run(self, progress)
        outputs, rejects = self.target.finish()
        entries = self.target.entries()
        return JobSummary(sum(e.docs for e in entries), sum(e.rejects for e in entries), len(entries),
                          outputs, rejects)


def prepare_job(
    inputs: Sequence[str],
    pipeline: PipelineSpec,
    *,
    output: Optional[PathLike] = None,
    output_dir: Optional[PathLike] = None,
    formats: Sequence[str] = (),
    text_field: str = "text",
    shard_size: int = 10_000,
    resume: bool = False,
    strict: bool = False,
    engine: Optional[Engine] = None,
    spans: bool = False,
) -> AnnotationJob:
    """A job that annotates `inputs` (files, folders, glob patterns or "-" for stdin, see
    readers.resolve_inputs) with `pipeline` and writes one JSONL line per document.

    output: one file (.jsonl, or .spacy for a DocBin), replaced only when the job is
    complete; output_dir: a folder of shards (`formats`: jsonl, spacy, parquet as the
    engine allows; default jsonl) with manifest.json; neither: JSONL on stdout.
    text_field: the text of a JSONL record, and the key of the text in the output.
    shard_size: input records (lines) per shard, the unit that is written and resumed.
    resume: finish the job found at the output (it must be the same inputs and options).
    strict: the first bad record is an error (RejectedRecord), not a line in the rejects
    file. engine: LocalEngine() by default, or distributed.RayEngine. spans: records in the
    span format of annotation tools ({text, spans: [{start, end, label, score}], cats, ...};
    training.annotations), always with the text under "text", to correct and train on.

    Raises ValueError (OSError for a pipeline or checkpoint not found) for options that
    conflict or are out of range, before any output is touched; the output folder and
    its manifest are created last."""
    engine = engine or LocalEngine()
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1, got {shard_size}")
    if not text_field:
        raise ValueError("text_field must not be empty")
    sources = resolve_inputs(inputs)
    engine.check_sources(sources)
    formats = _output_formats(output, output_dir, formats, engine)
    if resume and sources[0].path is None:
        raise ValueError("--resume cannot read stdin again: give the input as a file")
    nlp = pipeline.load()
    job = {"inputs": [_describe(s) for s in sources], "text_field": text_field, "shard_size": shard_size,
           "formats": formats, "pipeline": pipeline.as_dict(), **({"records": "spans"} if spans else {})}
    target = _open_target(output, output_dir, formats, job, resume, strict)
    return AnnotationJob(sources, pipeline, nlp, target, text_field, shard_size, engine, spans)


def _output_formats(output, output_dir, formats: Sequence[str], engine: Engine) -> Tuple[str, ...]:
    if output is not None and output_dir is not None:
        raise ValueError("give --output or --output-dir, not both")
    if output_dir is None and formats:
        raise ValueError("--format is for --output-dir: an --output file has the format of its suffix "
                         "(.spacy, else JSONL)")
    chosen = (file_format(Path(output)),) if output is not None else tuple(dict.fromkeys(formats or ["jsonl"]))
    for fmt in chosen:
        if fmt not in SUFFIXES:
            raise ValueError(f"--format {fmt!r}: use one of {', '.join(SUFFIXES)}")
        if fmt not in engine.formats:
            raise ValueError(f"the {engine.name} engine writes {', '.join(engine.formats)}, not {fmt}")
    return chosen


def _describe(source: Source) -> dict:
    """What identifies an input in the manifest: a changed file cannot be resumed."""
    if source.path is None:
        return {"file": source.name}
    stat = source.path.stat()
    return {"file": source.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _open_target(output, output_dir, formats, job: dict, resume: bool, strict: bool) -> Target:
    if output_dir is not None:
        return FolderTarget(Path(output_dir), formats, job, resume, strict)
    if output is not None:
        if Path(output).is_dir():
            raise ValueError(f"--output {output} is a folder: give a file, or use --output-dir")
        return FileTarget(Path(output), job, resume, strict)
    if resume:
        raise ValueError("--resume needs --output or --output-dir: stdout cannot be resumed")
    return StdoutTarget(strict)
