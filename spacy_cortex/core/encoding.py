"""Turning (prompt, context) pairs into model inputs.

Every input is `[CLS] prompt [SEP] context-window [SEP]`. A context is tokenized once
(`EncodedText`) and reused for every prompt asked of it; long contexts are cut into
overlapping windows so nothing is truncated.
"""
import json
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from tokenizers import Regex, models, pre_tokenizers

# Label ids of the 3-class head (DESIGN.md).
NEUTRAL, POSITIVE, NEGATIVE = 0, 1, 2
IGNORE = -100
CLS_LABELS = {"neutral": NEUTRAL, "positive": POSITIVE, "negative": NEGATIVE, None: IGNORE}

# Context tokens left after the prompt below which a prompt counts as too long.
MIN_CONTEXT_TOKENS = 16


class PromptTooLongError(ValueError):
    pass


# Pictographs: emoji, flags, skin tones, ™ ® ©, arrows, with the joiners and variation
# selectors that build emoji sequences; not ASCII symbols (BERT splits those already), the
# degree sign, currency or maths signs, which belong to their numbers (200°F, £4, ±2).
# BERT's pre-tokenizer does not split them off, so "Apple🍎" is one word, and WordPiece turns
# a word it cannot spell wholly into [UNK]: the entity disappears.
EMOJI_JOINERS = "\u200d\ufe0e\ufe0f"
SYMBOLS = r"[\p{So}\p{Sk}\x{2190}-\x{21FF}\x{200D}\x{FE0E}\x{FE0F}&&[^\x{B0}\x{00}-\x{7F}]]"
# Control characters that end a line (form feed: PDF page breaks, vertical tab, NEL, file
# and record separators). BERT's normalizer deletes them, gluing the words on both sides
# into one ("Watson\fDaniel" -> "watsondaniel"); they are read as line breaks instead.
LINE_CONTROLS = {ord(c): "\n" for c in "\v\f\x85\x1c\x1d\x1e"}


def is_pictograph(text: str) -> bool:
    """Whether every character of `text` is a pictograph (see SYMBOLS)."""
    return bool(text) and all(
        c in EMOJI_JOINERS
        or (c != "°" and not c.isascii() and (unicodedata.category(c) in ("So", "Sk") or "\u2190" <= c <= "\u21ff"))
        for c in text
    )


def isolate_symbols(tokenizer) -> None:
    """Make every symbol character a word of its own in a WordPiece tokenizer (in place,
    idempotent): "Apple🍎" -> "apple", "[UNK]" instead of one "[UNK]". Tokenizers of other
    kinds (byte-level BPE, SentencePiece) spell any character and are left alone."""
    backend = tokenizer.backend_tokenizer
    state = backend.pre_tokenizer.__getstate__().decode("utf8") if backend.pre_tokenizer else ""
    if not isinstance(backend.model, models.WordPiece) or json.dumps(SYMBOLS) in state:
        return
    split = pre_tokenizers.Split(Regex(SYMBOLS), behavior="isolated")
    backend.pre_tokenizer = pre_tokenizers.Sequence([split] + ([backend.pre_tokenizer] if backend.pre_tokenizer else []))


LINE_BREAKS = frozenset("\n\r\u2028\u2029") | {chr(code) for code in LINE_CONTROLS}


