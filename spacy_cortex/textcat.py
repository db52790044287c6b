"""cortex_textcat: zero-shot text classification, one yes/no prompt per label."""
import weakref
from typing import Dict, Iterable, List, Optional, Sequence, Union

import numpy as np
from spacy.language import Language
from spacy.scorer import Scorer
from spacy.tokens import Doc
from spacy.training import Example

from .core.decoding import label_scores, yes_probability
from .pipeline import CortexTask, LabelPromptTask, make_task_component
from .registry import tasks
from .templates import check_none_label, label_prompts, label_words


class TextCatTask(LabelPromptTask):
    def __init__(self, prompts: Dict[str, str], exclusive: bool, threshold: float,
                 none_label: Optional[str] = None, shortlist: int = 0):
        super().__init__(prompts, threshold)
        check_none_label(none_label, prompts)
        if isinstance(shortlist, bool) or not isinstance(shortlist, int) or shortlist < 0:
            raise ValueError(f"shortlist must be a whole number >= 0 (0: every label), got {shortlist!r}")
        self.exclusive = exclusive
        self.none_label = none_label
        self.shortlist = shortlist
        self._label_vectors = None  # (model ref, weights version, (labels, hidden) array)
        self._shortlists: Dict[str, List[str]] = {}  # text -> labels, for the current batch

    def __getstate__(self) -> dict:
        return dict(self.__dict__, _label_vectors=None)  # a weak reference does not pickle

    @property
    def shortlisting(self) -> bool:
        return 0 < self.shortlist < len(self.label_prompts)

    def batch_prompts(self, docs: Sequence[Doc], model) -> List[List[str]]:
        """Every label's prompt; with a shortlist of k, only the prompts of the k labels
        whose words are closest to the text (cosine of CortexModel.embed vectors: one pass
        of the text alone instead of one per label)."""
        if not self.shortlisting:
            return super().batch_prompts(docs, model)
        texts = [doc.text for doc in docs]
        known = {t: self._shortlists[t] for t in texts if t in self._shortlists}  # fill_missing asks again
        new = [t for t in dict.fromkeys(texts) if t not in known]
        if new:
            labels = sorted(self.label_prompts)
            similarity = model.embed(new) @ self.label_vectors(model, labels).T
            top = np.argsort(-similarity, axis=1, kind="stable")[:, : self.shortlist]
            known.update({t: [labels[i] for i in row] for t, row in zip(new, top)})
        self._shortlists = known
        return [[self.label_prompts[label] for label in known[t]] for t in texts]

    def label_vectors(self, model, labels: List[str]) -> np.ndarray:
        """(labels, hidden) embeddings of the labels as words, cached per model and weights."""
        cached = self._label_vectors
        from .core.model import weights_version  # torch: loaded once a model runs

        version = weights_version(model.hf_model)
        if cached is None or cached[0]() is not model or cached[1] != version:
            self._label_vectors = cached = (weakref.ref(model), version, model.embed([label_words(l) for l in labels]))
        return cached[2]

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
        """doc.cats from each label's P(yes); a blank doc scores 0 (none_label 1), the rule
        of decoding.label_scores that api.classify follows too."""
        # a label left out by the shortlist was not asked: P(yes) = 0
        yes = np.array([yes_probability(results[prompt]) if prompt in results or not self.shortlisting else 0.0
                        for prompt in (self.label_prompts[label] for label in sorted(self.label_prompts))])
        probs = label_scores(doc.text, yes, self.exclusive, none_of_these=self.none_label is not None)
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
    shortlist: int = 0,
) -> TextCatTask:
    return TextCatTask(label_prompts(labels, template, "textcat"), exclusive, threshold, none_label, shortlist)


@Language.factory(
    "cortex_textcat",
    assigns=["doc.cats"],
    default_config={
        "labels": None, "template": None, "exclusive": True, "threshold": 0.5,
        "none_label": None, "shortlist": 0, "upstream": "cortex",
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
    shortlist: int,
    upstream: str,
) -> CortexTask:
    """Zero-shot text classification: P(label applies) from one prompt per label.

    labels: list of labels (prompt from `template`) or {label: prompt}.
    template: prompt template with {label} (default "Is this text about {label}?").
    exclusive: True normalizes over labels (one label per text); False scores each
        label independently (multi-label). A single label is a yes/no question either
        way: its score is P(yes), not 1.0. A blank doc (empty, whitespace or invisible
        format characters only) scores 0 for every label (and 1 for none_label), as
        spacy_cortex.classify does (core.decoding.label_scores).
    threshold: decision threshold used when scoring multi-label output.
    none_label: a category name (e.g. "none") for "none of these": its score is the
        probability that no label applies (each label judged alone); exclusive labels
        share the rest. None (default): no such category.
    shortlist: 0 (default) asks every label. k > 0 asks only the k labels closest to the
        text (one pass of the text alone ranks the labels by the cosine of their
        embeddings, CortexModel.embed); the others score 0. For many labels: k passes per
        doc instead of one per label. Measured in benchmarks/README.md ("Many labels").
    upstream: name of the cortex component (added if missing).
    """
    build = lambda: make_textcat_task(labels, template, exclusive, threshold, none_label, shortlist)
    return make_task_component(nlp, name, upstream, build)
