"""From model probabilities to answers: spans, best answer spans and [CLS] decisions.

The API (`api.py`) and the components (cortex_ner, cortex_textcat, cortex_qa, cortex_verify,
cortex_select) decide through the functions here, so two rules hold everywhere:
- a blank text (`is_blank`) is about nothing: no span, P(yes) 0.0 for every yes/no prompt
  (so every category 0.0 and a none-of-these category 1.0), no answer (has_answer 0.0),
  an NLI premise that is blank is neutral (1.0);
- an extractive question has an answer only where P(the text holds one) reaches
  `no_answer_threshold` (`extractive_answer`; default NO_ANSWER_THRESHOLD).
"""
import numbers
import unicodedata
from dataclasses import dataclass
from typing import List, Optional, Tuple

import numpy as np

from .encoding import MIN_CONTEXT_TOKENS, NEGATIVE, NEUTRAL, POSITIVE, RequestResult, is_pictograph


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


def is_blank(text: str) -> bool:
    """Whether a text holds nothing to read: empty, or only whitespace and invisible format
    characters (Unicode Cf: byte-order mark, zero-width space), which the tokenizer drops.
    Stops at the first visible character, so a long text costs nothing."""
    return all(c.isspace() or unicodedata.category(c) == "Cf" for c in text)


def _blank(result: RequestResult) -> bool:
    return is_blank(result.encoded.text)


def _is_punctuation(text: str) -> bool:
    return all(unicodedata.category(c).startswith("P") for c in text)


# Punctuation that separates a name from what follows rather than belonging to it: trimmed
# from a span's edge even when glued to the word ("Delaware corporation," -> "Delaware
# corporation"). A glued . ! ? stays: it ends abbreviations and names ("Inc.", "Yahoo!").
SEPARATORS = frozenset(",;:\u3001\uff0c\uff1b\uff1a")  # with the CJK comma and full-width , ; :


def _trimmable(text: str, words: np.ndarray, i: int, inner: int) -> bool:
    """Whether edge word i may go: a pictograph or a separator (SEPARATORS) always; other
    punctuation when a space separates it from its inner neighbour `inner` ("( Reuters" ->
    "Reuters", "U.S." keeps its dot)."""
    word = text[words[i, 0] : words[i, 1]]
    if is_pictograph(word) or (word and all(c in SEPARATORS for c in word)):
        return True
    return _is_punctuation(word) and (inner == i or words[min(i, inner), 1] < words[max(i, inner), 0])


def trim_punctuation(text: str, words: np.ndarray, lo: int, hi: int) -> Tuple[int, int]:
    """Drop edge words of the word range [lo, hi) that are pictographs, separators, or
    punctuation set off by a space. Returns an empty range (lo == hi) when nothing else
    remains."""
    while lo < hi and _trimmable(text, words, lo, min(lo + 1, hi - 1)):
        lo += 1
    while lo < hi and _trimmable(text, words, hi - 1, max(hi - 2, lo)):
        hi -= 1
    return lo, hi


def threshold_spans(result: RequestResult, threshold: float,
                    extend_threshold: Optional[float] = None) -> List[CharSpan]:
    """Maximal runs of words whose inside-probability reaches `extend_threshold` and that hold
    a word reaching `threshold` (hysteresis thresholding, as in Canny edge detection: a span
    is found by its strongest word and keeps a first name or an article the model is less
    sure of; None or a value not below `threshold`: every word must reach `threshold`).
    Runs never cross a line break (a list of names, one per line, is one entity per line) or
    a pictograph, and are split at a valley between two entities (`split_valleys`); edge
    pictographs, separators and spaced punctuation are trimmed. A span's score is the mean
    inside-probability of its words, in [0, 1]. A blank text has none."""
    if _blank(result):  # a tokenizer that keeps format characters still finds nothing there
        return []
    inside = result.word_probs()[:, POSITIVE]
    low = threshold if extend_threshold is None else min(extend_threshold, threshold)
    words = result.encoded.word_spans
    text = result.encoded.text
    joining = bridged(text, words, inside)
    spans = []
    for start, end in _runs(joining >= low, result.encoded.span_breaks):
        for lo, hi in split_valleys(joining, start, end, threshold):
            if inside[lo:hi].max() < threshold:
                continue
            lo, hi = trim_punctuation(text, words, lo, hi)
            if lo < hi:
                spans.append(CharSpan(int(words[lo, 0]), int(words[hi - 1, 1]), float(inside[lo:hi].mean())))
    return spans


