"""From model probabilities to answers: spans, best answer spans and [CLS] decisions."""
import unicodedata
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .encoding import NEGATIVE, NEUTRAL, POSITIVE, RequestResult


@dataclass(frozen=True)
class CharSpan:
    start_char: int
    end_char: int
    score: float

    def as_dict(self, text: str) -> dict:
        return {
            "text": text[self.start_char : self.end_char],
            "start_char": self.start_char,
            "end_char": self.end_char,
            "score": self.score,
        }


def _is_punctuation(text: str) -> bool:
    return all(unicodedata.category(c).startswith("P") for c in text)


def trim_punctuation(text: str, words: np.ndarray, lo: int, hi: int) -> Tuple[int, int]:
    """Drop punctuation-only words at the edges of the word range [lo, hi) when a space
    separates them from the rest ("( Reuters" -> "Reuters", but "U.S." keeps its dot).
    Returns an empty range (lo == hi) when only punctuation remains."""
    while lo < hi and _is_punctuation(text[words[lo, 0] : words[lo, 1]]) and (
        lo + 1 == hi or words[lo, 1] < words[lo + 1, 0]
    ):
        lo += 1
    while lo < hi and _is_punctuation(text[words[hi - 1, 0] : words[hi - 1, 1]]) and (
        lo == hi - 1 or words[hi - 2, 1] < words[hi - 1, 0]
    ):
        hi -= 1
    return lo, hi


def threshold_spans(result: RequestResult, threshold: float) -> List[CharSpan]:
    """Maximal runs of words whose inside-probability reaches the threshold, edge
    punctuation trimmed; a span's score is the mean inside-probability of its words."""
    inside = result.word_probs()[:, POSITIVE]
    words = result.encoded.word_spans
    spans = []
    start = None
    for i in range(len(inside) + 1):
        active = i < len(inside) and inside[i] >= threshold
        if active and start is None:
            start = i
        elif not active and start is not None:
            lo, hi = trim_punctuation(result.encoded.text, words, start, i)
            if lo < hi:
                score = float(inside[lo:hi].mean())
                spans.append(CharSpan(int(words[lo, 0]), int(words[hi - 1, 1]), score))
            start = None
    return spans


# Added to every word's inside log-odds before picking the answer span. Training gives the
# few answer tokens of a context half of its token loss, so the model over-states "inside"
# around the answer and the unbiased best span runs long; this offset corrects that prior.
# Chosen by `python -m spacy_cortex.tune` on SQuAD TRAIN questions held out of training
# (see the model card), not on any evaluation set.
ANSWER_LOG_ODDS_BIAS = -2.0

# Default per-word inside-probability for threshold spans (cortex_ner, api.extract): the
# lowest threshold within 0.5 F1 of the best on WNUT-17 dev (`python -m spacy_cortex.tune`:
# 54.3 at 0.7, 54.7 at 0.8), as prompts for unseen entity types score lower than trained ones.
SPAN_THRESHOLD = 0.7


def best_span(
    result: RequestResult, max_words: int = 30, bias: float = ANSWER_LOG_ODDS_BIAS
) -> Optional[CharSpan]:
    """The contiguous word range with the highest summed (bias-corrected) log-odds of
    being inside the answer (max-subarray, at most max_words long), edge punctuation
    trimmed; None for an empty context."""
    probs = result.word_probs()
    if not len(probs):
        return None
    eps = 1e-6
    log_odds = np.log(probs[:, POSITIVE] + eps) - np.log(probs[:, NEGATIVE] + eps) + bias
    words = result.encoded.word_spans
    # Prefix sums make every (start, length <= max_words) window O(1).
    prefix = np.concatenate([[0.0], np.cumsum(log_odds)])
    best = (-np.inf, 0, 1)
    n = len(log_odds)
    for length in range(1, min(max_words, n) + 1):
        sums = prefix[length:] - prefix[:-length]
        i = int(np.argmax(sums))
        if sums[i] > best[0]:
            best = (float(sums[i]), i, i + length)
    _, lo, hi = best
    trimmed = trim_punctuation(result.encoded.text, words, lo, hi)
    if trimmed[0] < trimmed[1]:  # a punctuation-only answer is kept as it is
        lo, hi = trimmed
    score = float(probs[lo:hi, POSITIVE].mean())
    return CharSpan(int(words[lo, 0]), int(words[hi - 1, 1]), score)


def answer_probability(result: RequestResult) -> float:
    """[CLS] probability that the context holds an answer: the best window decides."""
    return float(result.cls_probs[:, POSITIVE].max())


def classification_probs(result: RequestResult) -> np.ndarray:
    """(3,) [CLS] probabilities of a classification prompt, averaged over windows."""
    return result.cls_probs.mean(axis=0)


def yes_probability(result: RequestResult) -> float:
    """P(yes) of a yes/no prompt, with neutral mass split evenly."""
    probs = classification_probs(result)
    return float(probs[POSITIVE] + 0.5 * probs[NEUTRAL])


def label_distribution(yes_probs: np.ndarray, exclusive: bool) -> np.ndarray:
    """Per-label yes-probabilities -> exclusive distribution (normalized) or independent
    multi-label probabilities."""
    if not exclusive:
        return yes_probs
    total = yes_probs.sum()
    if total <= 0:
        return np.full_like(yes_probs, 1.0 / len(yes_probs))
    return yes_probs / total

