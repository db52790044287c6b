"""cortex_rel: zero-shot relation extraction between the entities of a Doc, one prompt
per (head entity, relation); the rules are spacy_cortex.relation_rules'."""
from dataclasses import asdict, dataclass
from typing import Dict, Iterable, List, Optional, Tuple

from spacy.language import Language
from spacy.scorer import PRFScore
from spacy.tokens import Doc, Span
from spacy.training import Example

from .core.decoding import check_thresholds, check_window
from .pipeline import CortexTask, Task, make_task_component
from .registry import tasks
from .relation_rules import (REL_EXTEND_THRESHOLD, REL_NO_ANSWER_THRESHOLD, REL_THRESHOLD, Entity, RelationSpecs,
                             extract_relations, parse_relations, requests)

ATTR = "relations"
STORE = "cortex_relations"  # doc.user_data: plain values, so Doc.to_bytes and DocBin keep them
Stored = Tuple[int, int, str, int, int, str, str, float]  # head start, end, label; tail ...; relation, score


def _get(doc: Doc) -> Optional[List[dict]]:
    stored = doc.user_data.get(STORE)
    if stored is None:
        return None
    return [{"head": Span(doc, hs, he, label=hl), "tail": Span(doc, ts, te, label=tl), "label": label, "score": score}
            for hs, he, hl, ts, te, tl, label, score in stored]


def _set(doc: Doc, relations: Optional[Iterable[dict]]) -> None:
    doc.user_data[STORE] = None if relations is None else [
        (r["head"].start, r["head"].end, r["head"].label_, r["tail"].start, r["tail"].end, r["tail"].label_,
         r["label"], float(r.get("score", 1.0))) for r in relations]


def install_extensions() -> None:
    """Doc._.relations: [{head: Span, tail: Span, label, score}] (None before cortex_rel ran);
    settable with such dicts (gold relations for training and scoring)."""
    if not Doc.has_extension(ATTR):
        Doc.set_extension(ATTR, getter=_get, setter=_set)


def doc_entities(doc: Doc, spans_key: Optional[str]) -> Dict[Entity, Span]:
    """{(start_char, end_char, label): Span} of Doc.ents, or of Doc.spans[spans_key]."""
    spans = doc.ents if spans_key is None else doc.spans.get(spans_key, [])
    return {(s.start_char, s.end_char, s.label_): s for s in spans}


class RELTask(Task):
    def __init__(self, relations: Optional[RelationSpecs], template: Optional[str], threshold: float,
                 extend_threshold: Optional[float], spans_key: Optional[str], window: Optional[int],
                 no_answer_threshold: float = REL_NO_ANSWER_THRESHOLD):
        install_extensions()
        check_thresholds(threshold, extend_threshold)
        check_window(window)
        self.relations = parse_relations(relations, template, threshold, no_answer_threshold)
        self.extend_threshold = extend_threshold
        self.spans_key = spans_key
        self.window = window

    @property
    def labels(self) -> List[str]:
        return list(self.relations)

    @property
    def label_prompts(self) -> Dict[str, str]:
        """{relation: its prompt, with {head}}."""
        return {label: rel.prompt for label, rel in self.relations.items()}

    def prompts(self, doc: Doc) -> List[str]:
        asked = requests(doc.text, list(doc_entities(doc, self.spans_key)), self.relations)
        return list(dict.fromkeys(prompt for _, _, prompt in asked))

    def apply(self, doc: Doc, results) -> None:
        spans = doc_entities(doc, self.spans_key)
        found = extract_relations(doc.text, list(spans), self.relations, results or {}, self.extend_threshold)
        doc._.set(ATTR, [{"head": spans[h], "tail": spans[t], "label": label, "score": score}
                         for h, t, label, score in found])

    def training_records(self, reference: Doc) -> List[dict]:
        """One extraction record per (head, relation) asked of the reference: its gold tails
        in reference._.relations (none: a negative)."""
        entities = list(doc_entities(reference, self.spans_key))
        gold: Dict[Tuple[Entity, str], List[List[int]]] = {}
        for r in reference._.get(ATTR) or []:
            head, tail = (r["head"].start_char, r["head"].end_char, r["head"].label_), r["tail"]
            gold.setdefault((head, r["label"]), []).append([tail.start_char, tail.end_char])
        return [{"prompt": prompt, "context": reference.text, "spans": gold.get((head, rel.label), [])}
                for head, rel, prompt in requests(reference.text, entities, self.relations)]

    def score(self, examples: Iterable[Example]) -> Dict[str, float]:
        """Strict micro P/R/F of relations: both entities' offsets and labels and the relation label."""
        pairs = [(relation_keys(eg.predicted), relation_keys(eg.reference)) for eg in examples]
        return {f"rel_micro_{k}": v for k, v in micro_prf(pairs).items()}


def relation_keys(doc: Doc) -> set:
    """What strict matching compares of each relation of doc._.relations."""
    return {(r["head"].start_char, r["head"].end_char, r["head"].label_, r["tail"].start_char, r["tail"].end_char,
             r["tail"].label_, r["label"]) for r in doc._.get(ATTR) or []}


def micro_prf(pairs: Iterable[Tuple[set, set]]) -> Dict[str, float]:
    """Micro precision, recall and F1 in [0, 1] over (predicted, gold) sets (spaCy's PRFScore:
    0.0 where undefined)."""
    prf = PRFScore()
    for predicted, gold in pairs:
        prf.score_set(predicted, gold)
    return prf.to_dict()


