"""cortex_ner: zero-shot entity recognition, one prompt per label."""
import re
import warnings
import weakref
from collections import defaultdict
from itertools import permutations
from typing import Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example

from .core.decoding import SPAN_EXTEND_THRESHOLD, SPAN_THRESHOLD, SPAN_WINDOW, check_thresholds, check_window, threshold_spans
from .pipeline import CortexTask, LabelPromptTask, make_span, make_task_component
from .registry import tasks
from .templates import label_prompts, label_words, task_template, with_article

Subtypes = FrozenSet[Tuple[str, str]]


class NERTask(LabelPromptTask):
    def __init__(self, prompts: Dict[str, str], threshold: float, spans_key: Optional[str],
                 prefer_specific: bool = True, window: Optional[int] = SPAN_WINDOW,
                 extend_threshold: Optional[float] = SPAN_EXTEND_THRESHOLD,
                 named: Optional[FrozenSet[str]] = None):
        """named: the labels whose prompts the template made from their names (None: all);
        prefer_specific judges only these, since a label given with a prompt of its own may
        be a code ("C1", "B-PER")."""
        check_thresholds(threshold, extend_threshold)
        check_window(window)
        super().__init__(prompts, threshold)
        self.extend_threshold = extend_threshold
        self.window = window
        self.spans_key = spans_key
        self.prefer_specific = prefer_specific
        self.named = named
        self.subtypes: Subtypes = frozenset()
        self._judged_by: Optional[weakref.ref] = None  # the model that judged self.subtypes

    def __getstate__(self) -> dict:
        # A weak reference does not pickle; an unpickled task judges again on first use.
        return dict(self.__dict__, _judged_by=None)

    def prepare(self, model) -> None:
        judged = [label for label in self.labels if self.named is None or label in self.named]
        needed = self.prefer_specific and self.spans_key is None and len(judged) > 1
        if needed and (self._judged_by is None or self._judged_by() is not model):
            self.subtypes = label_subtypes(judged, model)
            self._judged_by = weakref.ref(model)  # the pipeline holds the model once, in cortex

    def training_records(self, reference: Doc) -> List[dict]:
        return extraction_records(reference.text, self.gold_spans(reference), self.label_prompts)

    def gold_spans(self, reference: Doc) -> List[Span]:
        if self.spans_key is None:
            return list(reference.ents)
        return list(reference.spans.get(self.spans_key, []))

    def find_spans(self, doc: Doc, results) -> List[Span]:
        """The labels' threshold spans on the doc's tokens; a span the tokens cannot hold
        without mostly text the model did not mark goes to Doc.spans[UNALIGNED_KEY]."""
        spans, unaligned = [], []
        for label in self.labels:
            for found in threshold_spans(results[self.label_prompts[label]], self.threshold, self.extend_threshold):
                span = make_span(doc, found.start_char, found.end_char, label, found.score, min_marked=MIN_MARKED)
                if span is None:
                    unaligned.append(make_span(doc, found.start_char, found.end_char, label, found.score))
                    warn_unaligned(doc, found.start_char, found.end_char, unaligned[-1])
                else:
                    spans.append(span)
        if unaligned:
            doc.spans[UNALIGNED_KEY] = sorted(unaligned, key=lambda s: (s.start, s.end, s.label_))
        return spans

    def apply(self, doc: Doc, results) -> None:
        detach_invisible(doc)
        spans = self.find_spans(doc, results)
        if self.spans_key is not None:
            doc.spans[self.spans_key] = sorted(spans, key=lambda s: (s.start, s.end, s.label_))
            return
        blocked = blocked_spans(doc)
        closed = {i for span in blocked for i in range(span.start, span.end)}
        free = [span for span in spans if closed.isdisjoint(range(span.start, span.end))]
        doc.set_ents(resolve_overlaps(free + list(doc.ents), self.subtypes), blocked=blocked)

    def score(self, examples: Iterable[Example]) -> Dict[str, float]:
        if self.spans_key is None:
            return Scorer.score_spans(examples, "ents")
        return Scorer.score_spans(
            examples, f"spans_{self.spans_key}",
            getter=lambda doc, key: doc.spans.get(self.spans_key, []),
            has_annotation=lambda doc: self.spans_key in doc.spans,
            allow_overlap=True,  # spans mode keeps overlapping spans of several labels
        )


def extraction_records(text: str, gold: Sequence[Span], prompts: Dict[str, str]) -> List[dict]:
    """One training record per (label, prompt): the gold spans of that label (none: a negative)."""
    return [
        {"prompt": prompt, "context": text,
         "spans": [(s.start_char, s.end_char) for s in gold if s.label_ == label]}
        for label, prompt in prompts.items()
    ]


