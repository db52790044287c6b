"""Batch annotation jobs that lose nothing: streamed inputs, atomic shards, a manifest to
resume from, and a rejects file for bad records.

    from spacy_cortex.batch import PipelineSpec, prepare_job

    job = prepare_job(["texts/*.jsonl"], PipelineSpec(ner=("PERSON", "DRUG")), output_dir="out")
    summary = job.run()          # after an interruption: prepare_job(..., resume=True).run()

Modules: readers (inputs), rejects, records (output values), formats (writers), files
(atomic writes), manifest, shards (shard rule and targets), pipelines, job.
"""
from .job import AnnotationJob, Engine, JobSummary, LocalEngine, prepare_job
from .pipelines import PipelineSpec, parse_labels
from .rejects import Reject, RejectedRecord

__all__ = ["AnnotationJob", "Engine", "JobSummary", "LocalEngine", "PipelineSpec", "Reject",
           "RejectedRecord", "parse_labels", "prepare_job"]
