"""Where the wall time of a cortex pipeline goes: exclusive seconds per stage.

Wraps the few functions that bound each stage (a deterministic, coarse-grained profile:
~10 wrapped calls per (doc, label) request, microseconds against milliseconds of work) and
charges each call's time, minus that of wrapped calls inside it, to its stage. The rest of
the wall time (spaCy's pipe loop, extension attributes, Python glue) is "other". cProfile
gives the function-level detail but inflates Python-heavy stages several-fold, so it is
not used for the split itself.
"""
import inspect
import time
from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple

from spacy.language import Language

from .. import ner as ner_module
from ..core.model import CortexModel

# stage: (owner, attribute) pairs whose calls belong to it
STAGES: Dict[str, List[Tuple[object, str]]] = {
    "spaCy tokenizer": [(Language, "make_doc")],
    "cortex tokenization": [(CortexModel, "encode_texts"), (CortexModel, "_prompt_input")],
    "windows and batches": [(CortexModel, "windows"), (CortexModel, "batches")],
    "encoder passes": [(CortexModel, "forward")],
    "probabilities to results": [(CortexModel, "run")],
    "span decoding": [(ner_module, "threshold_spans"), (ner_module, "resolve_overlaps")],
    "spaCy spans and ents": [(ner_module, "make_span"), (ner_module.NERTask, "apply")],
}


class StageTimer:
    """Exclusive seconds per stage while active; `seconds` maps every STAGES key."""

    def __init__(self):
        self.seconds: Dict[str, float] = {stage: 0.0 for stage in STAGES}
        self._children: List[float] = []  # time of wrapped calls inside each open call

    def _charge(self, stage: str, start: float) -> None:
        elapsed = time.perf_counter() - start
        self.seconds[stage] += elapsed - self._children.pop()
        if self._children:
            self._children[-1] += elapsed

    def wrap(self, stage: str, fn):
        timer = self

        if inspect.isgeneratorfunction(fn):
            def generator(*args, **kwargs):  # time each step, not the consumer's work between
                steps = fn(*args, **kwargs)
                while True:
                    start = time.perf_counter()
                    timer._children.append(0.0)
                    try:
                        item = next(steps)
                    except StopIteration:
                        return
                    finally:
                        timer._charge(stage, start)
                    yield item
            return generator

        def call(*args, **kwargs):
            start = time.perf_counter()
            timer._children.append(0.0)
            try:
                return fn(*args, **kwargs)
            finally:
                timer._charge(stage, start)
        return call

    def split(self, wall_seconds: float) -> Dict[str, float]:
        """Percent of `wall_seconds` per stage, "other" for the rest (in [0, 100])."""
        shares = {stage: 100 * s / wall_seconds for stage, s in self.seconds.items()}
        shares["other"] = max(0.0, 100 - sum(shares.values()))
        return shares


@contextmanager
def stage_timer() -> Iterator[StageTimer]:
    """Patch the STAGES functions for the duration of the block; restored afterwards."""
    timer = StageTimer()
    originals = [(owner, name, getattr(owner, name)) for parts in STAGES.values() for owner, name in parts]
    try:
        for stage, parts in STAGES.items():
            for owner, name in parts:
                setattr(owner, name, timer.wrap(stage, getattr(owner, name)))
        yield timer
    finally:
        for owner, name, original in originals:
            setattr(owner, name, original)