@dataclass
class EncodedText:
    """A context tokenized once: sub-token ids, their character offsets and word ids."""

    text: str
    ids: np.ndarray  # (n,) int64
    offsets: np.ndarray  # (n, 2) character offsets into text
    word_ids: np.ndarray  # (n,) index of the pre-tokenizer word of each sub-token
    _windows: Dict[Tuple[int, int, Optional[int]], List[Tuple[int, int]]] = field(default_factory=dict, repr=False)

    def __len__(self) -> int:
        return len(self.ids)

    @cached_property
    def word_spans(self) -> np.ndarray:
        """(n_words, 2) character span of each word (computed once per text)."""
        if not len(self.ids):
            return np.zeros((0, 2), dtype=np.int64)
        n_words = int(self.word_ids.max()) + 1
        spans = np.zeros((n_words, 2), dtype=np.int64)
        spans[:, 0] = len(self.text)
        np.minimum.at(spans[:, 0], self.word_ids, self.offsets[:, 0])
        np.maximum.at(spans[:, 1], self.word_ids, self.offsets[:, 1])
        return spans

    @cached_property
    def word_breaks(self) -> np.ndarray:
        """(n_words,) the break before each word: WORD, SENTENCE (after . ! ? and before a
        capital, digit or quote), LINE (a line break inside a sentence: wrapped text, a list) or
        PARAGRAPH (a blank line, or a line break after a sentence end)."""
        is_break = np.fromiter((c in LINE_BREAKS for c in self.text), dtype=bool, count=len(self.text))
        seen = np.concatenate([[0], np.cumsum(is_break)])  # line breaks before each character
        spans = self.word_spans
        levels = np.full(len(spans), WORD, dtype=np.int8)
        if not len(spans):
            return levels
        levels[0] = PARAGRAPH
        lines = seen[spans[1:, 0]] - seen[spans[:-1, 1]]
        ends = np.array([self.text[a:b][-1:] in SENTENCE_ENDS for a, b in spans[:-1]], dtype=bool)
        opens = np.array([not self.text[a:b][:1].islower() for a, b in spans[1:]], dtype=bool)
        levels[1:][ends & opens] = SENTENCE
        levels[1:][lines == 1] = LINE
        levels[1:][(lines >= 2) | ((lines == 1) & ends)] = PARAGRAPH
        return levels

    @cached_property
    def span_breaks(self) -> np.ndarray:
        """(n_words,) bool: a line break, or a pictograph left out of the model input,
        stands between word i - 1 and word i: no entity span runs across it."""
        spans = self.word_spans
        dropped = np.zeros(len(spans), dtype=bool)
        dropped[1:] = [bool(self.text[a:b].strip()) for a, b in zip(spans[:-1, 1], spans[1:, 0])]
        return (self.word_breaks >= LINE) | dropped

    @cached_property
    def word_starts(self) -> np.ndarray:
        """Index of the first sub-token of each run of equal word ids (word ids are sorted:
        one entry per word when every word kept a sub-token)."""
        if not len(self.word_ids):
            return np.zeros(0, dtype=np.int64)
        return np.flatnonzero(np.r_[True, self.word_ids[1:] != self.word_ids[:-1]])

    @cached_property
    def breaks(self) -> np.ndarray:
        """(n,) per sub-token: the break before it (INSIDE_WORD for a word's later pieces)."""
        levels = np.full(len(self.ids), INSIDE_WORD, dtype=np.int8)
        first = np.ones(len(self.ids), dtype=bool)
        first[1:] = self.word_ids[1:] != self.word_ids[:-1]
        levels[first] = self.word_breaks[self.word_ids[first]]
        return levels

    def windows(self, room: int, stride: int, max_sentences: Optional[int] = None) -> List[Tuple[int, int]]:
        """context_windows of this text, computed once per (room, stride, max_sentences)."""
        key = (room, stride, max_sentences)
        if key not in self._windows:
            self._windows[key] = context_windows(self.breaks, room, stride, max_sentences)
        return self._windows[key]


def encode_texts(tokenizer, texts: Sequence[str]) -> List[EncodedText]:
    """Tokenize contexts once, all in one fast-tokenizer call: sub-token ids, their
    character offsets into each text and their word ids. Line-ending control characters
    count as line breaks; pictographs the tokenizer cannot spell ([UNK]) are left out of
    the model input, so an emoji next to a name neither hides it nor enters its span."""
    if not texts:
        return []
    batch = tokenizer(
        [text.translate(LINE_CONTROLS) for text in texts],  # same length: offsets stay those of `text`
        add_special_tokens=False,
        return_offsets_mapping=True,
        return_attention_mask=False,
        verbose=False,
    )
    return [_encoded(tokenizer, text, batch["input_ids"][i], batch["offset_mapping"][i], batch.word_ids(i))
            for i, text in enumerate(texts)]


def encode_text(tokenizer, text: str) -> EncodedText:
    """encode_texts of one text."""
    return encode_texts(tokenizer, [text])[0]


def _encoded(tokenizer, text: str, ids, offsets, word_ids) -> EncodedText:
    ids = np.asarray(ids, dtype=np.int64)
    offsets = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    word_ids = np.asarray([w if w is not None else 0 for w in word_ids], dtype=np.int64)
    keep = np.ones(len(ids), dtype=bool)
    for i in np.flatnonzero(ids == tokenizer.unk_token_id):  # only unknown tokens are looked at
        keep[i] = not is_pictograph(text[offsets[i, 0] : offsets[i, 1]])
    if not keep.all():
        word_ids = np.unique(word_ids[keep], return_inverse=True)[1].astype(np.int64)
        ids, offsets = ids[keep], offsets[keep]
    return EncodedText(text=text, ids=ids, offsets=offsets.reshape(-1, 2), word_ids=word_ids.reshape(-1))


