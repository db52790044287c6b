"""cortex_ner: zero-shot entity recognition, one prompt per label."""
from typing import Dict, Iterable, List, Optional, Union

from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example

from .decoding import SPAN_THRESHOLD, threshold_spans
from .pipeline import CortexTask, LabelPromptTask, make_span, make_task_component
from .registry import tasks
from .templates import label_prompts, task_template


class NERTask(LabelPromptTask):
    def __init__(self, prompts: Dict[str, str], threshold: float, spans_key: Optional[str]):
        if not 0.0 < threshold < 1.0:  # 0 would mark every word, 1 none
            raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
        super().__init__(prompts, threshold)
        self.spans_key = spans_key

    def training_records(self, reference: Doc) -> List[dict]:
        gold = self.gold_spans(reference)
        return [
            {"prompt": prompt, "context": reference.text,
             "spans": [(s.start_char, s.end_char) for s in gold if s.label_ == label]}
            for label, prompt in self.label_prompts.items()
        ]

    def gold_spans(self, reference: Doc) -> List[Span]:
        if self.spans_key is None:
            return list(reference.ents)
        return list(reference.spans.get(self.spans_key, []))

    def find_spans(self, doc: Doc, results) -> List[Span]:
        spans = []
        for label in self.labels:
            for found in threshold_spans(results[self.label_prompts[label]], self.threshold):
                spans.append(make_span(doc, found.start_char, found.end_char, label, found.score))
        return spans

    def apply(self, doc: Doc, results) -> None:
        spans = self.find_spans(doc, results)
        if self.spans_key is not None:
            doc.spans[self.spans_key] = sorted(spans, key=lambda s: (s.start, s.end, s.label_))
            return
        doc.set_ents(resolve_overlaps(spans + list(doc.ents)))

    def score(self, examples: Iterable[Example]) -> Dict[str, float]:
        if self.spans_key is None:
            return Scorer.score_spans(examples, "ents")
        return Scorer.score_spans(
            examples, f"spans_{self.spans_key}",
            getter=lambda doc, key: doc.spans.get(self.spans_key, []),
            has_annotation=lambda doc: self.spans_key in doc.spans,
            allow_overlap=True,  # spans mode keeps overlapping spans of several labels
        )


def resolve_overlaps(spans: List[Span]) -> List[Span]:
    """Keep the highest-scoring span of each overlapping group (entities already on the
    doc, without a cortex score, win); ties broken by position and label, never by the
    order labels were given in."""
    def rank(span):
        score = span._.cortex_score
        return (-(score if score is not None else 2.0), span.start, -span.end, span.label_)

    taken = set()
    kept = []
    for span in sorted(spans, key=rank):
        if not taken.intersection(range(span.start, span.end)):
            kept.append(span)
            taken.update(range(span.start, span.end))
    return sorted(kept, key=lambda s: s.start)


@tasks.register("spacy_cortex.NER.v1")
def make_ner_task(
    labels: Union[List[str], Dict[str, str], None] = None,
    prompt: Optional[str] = None,
    label: Optional[str] = None,
    template: Optional[str] = None,
    threshold: float = SPAN_THRESHOLD,
    spans_key: Optional[str] = None,
) -> NERTask:
    if prompt is not None or label is not None:
        if labels:
            raise ValueError("Give either `labels` or `prompt` + `label`, not both")
        if not prompt or not label:
            raise ValueError("The short form needs both `prompt` and `label`")
        labels = {label: prompt}
    prompts = label_prompts(labels, template or task_template("ner"))
    return NERTask(prompts, threshold, spans_key)


@Language.factory(
    "cortex_ner",
    assigns=["doc.ents", "doc.spans", "span._.cortex_score"],
    default_config={
        "labels": None, "prompt": None, "label": None, "template": None,
        "threshold": SPAN_THRESHOLD, "spans_key": None, "upstream": "cortex",
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0},
)
def make_cortex_ner(
    nlp: Language,
    name: str,
    labels: Union[List[str], Dict[str, str], None],
    prompt: Optional[str],
    label: Optional[str],
    template: Optional[str],
    threshold: float,
    spans_key: Optional[str],
    upstream: str,
) -> CortexTask:
    """Zero-shot NER: each label is found by its own prompt.

    labels: list of labels (prompt from `template`) or {label: prompt}.
    prompt + label: the short form for a single entity type.
    template: prompt template with {label} (default in templates/tasks.json).
    threshold: minimum per-word probability of being inside an entity.
    spans_key: None writes Doc.ents (overlaps resolved by score, existing ents kept);
        a key writes Doc.spans[key] keeping every span.
    upstream: name of the cortex component (added if missing).
    """
    build = lambda: make_ner_task(labels, prompt, label, template, threshold, spans_key)
    return make_task_component(nlp, name, upstream, build)
