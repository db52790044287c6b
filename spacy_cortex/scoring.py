"""cortex_select: Cappy-style scoring of candidate responses inside a spaCy pipeline.

The doc is the instruction; its candidate responses are in `doc._.cortex_candidates`
(set by the user, an upstream generator component, or the training corpus reader). The
component writes each candidate's score and the best one, and trains with `spacy train`
on (instruction, candidates, target scores) through the `spacy_cortex.ScoringCorpus.v1`
reader: soft [CLS] targets, the adaptation of Cappy's third use inside spaCy.
"""
import json
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import numpy as np
from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry as spacy_registry

from .core.decoding import is_blank, yes_probability
from .pipeline import CortexTask, Task, make_task_component
from .registry import tasks
from .templates import check_template, task_template

CANDIDATES_ATTR = "cortex_candidates"
TARGETS_ATTR = "cortex_candidate_targets"
SCORES_ATTR = "cortex_candidate_scores"
SELECTED_ATTR = "cortex_selected"


class DataError(ValueError):
    """A line of a training file that cannot be used; the message names file:line."""


def read_items(path: Path) -> Iterator[tuple]:
    """(line number, item dict) per non-blank line. Raises DataError for bad JSON or a non-object."""
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(f"{path}:{number}: not valid JSON ({err.msg})") from None
            if not isinstance(item, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(item).__name__}")
            yield number, item


def text_field(item: dict, key: str, where: str) -> str:
    """item[key] as a non-empty string. Raises DataError naming `where` (file:line)."""
    value = item.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DataError(f"{where}: {key!r} must be a non-empty string, got {value!r}")
    return value


def item_targets(item: dict, where: str) -> Tuple[str, List[str], List[float]]:
    """(instruction, candidates, targets in [0, 1]) of one item: a scored response is one
    candidate with its score; candidates + gold give each distinct candidate once, the gold
    one 1.0 and the others 0.0 (a wrong candidate with the gold text is dropped). Raises
    DataError naming `where` (file:line)."""
    instruction = text_field(item, "instruction", where)
    if "candidates" not in item:
        response = text_field(item, "response", where)
        score = item.get("score")
        if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
            raise DataError(f"{where}: 'score' must be a number in [0, 1], got {score!r}")
        return instruction, [response], [float(score)]
    candidates = item["candidates"]
    if not isinstance(candidates, list) or len(candidates) < 2 or not all(isinstance(c, str) for c in candidates):
        raise DataError(f"{where}: 'candidates' must be a list of at least 2 strings")
    gold = item.get("gold")
    index = candidates.index(gold) if isinstance(gold, str) and gold in candidates else gold
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(candidates):
        raise DataError(f"{where}: 'gold' must be a candidate's index or text, got {gold!r}")
    answer = candidates[index]
    distinct = list(dict.fromkeys(c for c in candidates if c.strip()))
    return instruction, distinct, [float(c == answer) for c in distinct]


def install_extensions() -> None:
    for name in (CANDIDATES_ATTR, TARGETS_ATTR, SCORES_ATTR, SELECTED_ATTR):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


class SelectTask(Task):
    def __init__(self, template: str):
        check_template(template, "response")
        install_extensions()
        self.template = template

    @property
    def labels(self) -> List[str]:
        return []

    def candidates(self, doc: Doc) -> List[str]:
        """The doc's candidates. Raises ValueError for anything but a list of strings."""
        candidates = doc._.get(CANDIDATES_ATTR) or []
        if isinstance(candidates, str) or not all(isinstance(c, str) for c in candidates):
            raise ValueError(f"doc._.{CANDIDATES_ATTR} must be a list of strings, got {candidates!r:.200}")
        return list(candidates)

    def prompts(self, doc: Doc) -> List[str]:
        return [self.template.format(response=c) for c in self.candidates(doc)] if not is_blank(doc.text) else []

    def apply(self, doc: Doc, results) -> None:
        candidates = self.candidates(doc)
        if not candidates or is_blank(doc.text):
            doc._.set(SCORES_ATTR, [0.0] * len(candidates))
            doc._.set(SELECTED_ATTR, None)
            return
        scores = [yes_probability(results[self.template.format(response=c)]) for c in candidates]
        best = int(np.argmax(scores))
        doc._.set(SCORES_ATTR, scores)
        doc._.set(SELECTED_ATTR, {"index": best, "candidate": candidates[best], "score": scores[best]})

    def training_records(self, reference: Doc) -> List[dict]:
        targets = reference._.get(TARGETS_ATTR) or []
        return [{"prompt": self.template.format(response=c), "context": reference.text, "cls": float(t), "spans": None}
                for c, t in zip(self.candidates(reference), targets)]

    def score(self, examples: Iterable[Example]) -> Dict[str, float]:
        """select_acc: share of examples (with 2+ candidates and targets) whose selected
        candidate has the highest target."""
        hits = []
        for eg in examples:
            targets = eg.reference._.get(TARGETS_ATTR) or []
            selected = eg.predicted._.get(SELECTED_ATTR)
            if len(targets) > 1 and selected is not None:
                hits.append(targets[selected["index"]] == max(targets))
        return {"select_acc": float(np.mean(hits)) if hits else None}


@tasks.register("spacy_cortex.Select.v1")
def make_select_task(template: Optional[str] = None) -> SelectTask:
    return SelectTask(task_template("score") if template is None else template)


@Language.factory(
    "cortex_select",
    assigns=[f"doc._.{SCORES_ATTR}", f"doc._.{SELECTED_ATTR}"],
    default_config={"template": None, "upstream": "cortex"},
    default_score_weights={"select_acc": 1.0},
)
def make_cortex_select(nlp: Language, name: str, template: Optional[str], upstream: str) -> CortexTask:
    """Score the candidate responses in doc._.cortex_candidates for the doc as instruction.

    Writes doc._.cortex_candidate_scores (P(correct) in [0, 1] per candidate, in order) and
    doc._.cortex_selected ({index, candidate, score} of the best; None without candidates
    or for an empty doc). Trains on doc._.cortex_candidate_targets of the reference docs
    (soft [CLS] targets in [0, 1]; see the spacy_cortex.ScoringCorpus.v1 reader).
    template: the prompt per candidate, with {response} (default: api.score's).
    upstream: name of the cortex component (added if missing).
    """
    return make_task_component(nlp, name, upstream, lambda: make_select_task(template))


def scoring_items(path: Path) -> Iterator[tuple]:
    """(instruction, candidates, targets) per line of an adaptation data file (adapt.py's
    format). Raises DataError naming file:line."""
    for number, item in read_items(path):
        yield item_targets(item, f"{path}:{number}")


@spacy_registry.readers("spacy_cortex.ScoringCorpus.v1")
def create_scoring_corpus(path: Path) -> Callable[[Language], Iterator[Example]]:
    """spaCy corpus reader for `spacy train`: one Example per line of an adaptation data
    file, the instruction as text, candidates on both docs, targets on the reference."""
    install_extensions()

    def read(nlp: Language) -> Iterator[Example]:
        for instruction, candidates, targets in scoring_items(Path(path)):
            predicted, reference = nlp.make_doc(instruction), nlp.make_doc(instruction)
            predicted._.set(CANDIDATES_ATTR, candidates)
            reference._.set(CANDIDATES_ATTR, candidates)
            reference._.set(TARGETS_ATTR, targets)
            yield Example(predicted, reference)

    return read