def encode_prompt(tokenizer, prompt: str) -> np.ndarray:
    return np.asarray(
        tokenizer(prompt, add_special_tokens=False, verbose=False)["input_ids"], dtype=np.int64
    )


def context_room(tokenizer, n_prompt: int, max_length: int) -> int:
    """How many context tokens fit beside a prompt of n_prompt tokens."""
    room = max_length - n_prompt - 3  # [CLS], [SEP], [SEP]
    if room < MIN_CONTEXT_TOKENS:
        raise PromptTooLongError(
            f"Prompt of {n_prompt} tokens leaves {max(room, 0)} of {max_length} tokens for the "
            f"text (at least {MIN_CONTEXT_TOKENS} needed): shorten the prompt or raise max_length."
        )
    return room


# Where a window may begin or end, from worst to best: inside a word, at a word, a
# sentence, a line, a paragraph (blank line).
INSIDE_WORD, WORD, SENTENCE, LINE, PARAGRAPH = range(5)
SENTENCE_ENDS = frozenset(".!?\u2026")


def context_windows(breaks: np.ndarray, room: int, stride: int,
                    max_sentences: Optional[int] = None) -> List[Tuple[int, int]]:
    """(start, end) sub-token ranges of the windows over a context of len(breaks) tokens.

    breaks: (n,) how good a window edge lies just before each token (INSIDE_WORD ..
    PARAGRAPH; `EncodedText.breaks`). A window never crosses a paragraph break, so every
    paragraph is read as it would be alone (as the model was trained, and whatever precedes
    it: a short heading packed with the next paragraph changed what was found there), and
    never cuts a word. A paragraph of up to `room` tokens is one window. A longer one is cut
    at its best break (sentence > word) in the second half of the room, and, with
    max_sentences, at the end of a window's max_sentences-th sentence if it ends earlier;
    the next window starts at the best break among the last `stride` tokens, so
    consecutive windows overlap by at most `stride` whole sentences or words.
    """
    n = len(breaks)
    if n == 0:
        return [(0, 0)]
    paragraphs = np.flatnonzero(breaks >= PARAGRAPH)
    paragraphs = np.append(paragraphs[paragraphs > 0], n)
    windows = []
    start = paragraph_end = 0
    while start < n:
        if start == paragraph_end:
            paragraph_end = int(paragraphs[np.searchsorted(paragraphs, start, side="right")])
            whole = paragraph_end - start <= room
        end = paragraph_end if paragraph_end - start <= room else \
            _best_break(breaks, start + room // 2 + 1, start + room, latest=True, default=start + room)
        if max_sentences and not whole:
            ends = start + 1 + np.flatnonzero(breaks[start + 1 : end] >= SENTENCE)
            if len(ends) >= max_sentences:
                end = int(ends[max_sentences - 1])
        windows.append((start, end))
        if end == paragraph_end:
            start = end
            continue
        # the next window starts past the middle of this one, at most `stride` tokens back
        start = _best_break(breaks, max(end - stride, (start + end) // 2 + 1), end - 1, latest=False, default=end)
    return windows


def _best_break(breaks: np.ndarray, lo: int, hi: int, latest: bool, default: int) -> int:
    """Position in [lo, hi] of the best break (the latest or earliest of equals); `default`
    if the range is empty or no position in it starts a word (one very long word)."""
    levels = breaks[lo : hi + 1]
    if not len(levels) or levels.max() < WORD:
        return default
    found = np.flatnonzero(levels == levels.max())
    return lo + int(found[-1] if latest else found[0])


def segment_input(tokenizer, ids: Sequence[int]) -> np.ndarray:
    """`[CLS] ids [SEP]`: a prompt's part of an input, or a text alone (CortexModel.embed)."""
    return np.concatenate([[tokenizer.cls_token_id], ids, [tokenizer.sep_token_id]]).astype(np.int64)


def build_input(tokenizer, prompt_ids: np.ndarray, context_ids: np.ndarray) -> np.ndarray:
    """`[CLS] prompt [SEP] context [SEP]`."""
    return np.concatenate([segment_input(tokenizer, prompt_ids), context_ids, [tokenizer.sep_token_id]]).astype(np.int64)


def token_type_ids(n_prompt: int, n_total: int) -> np.ndarray:
    types = np.zeros(n_total, dtype=np.int64)
    types[n_prompt + 2 :] = 1
    return types


@dataclass
class Window:
    """One model input: a prompt with a slice of a context."""

    request: int  # index of the request it belongs to
    start: int  # first context sub-token in this window
    input_ids: np.ndarray
    n_prompt: int

    @property
    def context_offset(self) -> int:
        """Position of the first context token in input_ids."""
        return self.n_prompt + 2


@dataclass
class Batch:
    """Padded minibatch of windows."""

    windows: List[Window]
    input_ids: np.ndarray  # (b, t)
    attention_mask: np.ndarray
    token_type_ids: np.ndarray


def pad_batch(windows: Sequence[Window], pad_id: int) -> Batch:
    width = max(len(w.input_ids) for w in windows)
    ids = np.full((len(windows), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    types = np.zeros_like(ids)
    for i, w in enumerate(windows):
        n = len(w.input_ids)
        ids[i, :n] = w.input_ids
        mask[i, :n] = 1
        types[i, :n] = token_type_ids(w.n_prompt, n)
    return Batch(list(windows), ids, mask, types)


# The fixed cost of one forward pass (Python, kernel launches, small-matrix inefficiency),
# in padded tokens: an extra pass is worth it when it saves more padding than this.
# Measured with spacy_cortex.evaluation.benchmark on MiniLM-L6 (2 CPU threads).
PASS_COST_TOKENS = 64


def token_budget_batches(
    windows: Sequence[Window], max_batch_tokens: int, max_batch_size: int
) -> List[List[Window]]:
    """Length-sorted minibatches under the token budget with the least padded work: the
    cut points minimize padded tokens + PASS_COST_TOKENS per pass (exact dynamic programming
    over the sorted lengths)."""
    order = sorted(windows, key=lambda w: len(w.input_ids))
    lengths = np.array([len(w.input_ids) for w in order], dtype=np.int64)
    n = len(order)
    best = np.zeros(n + 1)  # best[j]: least cost of batching order[:j]
    cut = np.zeros(n + 1, dtype=np.int64)  # where the last batch of order[:j] starts
    for j in range(1, n + 1):
        width = lengths[j - 1]  # the longest of any batch ending here
        largest = max(1, min(max_batch_size, max_batch_tokens // width))
        starts = np.arange(max(0, j - largest), j)
        costs = best[starts] + (j - starts) * width + PASS_COST_TOKENS
        k = int(np.argmin(costs))
        best[j], cut[j] = costs[k], starts[k]
    batches: List[List[Window]] = []
    j = n
    while j > 0:
        batches.append(order[cut[j] : j])
        j = cut[j]
    return batches[::-1]


@dataclass
class RequestResult:
    """Probabilities the model gave one (prompt, context) request."""

    cls_probs: np.ndarray  # (n_windows, 3): [CLS] probabilities of each window
    token_probs: np.ndarray  # (n_context_tokens, 3), windows merged
    encoded: EncodedText = field(repr=False)
    window_sizes: Optional[np.ndarray] = None  # (n_windows,) context tokens of each window

    def word_probs(self) -> np.ndarray:
        """(n_words, 3): mean probabilities of each word's sub-tokens."""
        n_words = len(self.encoded.word_spans)
        word_ids = self.encoded.word_ids
        firsts = self.encoded.word_starts
        if len(firsts) == n_words:  # every word has its run of sub-tokens (the usual case): one reduceat
            sums = np.add.reduceat(self.token_probs.astype(np.float64), firsts, axis=0)
            return sums / np.diff(np.append(firsts, len(word_ids)))[:, None]
        sums = np.zeros((n_words, 3), dtype=np.float64)
        counts = np.zeros(n_words, dtype=np.float64)
        np.add.at(sums, word_ids, self.token_probs)
        np.add.at(counts, word_ids, 1.0)
        return sums / np.maximum(counts, 1.0)[:, None]


def merge_windows(
    n_context: int, windows: Sequence[Tuple[int, np.ndarray]]
) -> np.ndarray:
    """Merge per-window context probabilities: each token takes its value from the window
    where it sits farthest from an edge (the most context on both sides)."""
    if len(windows) == 1 and windows[0][0] == 0 and len(windows[0][1]) == n_context:
        return np.array(windows[0][1], dtype=np.float32)  # one window over the whole context (a copy)
    merged = np.zeros((n_context, 3), dtype=np.float32)
    best = np.full(n_context, -1, dtype=np.int64)
    for start, probs in windows:
        n = len(probs)
        positions = np.arange(n)
        centrality = np.minimum(positions, n - 1 - positions)
        target = slice(start, start + n)
        better = centrality > best[target]
        merged[target][better] = probs[better]
        best[target] = np.where(better, centrality, best[target])
    return merged
