"""Batch jobs on a Ray cluster (Ray Data), one machine or many.

The shards still to do become a Ray Dataset: one row per shard plan, `flat_map` reads each
shard's lines on a worker (the same reader and line rules as the local engine, so rejects
are the same), `map_batches` annotates them in a pool of `CortexAnnotator` actors (each
loads the pipeline once), and this process, the driver, gathers the rows of each shard and
writes it with the job's target: atomically, then listed in the manifest. A shard is
written once all its lines are back, whatever order, retries or repeats the rows come in
(an actor that dies is restarted and its batch retried), so every document is output
exactly once and a rerun with resume skips the finished shards.

The inputs must be readable at the same path on every node (a shared file system); the
outputs are written by the driver.
"""
import json
import logging
from contextlib import contextmanager
from dataclasses import asdict, replace
from itertools import islice
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Type

import pyarrow as pa
import ray
import ray.data
import torch

from ..batch.job import AnnotationJob, Engine, progress_bar
from ..batch.pipelines import PipelineSpec, too_long
from ..batch.readers import Source, read_source
from ..batch.records import ANNOTATIONS, doc_annotations
from ..batch.rejects import Reject
from ..batch.shards import ShardPlan, plan_shards


class CortexAnnotator:
    """Ray Data actor: loads the pipeline once, then annotates batches of rows
    {shard, line, text, fields, reject} and adds the columns ents, cats and answers
    (JSON-encoded, so that every block has the same schema; "null" for rejected rows and
    for what the pipeline does not produce); a text over the pipeline's max_length becomes
    a rejected row. torch uses `threads` threads (the actor's CPUs); no n_process: the
    actors are the processes."""

    def __init__(self, pipeline: PipelineSpec, threads: int, batch_size: int):
        torch.set_num_threads(threads)
        self.nlp = pipeline.load()
        self.batch_size = batch_size

    def __call__(self, batch: pa.Table) -> pa.Table:
        columns = batch.to_pydict()
        columns["reject"] = [reason or too_long(self.nlp, text) or ""
                             for text, reason in zip(columns["text"], columns["reject"])]
        todo = [i for i, reason in enumerate(columns["reject"]) if not reason]
        notes = {key: ["null"] * batch.num_rows for key in ANNOTATIONS}
        with self.nlp.memory_zone():  # frees the strings the batch added to the vocab
            docs = self.nlp.pipe((columns["text"][i] for i in todo), batch_size=self.batch_size)
            for i, doc in zip(todo, docs):
                for key, value in doc_annotations(doc).items():
                    notes[key][i] = json.dumps(value, ensure_ascii=False)
        return pa.table({**columns, **notes})


def read_shard_rows(plan: dict, text_field: str) -> List[dict]:
    """The rows of one shard plan (see ShardPlan), read on a worker."""
    records = read_source(Source(Path(plan["path"]), plan["kind"]), text_field,
                          offset=plan["offset"], first_line=plan["first_line"])
    return [_row(plan["index"], record) for record in islice(records, plan["lines"])]


def _row(shard: int, record) -> dict:
    if isinstance(record, Reject):
        return {"shard": shard, "line": record.line, "text": "", "fields": "{}", "reject": record.reason}
    return {"shard": shard, "line": record.line, "text": record.text,
            "fields": json.dumps(record.fields, ensure_ascii=False), "reject": ""}


