"""cortex_verify: the cortex model checks what other components proposed.

An upstream component (spacy-llm's `llm`, an `entity_ruler`, a trained `ner`,
`cortex_textcat` or a trained `textcat`) proposes entities and categories; cortex_verify
asks the cortex model, with the same prompts cortex_ner and cortex_textcat run, whether each
one holds in this text, and keeps only those it confirms: the large or rule-based model
proposes, the small scorer verifies (the second use of Cappy, Tan et al. 2023).
"""
from typing import Dict, Iterable, List, Optional, Union

from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from .core.decoding import span_probability, yes_probability
from .ner import extraction_records
from .pipeline import CortexTask, Task, make_task_component, set_span_score
from .registry import tasks
from .templates import check_template, label_prompts

REJECTED_KEY = "cortex_rejected"
CAT_SCORES_ATTR = "cortex_cat_scores"
REJECTED_CATS_ATTR = "cortex_rejected_cats"


def install_extensions() -> None:
    for name in (CAT_SCORES_ATTR, REJECTED_CATS_ATTR):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


class VerifyTask(Task):
    """Scores each upstream entity by the mean inside-probability of its words under its
    label's NER prompt (one pass per label and doc, shared by all its spans), and each
    assigned category by P(yes) of its textcat prompt."""

    def __init__(self, labels: Optional[Dict[str, str]], template: Optional[str], threshold: float,
                 cats: bool, cats_template: Optional[str], cats_threshold: float, rejected_key: str):
        for name, value in (("threshold", threshold), ("cats_threshold", cats_threshold)):
            if not 0.0 < value < 1.0:
                raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value}")
        if not rejected_key.strip():
            raise ValueError("rejected_key must be a non-empty Doc.spans key")
        self.fixed = labels  # None: every label, worded by label_words
        self.template, self.cats_template = template, cats_template
        self.threshold, self.cats_threshold = threshold, cats_threshold
        self.cats = cats
        self.rejected_key = rejected_key
        self._prompts: Dict[tuple, str] = {}

    @property
    def labels(self) -> List[str]:
        return sorted(self.fixed or [])

    def checks(self, label: str) -> bool:
        return self.fixed is None or label in self.fixed

    def prompt(self, label: str, task: str) -> str:
        """The prompt cortex_ner / cortex_textcat would run for this label (cached)."""
        key = (label, task)
        if key not in self._prompts:
            if task == "ner" and self.fixed is not None:
                self._prompts[key] = self.fixed[label]
            else:
                template = self.template if task == "ner" else self.cats_template
                self._prompts[key] = label_prompts([label], template, task)[label]
        return self._prompts[key]

    def proposed_cats(self, doc: Doc) -> List[str]:
        return sorted(c for c, v in doc.cats.items() if v >= 0.5) if self.cats else []

    def prompts(self, doc: Doc) -> List[str]:
        ner = {self.prompt(e.label_, "ner") for e in doc.ents if self.checks(e.label_)}
        return sorted(ner | {self.prompt(c, "textcat") for c in self.proposed_cats(doc)})

    def apply(self, doc: Doc, results) -> None:
        kept, rejected = [], []
        for ent in doc.ents:
            if not self.checks(ent.label_):
                kept.append(ent)
                continue
            score = span_probability(results[self.prompt(ent.label_, "ner")], ent.start_char, ent.end_char)
            set_span_score(ent, score)
            (kept if score >= self.threshold else rejected).append(ent)
        doc.set_ents(kept, default="outside")
        doc.spans[self.rejected_key] = list(rejected) + list(doc.spans.get(self.rejected_key, []))
        if self.cats:
            self.apply_cats(doc, results)

    def apply_cats(self, doc: Doc, results) -> None:
        scores = {c: yes_probability(results[self.prompt(c, "textcat")]) for c in self.proposed_cats(doc)}
        rejected = {c: s for c, s in scores.items() if s < self.cats_threshold}
        doc.cats.update({c: 0.0 for c in rejected})
        doc._.set(CAT_SCORES_ATTR, scores)
        doc._.set(REJECTED_CATS_ATTR, rejected)

    def training_records(self, reference: Doc) -> List[dict]:
        labels = sorted({e.label_ for e in reference.ents if self.checks(e.label_)} | set(self.labels))
        return extraction_records(reference.text, list(reference.ents),
                                  {label: self.prompt(label, "ner") for label in labels})

    def score(self, examples: Iterable[Example]) -> Dict[str, float]:
        return Scorer.score_spans(examples, "ents")


@tasks.register("spacy_cortex.Verify.v1")
def make_verify_task(
    labels: Union[List[str], Dict[str, str], None] = None,
    template: Optional[str] = None,
    threshold: float = 0.5,
    cats: bool = False,
    cats_template: Optional[str] = None,
    cats_threshold: float = 0.5,
    rejected_key: str = REJECTED_KEY,
) -> VerifyTask:
    fixed = label_prompts(labels, template, "ner") if labels else None
    for given in (template, cats_template):  # checked now, not on the first doc
        if given is not None:
            check_template(given)
    return VerifyTask(fixed, template, threshold, cats, cats_template, cats_threshold, rejected_key)


@Language.factory(
    "cortex_verify",
    assigns=["doc.ents", "doc.spans", "doc.cats", "span._.cortex_score",
             f"doc._.{CAT_SCORES_ATTR}", f"doc._.{REJECTED_CATS_ATTR}"],
    default_config={
        "labels": None, "template": None, "threshold": 0.5, "cats": False, "cats_template": None,
        "cats_threshold": 0.5, "rejected_key": REJECTED_KEY, "upstream": "cortex",
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0},
)
def make_cortex_verify(
    nlp: Language,
    name: str,
    labels: Union[List[str], Dict[str, str], None],
    template: Optional[str],
    threshold: float,
    cats: bool,
    cats_template: Optional[str],
    cats_threshold: float,
    rejected_key: str,
    upstream: str,
) -> CortexTask:
    """Verify the entities (and optionally the categories) earlier components put on the doc.

    Place it after the components that propose (`llm`, `entity_ruler`, `ner`, `textcat`).
    labels: None (default) checks every entity label, asked with `template` and the label as
        words (ORG -> "organization", as cortex_ner); a list checks only those labels, a
        {label: prompt} dict asks with its own prompts. Labels not checked stay as they are.
    template: NER prompt template with {label} (default: cortex_ner's).
    threshold: an entity whose words' mean inside-probability under its label's prompt is
        below this leaves Doc.ents for Doc.spans[rejected_key]; every checked entity gets
        `Span._.cortex_score` (kept and rejected alike).
    cats: also verify Doc.cats: each category scored >= 0.5 upstream gets P(yes) of its
        textcat prompt (`cats_template`, default cortex_textcat's) in doc._.cortex_cat_scores;
        below `cats_threshold` its Doc.cats value is set to 0.0 and it is listed with its
        score in doc._.cortex_rejected_cats.
    rejected_key: the Doc.spans key for rejected entities.
    upstream: name of the cortex component (added if missing).
    """
    install_extensions()
    build = lambda: make_verify_task(labels, template, threshold, cats, cats_template, cats_threshold,
                                     rejected_key)
    return make_task_component(nlp, name, upstream, build)
