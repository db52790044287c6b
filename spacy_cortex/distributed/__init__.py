"""Batch jobs beyond one machine, on Ray Data (`pip install 'spacy-cortex[ray]'`).

    from spacy_cortex.batch import PipelineSpec, prepare_job
    from spacy_cortex.distributed import RayEngine

    engine = RayEngine(actors=4, num_cpus=2, address="auto")
    prepare_job(["data/*.jsonl"], PipelineSpec(pipeline="my_pipeline"), output_dir="out",
                formats=["parquet"], engine=engine).run()
"""
from .ray_engine import CortexAnnotator, RayEngine

__all__ = ["CortexAnnotator", "RayEngine"]
