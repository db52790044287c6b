"""Relations as conditional extraction, without spaCy: what cortex_rel (rel.py) and
`api.relations` share.

A relation is asked once per head entity: "Find the employer of Ada Lovelace." over the
whole text; the model marks the answer spans (threshold spans, core.decoding), and the
entities those spans overlap are the tails.

Entities are plain `(start_char, end_char, label)` tuples of the text. The rule that
matches predicted spans to entities (`find_tails`): an entity is a tail when a predicted
span shares at least one character with it, it is not the head (nor overlaps it) and the
relation allows its label; its score is the mean inside-probability of its own words
(core.decoding.span_probability), so a predicted span longer or shorter than the entity
does not change the entity's score. A (head, relation) prompt the model judges
unanswerable at [CLS] (answer_probability below the relation's no_answer_threshold, QA's
no-answer rule) yields no tails, whatever its spans.
"""
import numbers
import string
from dataclasses import dataclass
from typing import Dict, FrozenSet, List, Mapping, Optional, Sequence, Tuple, Union

from .core.decoding import (NO_ANSWER_THRESHOLD, answer_probability, check_answer_settings, check_thresholds,
                            span_probability, threshold_spans)
from .templates import check_template, label_words, task_template

Entity = Tuple[int, int, str]  # (start_char, end_char, label)
Found = Tuple[Entity, Entity, str, float]  # (head, tail, relation label, score in [0, 1])
RelationSpecs = Union[Sequence[str], Mapping[str, Optional[dict]]]
SPEC_KEYS = ("head", "tail", "prompt", "threshold", "symmetric")

# Default thresholds of a relation's answer spans (a span needs a word at REL_THRESHOLD and
# extends down to REL_EXTEND_THRESHOLD). On dev sets, neither EVAL (docs/RELATIONS.md):
# ADE valid with gold entities F1 72.5 at cortex_ner's 0.85 / 0.7, 89.7 at 0.7 / 0.5, 95.9 at
# 0.5 / 0.4; FewRel val_nyt (25 relations asked of each head) 28.7 / 22.5 / 18.6: lower
# thresholds find more tails for any relation asked. 0.7 / 0.5 is the compromise.
REL_THRESHOLD = 0.7
REL_EXTEND_THRESHOLD = 0.5
# The [CLS] gate: a (head, relation) prompt yields tails only where answer_probability reaches
# it (0: off); QA's no-answer threshold. On the dev sentences no model trained on
# (evaluation.tune_rel, docs/RELATIONS.md), at 0.7 / 0.5: ADE valid F1 unchanged up to 0.5 (89.3
# cortex-mini-en, 97.6 the v4 candidate), lower above (87.3 / 96.7 at 0.7); FewRel val_nyt with
# all 25 relations asked 21.8 -> 26.0 (40.6 -> 49.9) at 0.5; cortex-mini-en up to 36.0 at 0.9,
# v4 up to 59.1 at 0.8.
REL_NO_ANSWER_THRESHOLD = NO_ANSWER_THRESHOLD


@dataclass(frozen=True)
class Relation:
    """One relation type: its label, its prompt (with `{head}`), the entity labels its heads
    and tails may have (None: any) and its threshold."""

    label: str
    prompt: str
    heads: Optional[FrozenSet[str]] = None
    tails: Optional[FrozenSet[str]] = None
    threshold: float = REL_THRESHOLD
    symmetric: bool = False
    no_answer_threshold: float = REL_NO_ANSWER_THRESHOLD

    def ask(self, text: str, head: Entity) -> str:
        """The prompt about `head`: its text, whitespace collapsed (a name across a line
        break is still one line of the prompt)."""
        return self.prompt.format(head=" ".join(text[head[0] : head[1]].split()))


def relation_prompt(label: str, template: Optional[str] = None) -> str:
    """The prompt of a relation named by `label` (read as words: 'place_of_birth' -> 'place
    of birth'): `template` (default: "rel" in templates/tasks.json) with {relation} filled
    and {head} left. ValueError unless the template has exactly {relation} and {head}."""
    template = task_template("rel") if template is None else template
    fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    if fields != {"relation", "head"}:
        raise ValueError(f"Relation template {template!r} must have {{relation}} and {{head}} and no other "
                         f"placeholder, has {sorted(fields)}")
    words = label_words(label).replace("{", "{{").replace("}", "}}")
    return template.format(relation=words, head="{head}")


def _types(label: str, side: str, value) -> Optional[FrozenSet[str]]:
    """Entity labels a relation allows on one side; None or [] for any."""
    if value is None:
        return None
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, str) and v.strip() for v in values):
        raise ValueError(f"Relation {label!r}: {side} must be an entity label or a list of them, got {value!r}")
    return frozenset(values) or None


