"""What a batch job runs: a saved spaCy pipeline, or cortex components built from options.

A `PipelineSpec` is plain data, so it pickles to the processes (Ray actors) that load it.
"""
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Dict, Optional, Sequence, Tuple

import spacy
from spacy.language import Language

from ..core.decoding import SPAN_EXTEND_THRESHOLD, SPAN_THRESHOLD, SPAN_WINDOW
from ..relation_rules import REL_NO_ANSWER_THRESHOLD
from ..pipeline import Cortex
from ..core.checkpoints import DEFAULT_CHECKPOINT
from ..templates import label_prompts


# cortex reads a long text in windows, so a built pipeline takes texts up to this many
# characters (spaCy's default of 1,000,000 guards the memory of parsers); what it bounds
# is the spaCy Doc (about 4M tokens here)
BUILT_MAX_LENGTH = 20_000_000


def too_long(nlp: Language, text) -> Optional[str]:
    """Why `nlp` cannot take `text` (a string longer than nlp.max_length), or None."""
    if isinstance(text, str) and len(text) > nlp.max_length:
        return f"text of {len(text):,} characters is longer than the pipeline's max_length ({nlp.max_length:,})"
    return None


def parse_labels(values: Sequence[str], option: str, task: str) -> Dict[str, str]:
    """'LABEL' or 'LABEL=prompt' (the values of `option`, e.g. "--ner") -> {label: prompt};
    a label without a prompt gets the task's template ("ner" or "textcat"). Raises
    ValueError for an empty label or prompt or a repeated label, naming the option and value."""
    labels = {}
    for value in values:
        label, sep, prompt = (part.strip() for part in value.partition("="))
        if not label:
            raise ValueError(f"{option} {value!r}: the label is empty" + (" before '='" if sep else ""))
        if sep and not prompt:
            raise ValueError(f"{option} {value!r}: the prompt after '=' is empty")
        if label in labels:
            raise ValueError(f"{option} {value!r}: label {label!r} is given twice")
        labels[label] = prompt or label_prompts(label, None, task)[label]
    return labels


def parse_relation_options(values: Sequence[str]) -> Dict[str, dict]:
    """--rel values, 'LABEL[:HEAD>TAIL][=PROMPT]' -> cortex_rel's {label: {head, tail, prompt}}:
    HEAD and TAIL are entity labels, several joined by ',', either side empty for any
    ("work for:person>organization", "located in:>location=Where is {head}?"). Raises
    ValueError for an empty label or prompt, a repeated label or types without '>'."""
    relations = {}
    for value in values:
        left, sep, prompt = (part.strip() for part in value.partition("="))
        label, typed, types = (part.strip() for part in left.partition(":"))
        if not label:
            raise ValueError(f"--rel {value!r}: the relation label is empty")
        if sep and not prompt:
            raise ValueError(f"--rel {value!r}: the prompt after '=' is empty")
        if typed and ">" not in types:
            raise ValueError(f"--rel {value!r}: write the entity types as HEAD>TAIL (either side may be empty)")
        if label in relations:
            raise ValueError(f"--rel {value!r}: relation {label!r} is given twice")
        head, _, tail = types.partition(">")
        spec = {side: [t.strip() for t in names.split(",") if t.strip()] or None
                for side, names in (("head", head), ("tail", tail))}
        relations[label] = {**spec, **({"prompt": prompt} if prompt else {})}
    return relations


def add_task(nlp: Language, factory: str, config: dict, options: str) -> None:
    """nlp.add_pipe, its ValueErrors prefixed with the command-line options they come from."""
    try:
        nlp.add_pipe(factory, config=config)
    except ValueError as err:
        raise ValueError(f"{options}: {err}") from None