def _runs(active: np.ndarray, breaks: np.ndarray) -> List[Tuple[int, int]]:
    """[start, end) word ranges of consecutive active words, cut before every break."""
    runs = []
    start = None
    for i in range(len(active) + 1):
        on = i < len(active) and bool(active[i])
        if start is not None and (not on or breaks[i]):
            runs.append((start, i))
            start = None
        if on and start is None:
            start = i
    return runs


# How far (in inside-probability) a word below the threshold must dip under the lower of the
# two peaks beside it for a run to be split there into two entities. The extension over weak
# words is meant to keep a name's weak parts ("da" of "Leonardo da Vinci", "of" in "Bank of
# America", both scored as high as the name), not to join two names over a verb the model
# doubts ("Ada Lovelace met Grace Hopper": met 0.77 between 0.98 and 0.99). Chosen on the
# CrossNER dev sets, first 100 sentences per domain, at 0.85 / 0.7 (cortex-mini-en v3, average
# F1: 38.12 without splitting, 37.61 at a dip of 0, 37.78 at 0.05, 38.25 at 0.1, 38.20 at 0.15,
# 38.14 at 0.2, 38.12 at 0.25); 0.15 rather than 0.1, as it moves no domain by more than
# 0.3 (literature 42.9 -> 42.3 at 0.1, 42.7 at 0.15).
VALLEY_DIP = 0.15


def split_valleys(inside: np.ndarray, lo: int, hi: int, threshold: float) -> List[Tuple[int, int]]:
    """The word run [lo, hi) split at its valleys: between two words reaching `threshold`
    (peaks), the lowest word below `threshold` is dropped, splitting the run, when it lies at
    least VALLEY_DIP under the highest word on each side (within the run, up to the
    previous split). Words between a peak and the valley stay with that peak."""
    parts = []
    peaks = lo + np.flatnonzero(inside[lo:hi] >= threshold)
    for left, right in zip(peaks[:-1], peaks[1:]):
        if right - left < 2:
            continue
        valley = left + 1 + int(np.argmin(inside[left + 1 : right]))
        rim = min(inside[lo : left + 1].max(), inside[right:hi].max())
        if inside[valley] <= rim - VALLEY_DIP:
            parts.append((lo, valley))
            lo = valley + 1
    return parts + [(lo, hi)]


