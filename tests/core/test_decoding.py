"""spacy_cortex.core.decoding on hand-built RequestResults."""
import numpy as np
import pytest

from spacy_cortex.core.decoding import (
    CharSpan,
    answer_probability,
    best_span,
    bridged,
    check_thresholds,
    check_window,
    classification_probs,
    label_distribution,
    span_probability,
    split_valleys,
    threshold_spans,
    trim_punctuation,
    yes_probability,
)
from spacy_cortex.core.encoding import EncodedText, RequestResult


def make_result(words, inside, cls_probs=((0.2, 0.5, 0.3),), split=()):
    """One RequestResult over `words` joined by spaces; word i gets inside-probability
    inside[i] (the rest goes to 'outside'). Words listed in `split` get two sub-tokens."""
    text = " ".join(words)
    ids, offsets, word_ids, token_probs = [], [], [], []
    pos = 0
    for i, (word, p) in enumerate(zip(words, inside)):
        row = [0.0, p, 1.0 - p]
        if i in split and len(word) > 1:
            cuts = [(pos, pos + 1), (pos + 1, pos + len(word))]
        else:
            cuts = [(pos, pos + len(word))]
        for s, e in cuts:
            ids.append(100 + len(ids))
            offsets.append((s, e))
            word_ids.append(i)
            token_probs.append(row)
        pos += len(word) + 1
    encoded = EncodedText(
        text,
        np.asarray(ids, dtype=np.int64),
        np.asarray(offsets, dtype=np.int64).reshape(-1, 2),
        np.asarray(word_ids, dtype=np.int64),
    )
    return RequestResult(
        np.asarray(cls_probs, dtype=np.float64),
        np.asarray(token_probs, dtype=np.float32).reshape(-1, 3),
        encoded,
    )


WORDS = ["aa", "bb", "cc", "dd", "ee", "ff", "gg"]


def texts(result, spans):
    return [result.encoded.text[s.start_char : s.end_char] for s in spans]


def test_threshold_spans_runs_and_scores():
    r = make_result(WORDS, [0.9, 0.8, 0.1, 0.6, 0.2, 0.7, 0.75], split={0, 5})
    spans = threshold_spans(r, 0.5)
    assert texts(r, spans) == ["aa bb", "dd", "ff gg"]
    assert [s.score for s in spans] == pytest.approx([0.85, 0.6, 0.725], abs=1e-6)
    assert spans[0] == CharSpan(0, 5, spans[0].score)
    # a higher threshold splits / drops runs
    assert texts(r, threshold_spans(r, 0.72)) == ["aa bb", "gg"]
    assert threshold_spans(r, 0.95) == []


def test_threshold_spans_extend_over_weaker_neighbours():
    """Hysteresis: a run of words reaching extend_threshold is a span when one of its words
    reaches threshold."""
    r = make_result(WORDS, [0.75, 0.9, 0.1, 0.75, 0.72, 0.2, 0.95])
    assert texts(r, threshold_spans(r, 0.8)) == ["bb", "gg"]
    assert texts(r, threshold_spans(r, 0.8, 0.7)) == ["aa bb", "gg"]  # "dd ee" holds no word at 0.8
    assert [s.score for s in threshold_spans(r, 0.8, 0.7)] == pytest.approx([0.825, 0.95], abs=1e-6)
    assert threshold_spans(r, 0.8, 0.9) == threshold_spans(r, 0.8)  # not below threshold: off
    # the extension reaches down to 0.05 but stops at the valley "cc" between two peaks
    assert texts(r, threshold_spans(r, 0.8, 0.05)) == ["aa bb", "dd ee ff gg"]


@pytest.mark.parametrize("words, inside, expected", [
    # issue 25: the extension joined two names over a verb the model doubted (met 0.77)
    ("Ada Lovelace met Grace Hopper", [0.98, 0.98, 0.77, 0.99, 0.99], ["Ada Lovelace", "Grace Hopper"]),
    # a shallow dip (less than VALLEY_DIP below the lower peak) is part of the name
    ("Leonardo da Vinci", [0.9, 0.82, 0.92], ["Leonardo da Vinci"]),
    ("Bank of America", [0.96, 0.86, 0.98], ["Bank of America"]),  # not below threshold: no valley
    # the lowest word of a long valley goes; the weak words beside it stay with their peaks
    ("aa bb cc dd ee", [0.95, 0.8, 0.72, 0.8, 0.95], ["aa bb", "dd ee"]),
    # weak words at one side only (no second peak) are the extension itself
    ("the Grace Hopper", [0.75, 0.72, 0.99], ["the Grace Hopper"]),
    # two valleys, three names
    ("aa x bb y cc", [0.99, 0.71, 0.99, 0.75, 0.99], ["aa", "bb", "cc"]),
])
def test_a_run_is_split_at_a_valley_between_two_peaks(words, inside, expected):
    r = make_result(words.split(), inside)
    assert texts(r, threshold_spans(r, 0.85, 0.7)) == expected