@dataclass(frozen=True)
class PipelineSpec:
    """pipeline: a saved pipeline folder or installed package name (spacy.load), run as
    it is; otherwise a blank English pipeline with `cortex` (checkpoint `model`,
    `precision`) and the task components the options ask for. The field names are those
    of the `annotate` options (--ner, --cat, --question, ...)."""

    pipeline: Optional[str] = None
    model: str = DEFAULT_CHECKPOINT
    precision: str = "auto"
    ner: Tuple[str, ...] = ()
    cat: Tuple[str, ...] = ()
    question: Tuple[str, ...] = ()
    multi_label: bool = False
    none_label: Optional[str] = None
    threshold: float = SPAN_THRESHOLD
    extend_threshold: float = SPAN_EXTEND_THRESHOLD
    ner_window: int = SPAN_WINDOW
    prefer_specific: bool = True
    device: str = "auto"  # where the cortex model runs, for built and saved pipelines alike
    rel: Tuple[str, ...] = ()  # --rel: relations between the --ner entities (parse_relation_options)
    rel_no_answer_threshold: float = REL_NO_ANSWER_THRESHOLD  # cortex_rel's [CLS] gate

    def load(self) -> Language:
        """The pipeline. Raises ValueError for options that describe none or conflict
        (CheckpointError for a wrong checkpoint), OSError for a pipeline or checkpoint
        that cannot be found."""
        if self.pipeline is None:
            return self._build()
        given = [f"--{f.name.replace('_', '-')}" for f in fields(self)
                 if f.name not in ("pipeline", "device") and getattr(self, f.name) != f.default]
        if given:
            raise ValueError(f"--pipeline runs a saved pipeline as it is: drop {', '.join(given)}")
        nlp = spacy.load(self.pipeline)
        if self.device != "auto":  # "auto" already followed spaCy's current device
            for _, component in nlp.pipeline:
                if isinstance(component, Cortex):
                    component.model.to(self.device)
        return nlp

    def as_dict(self) -> dict:
        """JSON-ready: what a job manifest records of the pipeline (not the device: a job
        may be resumed on another one)."""
        return {k: v for k, v in asdict(self).items() if k != "device"}

    def with_absolute_paths(self) -> "PipelineSpec":
        """Local folders as absolute paths, for processes with another working folder
        (names of packages and registered checkpoints stay as they are)."""
        absolute = {name: str(Path(getattr(self, name)).resolve()) for name in ("pipeline", "model")
                    if getattr(self, name) is not None and Path(getattr(self, name)).exists()}
        return replace(self, **absolute)

    def _build(self) -> Language:
        nlp = spacy.blank("en")
        nlp.max_length = BUILT_MAX_LENGTH
        nlp.add_pipe("cortex", config={"model": {"checkpoint": self.model, "precision": self.precision,
                                                 "device": self.device}})
        if self.ner:
            add_task(nlp, "cortex_ner", {"labels": parse_labels(self.ner, "--ner", "ner"), "threshold": self.threshold,
                                         "extend_threshold": self.extend_threshold, "window": self.ner_window,
                                         "prefer_specific": self.prefer_specific},
                     "--ner / --threshold / --extend-threshold / --ner-window")
        if self.cat:
            add_task(nlp, "cortex_textcat", {"labels": parse_labels(self.cat, "--cat", "textcat"),
                                             "exclusive": not self.multi_label, "none_label": self.none_label},
                     "--cat / --none-label")
        if self.question:
            add_task(nlp, "cortex_qa", {"questions": list(self.question)}, "--question")
        if self.rel:
            if not self.ner:
                raise ValueError("--rel relates the entities --ner finds: give --ner too")
            add_task(nlp, "cortex_rel", {"relations": parse_relation_options(self.rel),
                                         "no_answer_threshold": self.rel_no_answer_threshold},
                     "--rel / --rel-no-answer-threshold")
        elif self.rel_no_answer_threshold != REL_NO_ANSWER_THRESHOLD:
            raise ValueError("--rel-no-answer-threshold gates the relations of --rel: give --rel too")
        if len(nlp.pipe_names) == 1:
            raise ValueError("Nothing to do: give --ner (and --rel), --cat and/or --question, or --pipeline")
        return nlp