def parse_relation(label: str, spec: Optional[dict], template: Optional[str], threshold: float,
                   no_answer_threshold: float = REL_NO_ANSWER_THRESHOLD) -> Relation:
    """A Relation from its config: {head, tail, prompt, threshold, symmetric}, each optional
    (spec None: all defaults); no_answer_threshold for every relation. Raises ValueError
    naming the relation for an unknown key, a prompt without {head}, a threshold outside
    (0, 1) or a symmetric that is not a bool."""
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"Relation labels must be non-empty strings, got {label!r}")
    spec = {} if spec is None else spec
    if not isinstance(spec, Mapping):
        raise ValueError(f"Relation {label!r}: expected a dict of {', '.join(SPEC_KEYS)}, got {spec!r}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"Relation {label!r}: unknown keys {unknown}; use {', '.join(SPEC_KEYS)}")
    prompt = spec.get("prompt") or relation_prompt(label, template)
    try:
        check_template(prompt, "head")
        check_thresholds(spec.get("threshold", threshold), None)
    except ValueError as err:
        raise ValueError(f"Relation {label!r}: {err}") from None
    symmetric = spec.get("symmetric", False)
    if not isinstance(symmetric, bool):
        raise ValueError(f"Relation {label!r}: symmetric must be true or false, got {symmetric!r}")
    return Relation(label, prompt, _types(label, "head", spec.get("head")), _types(label, "tail", spec.get("tail")),
                    spec.get("threshold", threshold), symmetric, no_answer_threshold)


def parse_relations(relations: RelationSpecs, template: Optional[str] = None, threshold: float = REL_THRESHOLD,
                    no_answer_threshold: float = REL_NO_ANSWER_THRESHOLD) -> Dict[str, Relation]:
    """{label: Relation} from a list of labels or {label: spec or None}, in sorted order
    (results never depend on the order relations were given in). Raises ValueError for no
    relations, a bad spec (parse_relation) or a no_answer_threshold outside [0, 1]."""
    check_answer_settings(no_answer_threshold, 1)
    if isinstance(relations, str):
        relations = [relations]
    if not relations:
        raise ValueError("No relations given: pass a list of relation labels or {label: {head, tail, prompt, ...}}")
    specs = relations if isinstance(relations, Mapping) else {label: None for label in relations}
    return {label: parse_relation(label, specs[label], template, threshold, no_answer_threshold)
            for label in sorted(specs, key=str)}


def _allows(types: Optional[FrozenSet[str]], entity: Entity) -> bool:
    return types is None or entity[2] in types


def _overlaps(a: Tuple[int, int], b: Tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def candidate_tails(entities: Sequence[Entity], head: Entity, relation: Relation) -> List[Entity]:
    """The entities that may be the tail of `relation` for `head`: allowed labels, apart from the head."""
    return [e for e in entities if _allows(relation.tails, e) and not _overlaps(e, head)]


def requests(text: str, entities: Sequence[Entity], relations: Dict[str, Relation]) -> List[Tuple[Entity, Relation, str]]:
    """(head, relation, prompt) for every head a relation allows that has at least one
    candidate tail (a question whose answer could match no entity is not asked)."""
    return [(head, rel, rel.ask(text, head)) for head in sorted(set(entities)) for rel in relations.values()
            if _allows(rel.heads, head) and candidate_tails(entities, head, rel)]


def find_tails(result, head: Entity, entities: Sequence[Entity], relation: Relation,
               extend_threshold: Optional[float]) -> List[Tuple[Entity, float]]:
    """(tail, score) for the candidate tails a predicted span overlaps, none where the
    model judges the prompt unanswerable (module docstring)."""
    if answer_probability(result) < relation.no_answer_threshold:
        return []
    spans = [(s.start_char, s.end_char) for s in threshold_spans(result, relation.threshold, extend_threshold)]
    return [(e, span_probability(result, e[0], e[1])) for e in candidate_tails(entities, head, relation)
            if any(_overlaps(s, e) for s in spans)]


def without_mirrors(found: List[Found], relations: Dict[str, Relation]) -> List[Found]:
    """Symmetric relations found both ways (a-b and b-a) once: the higher score, the entity
    that comes first in the text as head."""
    kept: Dict[tuple, Found] = {}
    for head, tail, label, score in found:
        if relations[label].symmetric:
            head, tail = sorted((head, tail))
        key = (head, tail, label)
        if key not in kept or score > kept[key][3]:
            kept[key] = (head, tail, label, score)
    return sorted(kept.values(), key=lambda f: (f[0], f[1], f[2]))


def extract_relations(text: str, entities: Sequence[Entity], relations: Dict[str, Relation],
                      results: Mapping[str, object], extend_threshold: Optional[float]) -> List[Found]:
    """Every (head, tail, label, score) found, given `results` {prompt: RequestResult} for
    the prompts of `requests`; sorted by head, tail and label."""
    found = [(head, tail, rel.label, score) for head, rel, prompt in requests(text, entities, relations)
             for tail, score in find_tails(results[prompt], head, entities, rel, extend_threshold)]
    return without_mirrors(found, relations)


def check_entities(text: str, entities) -> List[Entity]:
    """Entities as (start_char, end_char, label) tuples, from such tuples or dicts with
    those keys. Raises TypeError for another shape, ValueError for offsets outside the
    text or an empty range."""
    if isinstance(entities, (str, bytes, Mapping)) or not isinstance(entities, Sequence):
        raise TypeError(f"entities must be a list of (start_char, end_char, label) or dicts, got {type(entities).__name__}")
    out = []
    for i, e in enumerate(entities):
        values = (e.get("start_char"), e.get("end_char"), e.get("label")) if isinstance(e, Mapping) else e
        if not isinstance(values, (tuple, list)) or len(values) != 3:
            raise TypeError(f"entities: item {i} must be (start_char, end_char, label) or a dict of them, got {e!r}")
        start, end, label = values
        if not all(isinstance(x, numbers.Integral) and not isinstance(x, bool) for x in (start, end)) \
                or not isinstance(label, str):
            raise TypeError(f"entities: item {i} needs whole-number offsets and a string label, got {e!r}")
        if not 0 <= start < end <= len(text):
            raise ValueError(f"entities: item {i} ({start}, {end}) is not a character range of the text "
                             f"(length {len(text)})")
        out.append((int(start), int(end), label))
    return out