class RayEngine(Engine):
    """A pool of `actors` CortexAnnotator actors with `num_cpus` CPUs (torch threads) and
    `num_gpus` GPUs reserved each, `batch_size` rows per batch; on the Ray cluster at
    `address` (e.g. "auto", "ray://head:10001"), or a local one started for the job, or
    the one this process is connected to already. `annotator`: the actor class (a
    subclass of CortexAnnotator). Raises ValueError for counts out of range."""

    name = "ray"
    formats = ("jsonl", "parquet")

    def __init__(self, actors: int = 1, num_cpus: float = 1.0, num_gpus: float = 0.0, batch_size: int = 64,
                 address: Optional[str] = None, annotator: Type[CortexAnnotator] = CortexAnnotator):
        for name, value, least in (("actors", actors, 1), ("batch_size", batch_size, 1)):
            if value < least:
                raise ValueError(f"{name} must be at least {least}, got {value}")
        if num_cpus <= 0 or num_gpus < 0:
            raise ValueError(f"num_cpus must be > 0 and num_gpus >= 0, got {num_cpus} and {num_gpus}")
        self.actors, self.num_cpus, self.num_gpus = actors, num_cpus, num_gpus
        self.batch_size, self.address, self.annotator = batch_size, address, annotator

    def actor_pipeline(self, spec: PipelineSpec) -> PipelineSpec:
        """The spec an actor loads: local folders as absolute paths, and an actor with GPUs
        reserved runs the model on the one Ray gives it (Ray sets CUDA_VISIBLE_DEVICES,
        so "cuda" is that GPU) unless a device was named."""
        spec = spec.with_absolute_paths()
        return replace(spec, device="cuda") if self.num_gpus > 0 and spec.device == "auto" else spec

    def check_sources(self, sources: Sequence[Source]) -> None:
        for source in sources:
            if source.path is None or source.kind == "spacy":
                raise ValueError(f"--engine ray reads text and .jsonl files, not {source.name} "
                                 "(use the local engine)")

    def run(self, job: AnnotationJob, progress: bool) -> None:
        plans = plan_shards(job.sources, job.shard_size)
        todo = [p for p in plans if not job.target.is_finished(p.index)]
        with progress_bar(sum(p.lines for p in plans), job.done_records(), progress) as bar:
            if todo:
                with ray_session(self.address):
                    self._write_shards(self.dataset(todo, job), todo, job, bar)

    def dataset(self, plans: Sequence[ShardPlan], job: AnnotationJob) -> "ray.data.Dataset":
        """The annotated rows of these shards, computed as they are iterated."""
        rows = ray.data.from_items([asdict(p) for p in plans], override_num_blocks=len(plans))
        # reading is light next to annotating: it reserves no CPU, else actors holding
        # every CPU of the cluster would wait forever for rows that cannot be read
        rows = rows.flat_map(read_shard_rows, fn_kwargs={"text_field": job.text_field}, num_cpus=0)
        return rows.map_batches(
            self.annotator, batch_size=self.batch_size, batch_format="pyarrow",
            fn_constructor_kwargs={"pipeline": self.actor_pipeline(job.pipeline),
                                   "threads": max(1, int(self.num_cpus)), "batch_size": self.batch_size},
            compute=ray.data.ActorPoolStrategy(size=self.actors), num_cpus=self.num_cpus, num_gpus=self.num_gpus)

    def _write_shards(self, dataset: "ray.data.Dataset", plans: Sequence[ShardPlan], job: AnnotationJob, bar) -> None:
        pending: Dict[int, tuple] = {p.index: (p, {}) for p in plans}
        for batch in dataset.iter_batches(batch_size=None, batch_format="pyarrow"):
            for row in batch.to_pylist():
                if row["shard"] not in pending:  # a repeat of a shard already written
                    continue
                plan, rows = pending[row["shard"]]
                if row["line"] not in rows:
                    bar.update(1)
                rows[row["line"]] = row
                if len(rows) == plan.lines:
                    _write_shard(job, plan, rows)
                    del pending[plan.index]
        if pending:
            raise RuntimeError(f"Ray returned shards {sorted(pending)} incomplete; rerun with resume")


def _write_shard(job: AnnotationJob, plan: ShardPlan, rows: Dict[int, dict]) -> None:
    with job.target.shard(plan.index, plan.file) as out:
        for line in sorted(rows):
            row = rows[line]
            if row["reject"]:
                out.reject(Reject(plan.file, line, row["reject"]))
            else:
                annotations = {key: json.loads(row[key]) for key in ANNOTATIONS}
                out.add(line, job.output_record(row["text"], json.loads(row["fields"]), annotations))


@contextmanager
def ray_session(address: Optional[str]) -> Iterator[None]:
    """Connected to Ray for the block: to the cluster this process is connected to
    already, else to `address` (None: a new local cluster), disconnected afterwards.
    Ray Data's own progress bars are off (the job has one)."""
    context = ray.data.DataContext.get_current()
    bars, context.enable_progress_bars = context.enable_progress_bars, False
    connect = not ray.is_initialized()
    if connect:
        ray.init(address=address, logging_level=logging.WARNING)
    try:
        yield
    finally:
        context.enable_progress_bars = bars
        if connect:
            ray.shutdown()