def test_split_valleys_word_ranges():
    inside = np.array([0.0, 0.98, 0.98, 0.77, 0.99, 0.99, 0.0])
    assert split_valleys(inside, 1, 6, 0.85) == [(1, 3), (4, 6)]
    assert split_valleys(inside, 1, 3, 0.85) == [(1, 3)]


def test_glued_punctuation_takes_the_lower_of_its_neighbours():
    text = "Jean-Claude Van Damme and O'Brien - here"
    pieces = ["Jean", "-", "Claude", "Van", "Damme", "and", "O", "'", "Brien", "-", "here"]
    inside = np.array([0.95, 0.54, 0.9, 0.9, 0.95, 0.1, 0.9, 0.3, 0.8, 0.2, 0.8])
    out = bridged(text, word_ranges(text, pieces), inside)
    assert out[[1, 7]] == pytest.approx([0.9, 0.8])  # glued hyphen and apostrophe
    assert out[9] == pytest.approx(0.2)  # a spaced dash is no part of a word
    assert np.delete(out, [1, 7]) == pytest.approx(np.delete(inside, [1, 7]))
    high = bridged(text, word_ranges(text, pieces), np.where(np.arange(11) == 1, 0.99, inside))
    assert high[1] == pytest.approx(0.99)  # never lowered


def test_threshold_and_window_checks_name_the_problem():
    check_thresholds(np.float32(0.9), np.float64(0.5))  # numpy numbers are numbers
    check_window(np.int64(32))
    for bad, message in ((("0.8", None), "threshold must be a number, got '0.8' \\(str\\)"),
                         ((0.8, True), "extend_threshold must be a number"),
                         ((1.0, None), "threshold must be between 0 and 1"),
                         ((0.8, 0.0), "extend_threshold must be between 0 and 1")):
        with pytest.raises(ValueError, match=message):
            check_thresholds(*bad)
    for bad in ("64", 15, 64.0, True):
        with pytest.raises(ValueError, match="window must be null or a whole number of at least 16"):
            check_window(bad)


def test_threshold_spans_whole_text_and_boundaries():
    r = make_result(WORDS, [0.9] * len(WORDS))
    spans = threshold_spans(r, 0.5)
    assert len(spans) == 1
    assert (spans[0].start_char, spans[0].end_char) == (0, len(r.encoded.text))
    # threshold is inclusive
    r = make_result(["x", "y"], [0.5, 0.49])
    assert texts(r, threshold_spans(r, 0.5)) == ["x"]


def word_ranges(text, pieces):
    """Character spans of consecutive `pieces` of text (each found after the previous)."""
    spans, pos = [], 0
    for piece in pieces:
        start = text.index(piece, pos)
        spans.append((start, start + len(piece)))
        pos = start + len(piece)
    return np.asarray(spans, dtype=np.int64)


@pytest.mark.parametrize("text, pieces, lo, hi, expected", [
    ("( Reuters ) said", ["(", "Reuters", ")", "said"], 0, 3, "Reuters"),
    ("the U.S. said", ["the", "U", ".", "S", ".", "said"], 1, 5, "U.S."),  # attached dots stay
    ("Dr. Smith came", ["Dr", ".", "Smith", "came"], 1, 3, "Smith"),
    ("well , ok", ["well", ",", "ok"], 0, 3, "well , ok"),  # inner punctuation stays
    ("« Élan »", ["«", "Élan", "»"], 0, 3, "Élan"),
    # issue 25: separators go even when glued; a glued . ! ends an abbreviation or a name
    ("a Delaware corporation, and", ["a", "Delaware", "corporation", ",", "and"], 1, 4, "Delaware corporation"),
    ("Acme Inc., a", ["Acme", "Inc", ".", ",", "a"], 0, 4, "Acme Inc."),
    ("Yahoo! rose", ["Yahoo", "!", "rose"], 0, 2, "Yahoo!"),
    ("Report:Ada Lovelace; met", ["Report", ":", "Ada", "Lovelace", ";", "met"], 1, 5, "Ada Lovelace"),
    ("東京、大阪", ["東京", "、", "大阪"], 0, 2, "東京"),
    ("AT&T, Inc.", ["AT", "&", "T", ",", "Inc", "."], 0, 6, "AT&T, Inc."),  # inner comma stays
])
def test_trim_punctuation(text, pieces, lo, hi, expected):
    words = word_ranges(text, pieces)
    lo, hi = trim_punctuation(text, words, lo, hi)
    assert text[words[lo, 0] : words[hi - 1, 1]] == expected


