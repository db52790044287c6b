"""spacy_cortex: one small instruction-following encoder for zero-shot NER, text
classification, QA, NLI, similarity, ranking and response scoring in spaCy.

Importing the package costs nothing: the API names below load the core (torch,
transformers) on first use (PEP 562), and spaCy finds the components through the
`spacy_factories` entry points, so the package imports no spaCy either. The shipped model's
weights are for research and non-commercial use (its training data's licences): see
spacy_cortex/models/cortex-mini-en/README.md.
"""
import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "spacy_cortex.api": ("answer", "classify", "entail", "extract", "load_model", "rank", "relations", "rerank", "score",
                         "score_batch", "select", "select_batch", "similarity", "transformers_generator"),
    "spacy_cortex.core.encoding": ("PromptTooLongError",),
    "spacy_cortex.core.model": ("CheckpointError", "CortexModel"),
}
_WHERE = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module 'spacy_cortex' has no attribute {name!r}")
    value = getattr(importlib.import_module(_WHERE[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__():
    return sorted(list(globals()) + __all__)
