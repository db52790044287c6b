"""What every converter shares: the unified record, the converter registry, prompt helpers
and the skipped-example counters. Converters (training/datasets/) and the CLI (convert.py)
import this module; it imports neither.

Record: {"task", "prompt", "context", "cls": positive|negative|neutral|None, "spans": [[s, e], ...] | None}
spans=None -> classification example (loss on [CLS] only); spans=list -> extraction example.
Records that answer one question together (a multiple-choice question's candidates, a
text's gold and sampled wrong labels) share a "group" number and stay next to each other in
the shuffled file, so that the trainer's listwise term (train.py --rank-weight) sees them.
"""
import hashlib
import random
import re
from collections import Counter
from pathlib import Path
from typing import Iterator, List, Optional, Sequence

import catalogue

from ..corpus.readers import read_json
from ..templates import TEMPLATES_DIR, strip_end

# name -> converter(raw_dir, templates, rng) -> Iterator[record]; filled by training/datasets/
converters = catalogue.create("spacy_cortex", "converters", entry_points=True)
TEMPLATES_PATH = TEMPLATES_DIR / "training_prompts.json"
POS, NEG, NEU = "positive", "negative", "neutral"
NLI_CLS = {"entailment": POS, "contradiction": NEG, "neutral": NEU, "not_entailment": NEG}
STATS: Counter = Counter()  # skipped-example counters, printed by the CLI


def load_templates(path: Path = TEMPLATES_PATH) -> dict:
    return read_json(path)


def record(task: str, prompt: str, context: str, cls: Optional[str] = None, spans=None) -> dict:
    if spans is not None:
        cls = POS if spans else NEG
    return {"task": task, "prompt": prompt, "context": context, "cls": cls, "spans": spans}


def fill(rng: random.Random, templates: Sequence[str], **kw) -> str:
    return rng.choice(templates).format(**kw)


def locate(context: str, answer: str, start: Optional[int] = None) -> Optional[List[int]]:
    """Char span of `answer` in `context` (trimmed); trusts `start` if it matches, else first occurrence."""
    answer = answer.strip()
    if not answer:
        return None
    if start is not None:
        # answer_start may point at leading whitespace of the raw answer text
        for s in (start, start + 1, start - 1):
            if 0 <= s and context[s:s + len(answer)] == answer:
                return [s, s + len(answer)]
    s = context.find(answer)
    return [s, s + len(answer)] if s >= 0 else None


def detok(text: str) -> str:
    """Undo PTB-style tokenization (SNLI): 'a , b .' -> 'a, b.'"""
    text = re.sub(r" ([.,!?;:%)])", r"\1", text.strip())
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
    return re.sub(r"([($]) ", r"\1", text)


def group_id(task: str, text: str) -> int:
    """A record group's number: 48 bits of a hash of its task and shared text, the same on
    every run (records of one group are also kept adjacent, so a rare collision between two
    groups only matters if the shuffle puts them side by side)."""
    return int.from_bytes(hashlib.blake2b(f"{task}\n{text}".encode(), digest_size=6).digest(), "big")


def label_prompts(task, text, gold, labels, names, tpl, rng, n_neg=2) -> Iterator[dict]:
    """Gold label -> positive example, `n_neg` sampled wrong labels -> negative examples,
    one group."""
    wrong = rng.sample([l for l in labels if l != gold], min(n_neg, len(labels) - 1))
    group = group_id(task, text)
    for label, cls in [(gold, POS)] + [(w, NEG) for w in wrong]:
        yield {**record(task, fill(rng, tpl, label=rng.choice(names[label])), text, cls), "group": group}


def nli_record(task, premise, hypothesis, label, templates, rng) -> dict:
    hyp = hypothesis.strip()
    prompt = fill(rng, templates["nli"], hypothesis=hyp, h=strip_end(hyp))
    return record(task, prompt, premise.strip(), NLI_CLS[label])


def qa_prompt(question, templates, rng) -> str:
    return question if rng.random() < templates["qa_raw_rate"] else fill(rng, templates["qa"], question=question)
