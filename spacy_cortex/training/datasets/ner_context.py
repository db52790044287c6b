"""Multi-sentence NER contexts: runs of 2 to JOIN_MAX consecutive sentences of one document
joined by single spaces, their spans shifted, so that the model also reads paragraphs whose
sentences do not stand on lines of their own ("Barack Obama visited Paris . Angela Merkel met
him in Berlin ."): trained on single sentences only, its recall fell on such text.

A set is split into runs of sentences that may be joined (`conll_runs`); in each run, a
sentence starts a joined context with probability JOIN_RATE when at least one more sentence
follows it in the run, the context's length drawn uniformly from 2 .. min(JOIN_MAX, sentences
left); every sentence is in exactly one context, and the others stay single sentences. Only
running text is joined, so the share is smaller than JOIN_RATE: most CoNLL-2003 lines are
headlines, datelines, tables and score lines (6,152 of the 14,041 train sentences are in runs of
2 or more), and about 11% of its contexts are joined (1,247 of 11,415 in train).

Only sets whose sentences keep their document order are joined: CoNLL-2003. This copy has no
-DOCSTART- lines; a Reuters document opens with a headline, an optional byline and a dateline
("BRUSSELS 1996-08-22"), which `front_matter` finds (919 of the 946 train documents have a
dateline; a document without one can be joined to its predecessor's last sentences). The other
converted sets are not in document order or have no documents: Few-NERD here is a random
sample of INTER train, MultiCoNER II has independent sentences and queries, WNUT-16/17 and
HarveyNER are single tweets, GUM's train file is shuffled across documents, Pile-NER rows are
passages already.
"""
import re
from collections import defaultdict
from random import Random
from typing import Iterable, Iterator, List, Sequence, Set, Tuple

from ...corpus.readers import Sentence, Spans
from ..leakage import is_eval_text

JOIN_RATE = 0.4
JOIN_MAX = 5
DATELINE = re.compile(r"\d{4}-\d\d-\d\d")  # the last token of a Reuters dateline
DATELINE_TOKENS = 8  # a dateline is short: "AKRON , Ohio 1996-08-22"
CLOSERS = "'\") "  # closing quotes and brackets after a sentence's final punctuation (tokenized text)


def prose(text: str) -> bool:
    """Whether a sentence ends like running text (. ? ! before closing quotes): not a table row,
    score line, byline or headline without a full stop."""
    return text.rstrip(CLOSERS).endswith((".", "?", "!"))


def front_matter(texts: Sequence[str]) -> Set[int]:
    """Indices of CoNLL-2003 document front matter: each dateline (a short sentence ending in a
    date), the byline before it if there is one (no final punctuation) and the headline before
    that. They open a document, so no joined context goes across them."""
    front: Set[int] = set()
    for i, text in enumerate(texts):
        tokens = text.split(" ")
        if len(tokens) > DATELINE_TOKENS or not DATELINE.fullmatch(tokens[-1]):
            continue
        front.add(i)
        j = i - 1
        if j >= 0 and not prose(texts[j]):  # a byline: "Peter Blackburn"
            front.add(j)
            j -= 1
        if j >= 0:
            front.add(j)
    return front


def conll_runs(sentences: Sequence[Sentence], min_tokens: int) -> Iterator[List[Sentence]]:
    """The sentences of one CoNLL-2003 file, in order, as runs that may be joined: consecutive
    body sentences of running text of at least `min_tokens` tokens that are no EVAL text (the
    leakage guard only sees whole contexts); every other sentence is a run of its own."""
    front = front_matter([text for text, _, _ in sentences])
    run: List[Sentence] = []
    for i, sentence in enumerate(sentences):
        text, _, n_tokens = sentence
        if i not in front and n_tokens >= min_tokens and prose(text) and not is_eval_text(text):
            run.append(sentence)
            continue
        if run:
            yield run
            run = []
        yield [sentence]
    if run:
        yield run


def join(sentences: Iterable[Sentence]) -> Tuple[str, Spans]:
    """Sentences joined by single spaces, each one's spans shifted by its offset."""
    text, spans = "", defaultdict(list)
    for sentence, sentence_spans, _ in sentences:
        offset = len(text) + 1 if text else 0
        text = f"{text} {sentence}" if text else sentence
        for kind, lst in sentence_spans.items():
            spans[kind] += [[s + offset, e + offset] for s, e in lst]
    return text, dict(spans)


def joined_contexts(runs: Iterable[List[Sentence]], rng: Random, rate: float = JOIN_RATE,
                    max_size: int = JOIN_MAX) -> Iterator[Tuple[str, Spans]]:
    """(context, spans) for every sentence of the runs: single sentences, and with probability
    `rate` at each sentence that has a successor in its run, 2 .. max_size of them joined."""
    for run in runs:
        i = 0
        while i < len(run):
            left = len(run) - i
            size = rng.randint(2, min(max_size, left)) if left >= 2 and rng.random() < rate else 1
            yield join(run[i:i + size])
            i += size