def test_trim_punctuation_only_punctuation_is_empty():
    text = "a , ; b"
    lo, hi = trim_punctuation(text, word_ranges(text, ["a", ",", ";", "b"]), 1, 3)
    assert lo == hi


def test_spans_drop_edge_punctuation():
    r = make_result(["(", "Reuters", ")", "said", ".", "ok"], [0.9, 0.9, 0.9, 0.01, 0.9, 0.01])
    spans = threshold_spans(r, 0.5)
    assert texts(r, spans) == ["Reuters"]  # the lone "." is dropped, not returned empty
    assert texts(r, [best_span(r)]) == ["Reuters"]
    lone = make_result(["a", ".", "b"], [0.01, 0.99, 0.01])
    assert texts(lone, [best_span(lone)]) == ["."]  # a punctuation-only answer is kept


def test_threshold_spans_empty_context():
    r = make_result([], [])
    assert threshold_spans(r, 0.5) == []
    assert best_span(r) is None


def test_charspan_as_dict():
    text = "hello world"
    assert CharSpan(6, 11, 0.5).as_dict(text) == {
        "text": "world", "start_char": 6, "end_char": 11, "score": 0.5,
    }


def test_best_span_is_max_subarray_of_log_odds():
    # positive log-odds: words 1, 2, 3 (word 2 slightly negative in between), 5
    inside = [0.1, 0.9, 0.45, 0.95, 0.05, 0.6, 0.1]
    r = make_result(WORDS, inside)
    span = best_span(r, bias=0.0)
    assert r.encoded.text[span.start_char : span.end_char] == "bb cc dd"
    assert span.score == pytest.approx(np.mean([0.9, 0.45, 0.95]), abs=1e-6)
    # a brute-force max-subarray agrees
    lo_ = np.log(np.array(inside) + 1e-6) - np.log(1 - np.array(inside) + 1e-6)
    best = max(((lo_[i:j].sum(), i, j) for i in range(7) for j in range(i + 1, 8)))
    assert (best[1], best[2]) == (1, 4)


def test_best_span_respects_max_words():
    inside = [0.1, 0.9, 0.8, 0.99, 0.7, 0.1, 0.1]
    r = make_result(WORDS, inside)
    assert texts(r, [best_span(r, max_words=30, bias=0.0)]) == ["bb cc dd ee"]
    assert texts(r, [best_span(r, max_words=2, bias=0.0)]) == ["cc dd"]
    assert texts(r, [best_span(r, max_words=1, bias=0.0)]) == ["dd"]


def test_best_span_all_negative_still_returns_least_bad_word():
    r = make_result(WORDS, [0.1, 0.2, 0.3, 0.05, 0.1, 0.1, 0.1])
    span = best_span(r, bias=0.0)
    assert texts(r, [span]) == ["cc"]
    assert span.score == pytest.approx(0.3, abs=1e-6)


def test_best_span_bias_sets_how_far_a_span_reaches():
    # under-confident: "cc dd" stands out, both words below 0.5: a positive bias takes both
    r = make_result(WORDS, [0.01, 0.02, 0.4, 0.3, 0.02, 0.01, 0.01])
    assert texts(r, [best_span(r, bias=0.0)]) == ["cc"]
    assert texts(r, [best_span(r, bias=2.0)]) == ["cc dd"]
    # over-confident: the answer "dd" sits in a run of likely words: a negative bias trims it
    r = make_result(WORDS, [0.1, 0.7, 0.8, 0.99, 0.8, 0.7, 0.1])
    assert texts(r, [best_span(r, bias=0.0)]) == ["bb cc dd ee ff"]
    assert texts(r, [best_span(r, bias=-2.0)]) == ["dd"]
    assert texts(r, [best_span(r)]) == ["dd"]  # the default bias (-2.0)


def test_cls_decisions():
    r = make_result(["a"], [0.5], cls_probs=[(0.2, 0.7, 0.1), (0.0, 0.3, 0.7)])
    assert answer_probability(r) == pytest.approx(0.7)  # the best window decides
    assert np.allclose(classification_probs(r), [0.1, 0.5, 0.4])  # mean over windows
    # a yes/no prompt: the window that says yes most strongly, neutral mass split evenly
    assert yes_probability(r) == pytest.approx(0.7 + 0.5 * 0.2)
    # graded answers weigh windows by their context tokens
    r.window_sizes = np.array([300, 100])
    assert np.allclose(classification_probs(r), [0.15, 0.6, 0.25])