def bridged(text: str, words: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """(n_words,) inside-probabilities where a punctuation word glued to the words on both
    sides (the hyphen of "Jean-Claude", an apostrophe) has at least the lower of theirs: the
    model scores such a mark low (0.54 for that hyphen) and it split one name into two."""
    out = inside.copy()
    # words touching both neighbours, found in one pass; only those few are read as text
    glued = np.flatnonzero((words[:-2, 1] == words[1:-1, 0]) & (words[1:-1, 1] == words[2:, 0])) + 1
    for i in glued:
        if _is_punctuation(text[words[i, 0] : words[i, 1]]):
            out[i] = max(out[i], min(inside[i - 1], inside[i + 1]))
    return out


def span_probability(result: RequestResult, start_char: int, end_char: int) -> float:
    """Mean inside-probability, in [0, 1], of the words overlapping the character range
    [start_char, end_char) (words the model did not read, such as dropped pictographs, left
    out); 0.0 when no word overlaps it."""
    words = result.encoded.word_spans
    read = np.bincount(result.encoded.word_ids, minlength=len(words)) > 0
    overlap = (words[:, 0] < end_char) & (words[:, 1] > start_char) & read
    if not overlap.any():
        return 0.0
    return float(result.word_probs()[overlap, POSITIVE].mean())


# Added to every word's inside log-odds before picking the answer span. Training gives the
# few answer tokens of a context half of its token loss, so the model over-states "inside"
# around the answer and the unbiased best span runs long; this offset corrects that prior.
# Chosen by `python -m spacy_cortex.evaluation.tune` on SQuAD TRAIN questions held out of training
# (see the model card), not on any evaluation set.
ANSWER_LOG_ODDS_BIAS = -2.0

# Defaults of threshold spans (cortex_ner, api.extract): a span needs a word whose
# inside-probability reaches SPAN_THRESHOLD and extends over its neighbours down to
# SPAN_EXTEND_THRESHOLD. The best pair of `python -m spacy_cortex.evaluation.tune` on the
# CrossNER dev sets, the zero-shot domains (cortex-mini-en v3, prefer_specific on; average
# F1 34.0 at 0.7 alone, 35.0 at 0.8 alone, 36.2 at 0.8 / 0.7, 37.0 at 0.85 / 0.7, 36.2 at
# 0.85 / 0.6, 36.5 at 0.9 / 0.7); WNUT-17 dev, whose types are trained, agrees against 0.8
# (48.3 at 0.85 / 0.7, 45.4 at 0.8 / 0.7) and rises further at 0.9 (51.0 alone).
SPAN_THRESHOLD = 0.85
SPAN_EXTEND_THRESHOLD = 0.7

# Default for the most text sub-tokens a span-extraction prompt reads at once (cortex_ner,
# api.extract). The model was trained on sentences; in one 384-token window over a long
# paragraph it marks fewer of the entities it finds in each sentence alone. CoNLL-2003 test
# sentences joined 40 at a time (`evaluate --sets conll2003_joined`, v3): entity F1 65.2 in
# whole 384-token windows, 73.5 in 128-token ones, 78.1 in 64 (82.8 for the same sentences
# one by one), at about 1.2x / 1.36x the time on such paragraphs; short texts are unchanged.
# It is surer of a sentence the fewer precede it in its window ("Microsoft hired Satya Nadella
# in Seattle." twelve times joined by spaces: the name falls to 0.56-0.81 in the 4th-6th
# sentence of a 64-token window, none is lost at 48), but 48 costs long sentences their
# context (issue 25, window 64 / 48: CoNLL-2003 dev 400 sentences joined 40 at a time 85.7 /
# 87.1; CrossNER dev, 40 sentences per domain, politics 21.5 / 20.2, science 44.0 / 43.0;
# EVAL at limit scale 0.5, CrossNER literature 37.2 / 35.0, politics 37.3 / 36.0): kept at 64.
SPAN_WINDOW = 64
# A window of a paragraph longer than the span window holds at most this many sentences
# (encoding.context_windows' max_sentences); a paragraph that fits the window is read whole,
# as before. Issue 25 item 3, v4, EVAL sets at default N, whole windows / at most 4 sentences:
# the twelve joined sentences above 6 / 12 names; conll2003_joined 80.49 / 80.73; CrossNER (5
# domains) and long_text's line-break agreement unchanged; long_text's agreement of
# paragraphs read alone and joined by spaces 94.99 / 94.98 (one span). Cutting long paragraphs
# at 48 tokens instead fixed the same case but cost that agreement 2.0 points and CrossNER
# literature 0.1.
SPAN_MAX_SENTENCES = 4


def check_thresholds(threshold: float, extend_threshold: Optional[float]) -> None:
    """ValueError unless 0 < threshold < 1 (0 would mark every word, 1 none) and
    extend_threshold is None or also in (0, 1)."""
    checked = [("threshold", threshold)] + ([] if extend_threshold is None else [("extend_threshold", extend_threshold)])
    for name, value in checked:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name} must be a number, got {value!r} ({type(value).__name__})")
        if not 0.0 < value < 1.0:
            raise ValueError(f"{name} must be between 0 and 1 (exclusive), got {value!r}")


def check_window(window: Optional[int]) -> None:
    """ValueError unless window is None or at least MIN_CONTEXT_TOKENS text sub-tokens."""
    if window is None:
        return
    if isinstance(window, bool) or not isinstance(window, numbers.Integral) or window < MIN_CONTEXT_TOKENS:
        raise ValueError(f"window must be null or a whole number of at least {MIN_CONTEXT_TOKENS} tokens, "
                         f"got {window!r} ({type(window).__name__})")


def best_span(
    result: RequestResult, max_words: int = 30, bias: float = ANSWER_LOG_ODDS_BIAS
) -> Optional[CharSpan]:
    """The contiguous word range with the highest summed (bias-corrected) log-odds of
    being inside the answer (max-subarray, at most max_words long), edge punctuation
    trimmed; None for a blank context."""
    probs = result.word_probs()
    if not len(probs) or _blank(result):
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
    """[CLS] probability in [0, 1] that the context holds an answer: the best window
    decides; 0.0 for a blank context."""
    return 0.0 if _blank(result) else float(result.cls_probs[:, POSITIVE].max())


