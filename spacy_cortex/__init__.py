"""spacy_cortex: one small instruction-following encoder for zero-shot NER, text
classification, QA, NLI, similarity, ranking and response scoring in spaCy."""
from . import architectures, ner, pipeline, qa, scoring, textcat, verify  # noqa: F401  (register factories)
from .api import (answer, classify, entail, extract, load_model, rank, rerank, score, score_batch, select,
                  select_batch, similarity, transformers_generator)
from .encoding import PromptTooLongError
from .model import CheckpointError, CortexModel

__version__ = "0.1.0"
__all__ = [
    "CortexModel", "CheckpointError", "PromptTooLongError", "load_model",
    "extract", "classify", "answer", "entail", "similarity", "rank", "score", "score_batch",
    "select", "select_batch", "rerank", "transformers_generator",
]
