"""cortex_textcat: zero-shot text classification, one yes/no prompt per label."""
from typing import Dict, Iterable, List, Optional, Union

import numpy as np
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from .decoding import label_distribution, yes_probability
from .pipeline import CortexTask, LabelPromptTask, make_task_component
from .registry import tasks
from .templates import check_none_label, label_prompts


class TextCatTask(LabelPromptTask):
    def __init__(self, prompts: Dict[str, str], exclusive: bool, threshold: float,
                 none_label: Optional[str] = None):
        super().__init__(prompts, threshold)
        check_none_label(none_label, prompts)
        self.exclusive = exclusive
        self.none_label = none_label

    @property
    def labels(self) -> List[str]:
        return super().labels + ([self.none_label] if self.none_label else [])

    def training_records(self, reference: Doc) -> List[dict]:
        return [
            {"prompt": prompt, "context": reference.text,
             "cls": "positive" if reference.cats[label] >= 0.5 else "negative", "spans": None}
            for label, prompt in self.label_prompts.items()
            if label in reference.cats
        ]

    def apply(self, doc: Doc, results) -> None:
        asked = sorted(self.label_prompts)
        yes = np.array([yes_probability(results[self.label_prompts[label]]) for label in asked])
        probs = label_distribution(yes, self.exclusive, none_of_these=self.none_label is not None)
        doc.cats.update({label: float(p) for label, p in zip(self.labels, probs)})

    def score(self, examples: Iterable[Example]) -> Dict[str, float]:
        return Scorer.score_cats(
            examples, "cats", labels=self.labels,
            multi_label=not self.exclusive, threshold=self.threshold,
        )


@tasks.register("spacy_cortex.TextCat.v1")
def make_textcat_task(
    labels: Union[List[str], Dict[str, str]],
    template: Optional[str] = None,
    exclusive: bool = True,
    threshold: float = 0.5,
    none_label: Optional[str] = None,
) -> TextCatTask:
    return TextCatTask(label_prompts(labels, template, "textcat"), exclusive, threshold, none_label)


@Language.factory(
    "cortex_textcat",
    assigns=["doc.cats"],
    default_config={
        "labels": None, "template": None, "exclusive": True, "threshold": 0.5,
        "none_label": None, "upstream": "cortex",
    },
    default_score_weights={"cats_score": 1.0},
)
def make_cortex_textcat(
    nlp: Language,
    name: str,
    labels: Union[List[str], Dict[str, str], None],
    template: Optional[str],
    exclusive: bool,
    threshold: float,
    none_label: Optional[str],
    upstream: str,
) -> CortexTask:
    """Zero-shot text classification: P(label applies) from one prompt per label.

    labels: list of labels (prompt from `template`) or {label: prompt}.
    template: prompt template with {label} (default "Is this text about {label}?").
    exclusive: True normalizes over labels (one label per text); False scores each
        label independently (multi-label). A single label is a yes/no question either
        way: its score is P(yes), not 1.0.
    threshold: decision threshold used when scoring multi-label output.
    none_label: a category name (e.g. "none") for "none of these": its score is the
        probability that no label applies (each label judged alone); exclusive labels
        share the rest. None (default): no such category.
    upstream: name of the cortex component (added if missing).
    """
    build = lambda: make_textcat_task(labels, template, exclusive, threshold, none_label)
    return make_task_component(nlp, name, upstream, build)