def span_dict(span: Span) -> dict:
    return {"text": span.text, "start_char": span.start_char, "end_char": span.end_char, "label": span.label_}


def relation_dicts(doc: Doc) -> Optional[List[dict]]:
    """doc._.relations as JSON-ready values ({head, tail: {text, start_char, end_char,
    label}, label, score}); None where cortex_rel has not run."""
    relations = doc._.get(ATTR) if doc.has_extension(ATTR) else None
    if relations is None:
        return None
    return [{"head": span_dict(r["head"]), "tail": span_dict(r["tail"]), "label": r["label"], "score": r["score"]}
            for r in relations]


@dataclass(frozen=True)
class RelationItem:
    """spacy-llm's REL item: `dep` and `dest` index Doc.ents (head and tail), `relation` its label."""

    dep: int
    dest: int
    relation: str

    def as_dict(self) -> dict:
        return asdict(self)


def llm_relations(doc: Doc) -> List[RelationItem]:
    """doc._.relations in spacy-llm's REL convention (what its task writes to doc._.rel).
    Relations whose head or tail is not one of Doc.ents (spans_key mode) are left out."""
    index = {(e.start, e.end, e.label_): i for i, e in enumerate(doc.ents)}
    items = []
    for r in doc._.get(ATTR) or []:
        head, tail = (index.get((s.start, s.end, s.label_)) for s in (r["head"], r["tail"]))
        if head is not None and tail is not None:
            items.append(RelationItem(head, tail, r["label"]))
    return items


@tasks.register("spacy_cortex.REL.v1")
def make_rel_task(
    relations: Optional[RelationSpecs],
    template: Optional[str] = None,
    threshold: float = REL_THRESHOLD,
    extend_threshold: Optional[float] = REL_EXTEND_THRESHOLD,
    spans_key: Optional[str] = None,
    window: Optional[int] = None,
    no_answer_threshold: float = REL_NO_ANSWER_THRESHOLD,
) -> RELTask:
    return RELTask(relations, template, threshold, extend_threshold, spans_key, window, no_answer_threshold)


@Language.factory(
    "cortex_rel",
    assigns=[f"doc._.{ATTR}"],
    default_config={
        "relations": None, "template": None, "threshold": REL_THRESHOLD, "extend_threshold": REL_EXTEND_THRESHOLD,
        "spans_key": None, "window": None, "no_answer_threshold": REL_NO_ANSWER_THRESHOLD, "upstream": "cortex",
    },
    default_score_weights={"rel_micro_f": 1.0, "rel_micro_p": 0.0, "rel_micro_r": 0.0},
)
def make_cortex_rel(
    nlp: Language,
    name: str,
    relations: Optional[RelationSpecs],
    template: Optional[str],
    threshold: float,
    extend_threshold: Optional[float],
    spans_key: Optional[str],
    window: Optional[int],
    no_answer_threshold: float,
    upstream: str,
) -> CortexTask:
    """Zero-shot relations between the entities of each doc (put them there first, e.g.
    with cortex_ner): each relation is asked once per head entity, "Find the employer of
    Ada Lovelace.", and the entities the answer spans overlap are its tails.

    relations: a list of relation labels, or {label: {head, tail, prompt, threshold,
        symmetric}} with every key optional:
        head / tail: the entity labels the head / tail may have (a label or a list; none:
            any entity);
        prompt: the question about a head, with {head} (its text); default: `template`;
        threshold: this relation's threshold (default: the global one);
        symmetric: true for a relation that holds both ways ("married to"): each pair is
            listed once, the entity that comes first as head, the higher score of the two.
    template: with {relation} (the label read as words: place_of_birth -> "place of
        birth") and {head}; default "Find the {relation} of {head}." (templates/tasks.json).
    threshold / extend_threshold: the answer spans' thresholds, as cortex_ner's (default
        0.7 / 0.5; see spacy_cortex.relation_rules). An entity is a tail when an answer span
        shares a character with it; its score is the mean inside-probability of its words.
    spans_key: None takes heads and tails from Doc.ents; a key from Doc.spans[key].
    window: the most text sub-tokens each prompt reads at once (default null: as many as
        the model's max_length leaves, so a head and a tail a paragraph apart are read
        together; a longer text is read in overlapping windows).
    no_answer_threshold: in [0, 1]; a (head, relation) prompt yields tails only where the
        model's [CLS] probability that the text answers it reaches this (QA's no-answer
        rule; 0: off; default 0.5, chosen on dev sets: spacy_cortex.relation_rules).
    Writes doc._.relations: [{head: Span, tail: Span, label, score}] sorted by head, tail
    and label (stored as plain values in doc.user_data, so Doc.to_bytes and DocBin keep
    them); rel.llm_relations(doc) gives spacy-llm's RelationItem(dep, dest, relation).
    The prompts depend on the doc's entities, so they run after the entities are set:
    batched over the docs of a batch, not with the other components' prompts.
    upstream: name of the cortex component (added if missing).
    """
    build = lambda: make_rel_task(relations, template, threshold, extend_threshold, spans_key, window,
                                  no_answer_threshold)
    return make_task_component(nlp, name, upstream, build)