# The least share of a span's visible characters the model must have marked for the span to
# be written over whole spaCy tokens: below it the tokens are far larger than the entity (a
# whole CJK clause read as one token by a whitespace tokenizer) and labelling them would
# label text the model did not mark. Half: an entity is never mostly unmarked text.
MIN_MARKED = 0.5
UNALIGNED_KEY = "cortex_unaligned"
_warned_unaligned = set()  # languages warned about, once each per process


def warn_unaligned(doc: Doc, start_char: int, end_char: int, span: Span) -> None:
    """Warn, once per language, that the tokenizer cannot hold an entity the model found."""
    lang = doc.lang_
    if lang in _warned_unaligned:
        return
    _warned_unaligned.add(lang)
    warnings.warn(
        f"cortex_ner found {span.label_} {doc.text[start_char:end_char]!r} (characters {start_char}-{end_char}) "
        f"inside the spaCy token(s) {span.text[:60]!r}, mostly text it did not mark: the {lang!r} tokenizer "
        f"does not split the text there (CJK text with a whitespace tokenizer makes a clause one token), so "
        f"such spans go to Doc.spans[{UNALIGNED_KEY!r}] (the whole tokens) instead of Doc.ents. A tokenizer "
        f"for the text's language (spacy.blank('ja'), 'zh') avoids it. Warned once per language.",
        stacklevel=2)


def blocked_spans(doc: Doc) -> List[Span]:
    """Runs of tokens an earlier component blocked (`Doc.set_ents(blocked=...)`: ent_iob 3
    without an entity type), which no entity may cover (as spaCy's own `ner` keeps them)."""
    closed = [token.i for token in doc if token.ent_iob == 3 and token.ent_type == 0]
    runs = []
    for i in closed:
        if runs and runs[-1][1] == i:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [doc[start:end] for start, end in runs]


# Format characters (Unicode Cf) a text may carry at a word's edge: soft hyphen, zero-width
# space / joiners / marks, word joiner, byte-order mark.
_INVISIBLE = "[\u00ad\u200b-\u200f\u2060-\u2064\ufeff]"
_EDGE_INVISIBLE = re.compile(f"(^{_INVISIBLE}+|{_INVISIBLE}+$)")


def detach_invisible(doc: Doc) -> None:
    """Split format characters off the edges of tokens ("\ufeffEmma" -> "\ufeff" "Emma"), the
    text unchanged, so that an entity need not hold them; the model never reads them. A doc
    without such a character is left as it is after one search of its text."""
    if not re.search(_INVISIBLE, doc.text):
        return
    cuts = []
    for token in doc:
        pieces = [piece for piece in _EDGE_INVISIBLE.split(token.text) if piece]
        if len(pieces) > 1:
            cuts.append((token, pieces))
    if not cuts:
        return
    with doc.retokenize() as retokenizer:
        for token, pieces in cuts:
            retokenizer.split(token, pieces, heads=[(token, 0)] * len(pieces))


# How much more strongly "a ⇒ b" must be judged than "b ⇒ a" for label a to be a kind of
# label b. Chosen on the CrossNER dev sets in a one-off sweep over `tune`'s NER functions at 0.85 / 0.7
# (cortex-mini-en v3, average F1: 36.8 at 0, 36.9 at 0.1, 36.6 at 0.2, 36.5 at 0.3; the
# earlier rule, "the reverse at or below 0.5", 33.6; WNUT-17 dev 48.3 for every margin, 48.5
# for the earlier rule); a margin also keeps near-ties apart ("city ⇒ country" 0.84 against
# 0.79 made every country a city).
SUBTYPE_MARGIN = 0.1


def label_subtypes(labels: Sequence[str], model) -> Subtypes:
    """(a, b) pairs where label a is a kind of label b, as the model's own NLI judges it:
    "This is a writer." implies "This is a person." (P(entailment) > 0.5) by more than
    SUBTYPE_MARGIN over the reverse (the model gives "a person is a writer" 0.58)."""
    template = task_template("label_statement")
    statements = {label: template.format(label=with_article(label_words(label))) for label in labels}
    pairs = list(permutations(labels, 2))
    from . import api  # torch: loaded once a model runs

    probs = api.entail([statements[a] for a, _ in pairs], [statements[b] for _, b in pairs], model=model)
    entailment = {pair: p["entailment"] for pair, p in zip(pairs, probs)}
    return frozenset(pair for pair in pairs
                     if entailment[pair] > 0.5 and entailment[pair] - entailment[pair[::-1]] > SUBTYPE_MARGIN)


def _rank(span: Span):
    score = span._.cortex_score
    return (-(score if score is not None else 2.0), span.start, -span.end, span.label_)