def test_label_distribution_exclusive_vs_multilabel():
    yes = np.array([0.9, 0.6, 0.3])
    exclusive = label_distribution(yes, exclusive=True)
    assert exclusive.sum() == pytest.approx(1.0)
    assert np.allclose(exclusive, yes / 1.8)
    assert list(np.argsort(exclusive)) == list(np.argsort(yes))
    multi = label_distribution(yes, exclusive=False)
    assert np.allclose(multi, yes)  # independent probabilities, not normalized
    assert multi.sum() == pytest.approx(1.8)
    uniform = label_distribution(np.zeros(4), exclusive=True)
    assert np.allclose(uniform, 0.25)


def make_text_result(text, inside_by_word):
    """A RequestResult over a real text (words split on whitespace): word i gets inside
    probability inside_by_word[i]."""
    import re

    spans = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    n = len(spans)
    encoded = EncodedText(text, np.arange(n, dtype=np.int64) + 100,
                          np.asarray(spans, dtype=np.int64).reshape(-1, 2), np.arange(n, dtype=np.int64))
    probs = np.asarray([[0.0, p, 1.0 - p] for p in inside_by_word], dtype=np.float32).reshape(-1, 3)
    return RequestResult(np.asarray([[0.2, 0.5, 0.3]]), probs, encoded)


@pytest.mark.parametrize("separator", ["\n", "\r\n", "\n\n", " \n ", "\u2028"])
def test_threshold_spans_never_cross_a_line_break(separator):
    text = separator.join(["Margaret Okafor", "John Smith", "Priya Patel"])
    r = make_text_result(text, [0.99] * 6)
    assert [text[s.start_char:s.end_char] for s in threshold_spans(r, 0.5)] == [
        "Margaret Okafor", "John Smith", "Priya Patel"]


def test_threshold_spans_join_words_on_one_line():
    text = "Margaret Okafor John Smith"
    r = make_text_result(text, [0.99, 0.99, 0.2, 0.99])  # the model's own dip splits
    assert [text[s.start_char:s.end_char] for s in threshold_spans(r, 0.5)] == ["Margaret Okafor", "Smith"]


@pytest.mark.parametrize("text,inside,expected", [
    ("😀 Margaret Okafor visited", [0.9, 0.99, 0.99, 0.0], "Margaret Okafor"),
    ("Margaret Okafor 👩‍💻 visited", [0.99, 0.99, 0.9, 0.0], "Margaret Okafor"),
    ("™ Apple ®", [0.9, 0.99, 0.9], "Apple"),
    ("🇺🇸 USA", [0.9, 0.99], "USA"),
    ("C ++ rocks", [0.99, 0.99, 0.0], "C ++"),  # ASCII symbols stay (a name can end in them)
    ("€ 5 each", [0.99, 0.99, 0.0], "€ 5"),  # currency signs stay (amounts)
])
def test_pictographs_never_enter_a_span(text, inside, expected):
    r = make_text_result(text, inside)
    assert [text[s.start_char:s.end_char] for s in threshold_spans(r, 0.5)] == [expected]


def test_a_pictograph_alone_is_no_span():
    r = make_text_result("hello 🍎 there", [0.0, 0.99, 0.0])
    assert threshold_spans(r, 0.5) == []


def test_label_distribution_one_label_is_a_yes_no_question():
    assert np.allclose(label_distribution(np.array([0.2]), exclusive=True), [0.2])
    assert np.allclose(label_distribution(np.array([0.9]), exclusive=True), [0.9])


def test_label_distribution_none_of_these():
    yes = np.array([0.1, 0.2])
    probs = label_distribution(yes, exclusive=True, none_of_these=True)
    none = 0.9 * 0.8
    assert np.allclose(probs, [(1 - none) / 3, 2 * (1 - none) / 3, none]) and probs.sum() == pytest.approx(1.0)
    assert np.allclose(label_distribution(yes, exclusive=False, none_of_these=True), [0.1, 0.2, none])
    assert np.allclose(label_distribution(np.array([0.3]), exclusive=True, none_of_these=True), [0.3, 0.7])


def test_the_degree_sign_is_a_unit_not_a_pictograph():
    r = make_text_result("turned 180 ° twice", [0.0, 0.99, 0.99, 0.0])
    assert [r.encoded.text[s.start_char:s.end_char] for s in threshold_spans(r, 0.5)] == ["180 °"]


def test_span_probability():
    r = make_result(["aa", "bb", "cc"], [0.9, 0.5, 0.1], split={1})
    assert span_probability(r, 0, 5) == pytest.approx(0.7)  # "aa bb"
    assert span_probability(r, 4, 5) == pytest.approx(0.5)  # part of a word counts as the word
    assert span_probability(r, 0, 8) == pytest.approx(0.5)
    assert span_probability(r, 2, 3) == 0.0  # only the space between two words