# Default of the no-answer rule (cortex_qa, api.answer): an extractive question is answered
# only where the [CLS] probability that the text holds an answer reaches it.
NO_ANSWER_THRESHOLD = 0.5


def check_answer_settings(no_answer_threshold: float, max_answer_words: int) -> None:
    """ValueError unless 0 <= no_answer_threshold <= 1 (0: always answer, 1: only when
    certain) and max_answer_words is a whole number of at least 1."""
    if isinstance(no_answer_threshold, bool) or not isinstance(no_answer_threshold, numbers.Real) \
            or not 0.0 <= no_answer_threshold <= 1.0:
        raise ValueError(f"no_answer_threshold must be a number between 0 and 1, got {no_answer_threshold!r}")
    if isinstance(max_answer_words, bool) or not isinstance(max_answer_words, numbers.Integral) \
            or max_answer_words < 1:
        raise ValueError(f"max_answer_words must be a whole number of at least 1, got {max_answer_words!r}")


def extractive_answer(result: RequestResult, max_words: int,
                      no_answer_threshold: float = NO_ANSWER_THRESHOLD) -> Tuple[Optional[CharSpan], float]:
    """The no-answer rule: (answer span, has_answer), has_answer = answer_probability in
    [0, 1]; the span is the best_span where has_answer reaches no_answer_threshold, else
    None (so always None for a blank context, whose has_answer is 0.0)."""
    has_answer = answer_probability(result)
    return (best_span(result, max_words) if has_answer >= no_answer_threshold else None), has_answer


def classification_probs(result: RequestResult) -> np.ndarray:
    """(3,) [CLS] probabilities of a prompt with a graded answer (NLI, sentiment): the
    windows' probabilities averaged, weighted by their context tokens, so that a long text
    is judged as a whole and a 2-token greeting window counts for little. A blank context
    entails and contradicts nothing: neutral 1.0."""
    if _blank(result):
        return np.eye(3)[NEUTRAL]
    weights = result.window_sizes if result.window_sizes is not None else np.ones(len(result.cls_probs))
    weights = np.maximum(np.asarray(weights, dtype=np.float64), 1.0)
    return (result.cls_probs * weights[:, None]).sum(axis=0) / weights.sum()


def yes_probability(result: RequestResult) -> float:
    """P(yes) of a yes/no prompt ("Is this text about refunds?", "Does it mention X?"),
    neutral mass split evenly, from the window that says yes most strongly: a label
    applies to a long text when one part of it shows it, however much unrelated text
    follows. In [0, 1]; 0.0 for a blank context (it is about nothing)."""
    if _blank(result):
        return 0.0
    probs = result.cls_probs
    return float((probs[:, POSITIVE] + 0.5 * probs[:, NEUTRAL]).max())


def label_distribution(yes_probs: np.ndarray, exclusive: bool, none_of_these: bool = False) -> np.ndarray:
    """(n,) per-label yes-probabilities -> label scores in [0, 1].

    exclusive: normalized over the labels (sums to 1); one label is a yes/no question and
    keeps its P(yes). Otherwise independent multi-label probabilities.
    none_of_these: one more entry at the end, P(no label applies) = prod(1 - P(yes)) (the
    labels judged independently); exclusive labels then share the rest, 1 - P(none), in
    proportion to their P(yes)."""
    probs = np.asarray(yes_probs, dtype=np.float64)
    none = float(np.prod(1.0 - probs))
    if exclusive and len(probs) > 1:
        total = probs.sum()
        share = probs / total if total > 0 else np.full_like(probs, 1.0 / len(probs))
        probs = share * (1.0 - none if none_of_these else 1.0)
    return np.append(probs, none) if none_of_these else probs


def label_scores(text: str, yes_probs: np.ndarray, exclusive: bool, none_of_these: bool = False) -> np.ndarray:
    """label_distribution of a text's per-label P(yes), with the blank-text rule: a blank
    text is about nothing, so every label scores 0.0 (the none-of-these entry 1.0) instead
    of the labels sharing 1 evenly."""
    if is_blank(text):
        return label_distribution(np.zeros(len(yes_probs)), exclusive=False, none_of_these=none_of_these)
    return label_distribution(yes_probs, exclusive, none_of_these)
