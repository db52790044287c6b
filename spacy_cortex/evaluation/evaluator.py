"""The evaluator: one spaCy pipeline with the shared `cortex` component, to which each set adds
its task component; the label names of the sets (templates/eval_labels.json) and the seeded
subsets every set takes."""
import json
import random
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

import numpy as np
import spacy
from spacy.tokens import Doc

from .. import qa as qa_module
from ..core.decoding import classification_probs
from ..templates import TEMPLATES_DIR

SEED = 0
EVAL_LABELS_PATH = TEMPLATES_DIR / "eval_labels.json"


@lru_cache(maxsize=1)
def eval_labels() -> dict:
    return json.loads(EVAL_LABELS_PATH.read_text(encoding="utf-8"))


def ner_label_names(scheme: str, labels: Iterable[str]) -> Dict[str, str]:
    """{dataset label: natural-language name} for the labels of a set (KeyError if one has
    no name in eval_labels.json)."""
    names = eval_labels()["ner"][scheme]["labels"]
    missing = sorted(set(labels) - set(names))
    if missing:
        raise KeyError(f"No prompt name for {scheme} labels {missing} in {EVAL_LABELS_PATH}")
    return {label: names[label] for label in sorted(labels)}


def subset(rows: Sequence, n: int) -> list:
    """n rows chosen by a seeded shuffle, kept in file order; nested across n."""
    rows = list(rows)
    if n >= len(rows):
        return rows
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    return [rows[i] for i in sorted(order[:n])]


class Evaluator:
    """One spaCy pipeline with the shared `cortex` component; task components are added
    per set, run, and removed again."""

    def __init__(self, raw_dir: Path, checkpoint: str, precision: str = "bf16", scale: float = 1.0,
                 ner_config: Optional[Dict[str, object]] = None):
        self.raw = Path(raw_dir)
        self.scale = scale
        self.ner_config = dict(ner_config or {})  # cortex_ner settings on the NER sets (default: its defaults)
        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), "precision": precision}})
        self.model = self.nlp.get_pipe("cortex").model
        qa_module.install_extensions()

    def n(self, default: int) -> int:
        return max(1, int(round(default * self.scale)))

    def rows(self, rows: Sequence, default: int) -> list:
        return subset(rows, self.n(default))

    def run_component(self, factory: str, config: dict, docs: Sequence[Doc]) -> List[Doc]:
        name = f"eval_{factory}"
        self.nlp.add_pipe(factory, name=name, config=config)
        try:
            return list(self.nlp.pipe(docs, batch_size=64))
        finally:
            self.nlp.remove_pipe(name)

    def words_doc(self, words: List[str], tags: Optional[List[str]] = None) -> Doc:
        return Doc(self.nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False], ents=tags)

    @cached_property
    def biencoder(self):
        """The untrained backbone, all-MiniLM-L6-v2, as the bi-encoder sentence-transformers
        makes of it (its modules.json: mean pooling over every token, then L2 normalization,
        which CortexModel.embed of the last layer is), in fp32; None when the `train` extra
        (the backbone's weights) is not installed. Not sentence-transformers itself: its
        releases that know transformers 4 refuse transformers 5."""
        from ..core.model import CortexModel
        from ..training.backbone import BackboneError, backbone_path

        try:
            model = CortexModel.from_base(backbone_path(), precision="fp32", device="cpu")
        except BackboneError:
            return None
        return model

    def biencoder_choice(self, queries: Sequence[str], options: Sequence[Sequence[str]]) -> Optional[List[int]]:
        """Per query, the index of its most cosine-similar option (None without the bi-encoder)."""
        if self.biencoder is None:
            return None
        flat = sorted({o for opts in options for o in opts})
        vectors = dict(zip(flat, self.biencoder.embed(flat, layer=-1)))
        embedded = self.biencoder.embed(list(queries), layer=-1)
        return [int(np.argmax([q @ vectors[o] for o in opts])) for q, opts in zip(embedded, options)]

    def cls_probs(self, prompt: str, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) [CLS] probabilities of one classification prompt over many texts."""
        return np.stack([classification_probs(r) for r in self.model.run_texts((prompt, t) for t in texts)])


def rename_tag(tag: str, names: Dict[str, str]) -> str:
    return tag if tag == "O" else f"{tag[:2]}{names[tag[2:]]}"