def resolve_overlaps(spans: List[Span], subtypes: Subtypes = frozenset()) -> List[Span]:
    """Keep the highest-scoring span of each overlapping group (entities already on the
    doc, without a cortex score, win); ties broken by position and label, never by the
    order labels were given in. Where several labels found exactly the kept span, the most
    specific of them wins (`subtypes`: a writer rather than a person)."""
    taken = set()
    kept = []
    for span in sorted(spans, key=_rank):
        if not taken.intersection(range(span.start, span.end)):
            kept.append(span)
            taken.update(range(span.start, span.end))
    if subtypes:
        found_on = defaultdict(list)
        for span in spans:
            if span._.cortex_score is not None:
                found_on[span.start, span.end].append(span)
        kept = [most_specific(span, found_on[span.start, span.end], subtypes) for span in kept]
    return sorted(kept, key=lambda s: s.start)


def most_specific(span: Span, rivals: List[Span], subtypes: Subtypes) -> Span:
    """The best-ranked of the rivals no other rival is a kind of; `span` itself if it has
    no rivals (an existing entity) or the labels' judgements form a cycle."""
    specific = [s for s in rivals if not any((o.label_, s.label_) in subtypes for o in rivals)]
    return min(specific, key=_rank) if specific and span in rivals else span


@tasks.register("spacy_cortex.NER.v1")
def make_ner_task(
    labels: Union[List[str], Dict[str, str], None] = None,
    prompt: Optional[str] = None,
    label: Optional[str] = None,
    template: Optional[str] = None,
    threshold: float = SPAN_THRESHOLD,
    spans_key: Optional[str] = None,
    prefer_specific: bool = True,
    window: Optional[int] = SPAN_WINDOW,
    extend_threshold: Optional[float] = SPAN_EXTEND_THRESHOLD,
) -> NERTask:
    if prompt is not None or label is not None:
        if labels:
            raise ValueError("Give either `labels` or `prompt` + `label`, not both")
        if not prompt or not label:
            raise ValueError("The short form needs both `prompt` and `label`")
        labels = {label: prompt}
    prompts = label_prompts(labels, template, "ner")
    made = task_template("ner") if template is None else template
    named = frozenset(label for label, text in prompts.items() if text == made.format(label=label_words(label)))
    return NERTask(prompts, threshold, spans_key, prefer_specific, window, extend_threshold, named)


@Language.factory(
    "cortex_ner",
    assigns=["doc.ents", "doc.spans", "span._.cortex_score"],
    default_config={
        "labels": None, "prompt": None, "label": None, "template": None,
        "threshold": SPAN_THRESHOLD, "extend_threshold": SPAN_EXTEND_THRESHOLD, "spans_key": None,
        "prefer_specific": True, "window": SPAN_WINDOW,
        "upstream": "cortex",
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
    extend_threshold: Optional[float],
    spans_key: Optional[str],
    prefer_specific: bool,
    window: Optional[int],
    upstream: str,
) -> CortexTask:
    """Zero-shot NER: each label is found by its own prompt.

    labels: list of labels (prompt from `template`) or {label: prompt}.
    prompt + label: the short form for a single entity type.
    template: prompt template with {label} (default in templates/tasks.json).
    threshold: a span needs a word whose probability of being inside an entity reaches
        this (default 0.85, chosen on the CrossNER dev sets).
    extend_threshold: a span extends over its neighbouring words down to this probability
        (default 0.7; null, or a value at or above `threshold`: every word must reach
        `threshold`), so that a first name or the word of a long name the model is less
        sure of stays in the span.
    spans_key: None writes Doc.ents (overlaps resolved by score, existing ents kept);
        a key writes Doc.spans[key] keeping every span.
    prefer_specific: when several labels find exactly the same span in Doc.ents, the label
        that is a kind of the others wins ("writer" over "person"), as the model's own NLI
        judges "This is a writer." against "This is a person." (label names read as in
        prompts; a implies b by a margin over b implies a). Judged once per model for all
        label pairs, when the first batch is decoded (a model fine-tuned in place keeps that
        first judgement). Labels given with prompts of their own ({label: prompt}, other than
        the template's) are not judged: their names may be codes.
    window: the most text sub-tokens each prompt reads at once (default 64; null: as many
        as the cortex model's max_length leaves). A long text is read in overlapping windows
        of about this size, cut at sentence ends; shorter windows find more of the entities
        of a long paragraph than the 384-token inputs QA uses (see the model card). A prompt
        that another component of the pipeline also asks is read once, in the shorter of
        the two windows (with a warning naming both).
    upstream: name of the cortex component (added if missing).
    """
    build = lambda: make_ner_task(labels, prompt, label, template, threshold, spans_key, prefer_specific, window,
                                  extend_threshold)
    return make_task_component(nlp, name, upstream, build)
