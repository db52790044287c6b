"""spacy_cortex.core.encoding: tokenization, windows, alignment and batching."""
import numpy as np
import pytest
from conftest import tiny_tokenizer

from spacy_cortex.core.encoding import (
    CLS_LABELS,
    IGNORE,
    NEGATIVE,
    NEUTRAL,
    POSITIVE,
    MIN_CONTEXT_TOKENS,
    PromptTooLongError,
    RequestResult,
    Window,
    build_input,
    context_room,
    encode_prompt,
    encode_text,
    encode_texts,
    isolate_symbols,
    merge_windows,
    pad_batch,
    token_budget_batches,
    PASS_COST_TOKENS,
    token_type_ids,
    context_windows,
    INSIDE_WORD,
    LINE,
    PARAGRAPH,
    SENTENCE,
    WORD,
)


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


# --- windowing -----------------------------------------------------------------------------


def random_breaks(n: int, seed: int) -> np.ndarray:
    """Break levels as a text has them: the first token opens a paragraph, a few
    paragraph, line and sentence breaks, mostly word starts, some word pieces."""
    rng = np.random.default_rng(seed)
    levels = rng.choice([INSIDE_WORD, WORD, SENTENCE, LINE, PARAGRAPH], size=n, p=[0.2, 0.65, 0.1, 0.03, 0.02])
    levels[0] = PARAGRAPH
    return levels.astype(np.int8)


@pytest.mark.parametrize(
    "n_context,room,stride,seed",
    [(1, 10, 2, 0), (10, 10, 2, 1), (11, 10, 2, 2), (100, 20, 3, 3), (1000, 61, 16, 4),
     (5000, 110, 64, 5), (97, 20, 9, 6), (400, 40, 0, 7)],
)
@pytest.mark.parametrize("max_sentences", [None, 2])
def test_context_windows_cover_every_token_and_respect_breaks(n_context, room, stride, seed, max_sentences):
    breaks = random_breaks(n_context, seed)
    windows = context_windows(breaks, room, stride, max_sentences)
    covered = np.zeros(n_context, dtype=int)
    for (start, end), (next_start, _) in zip(windows, windows[1:] + [(n_context, None)]):
        assert 0 <= start < end <= n_context and end - start <= room
        assert start < next_start <= end  # in order, no gap, overlap only inside a paragraph
        assert end - next_start <= stride
        covered[start:end] += 1
        inner = breaks[start + 1 : end]
        if next_start < end:  # an overlapping cut is inside one paragraph
            assert not (inner >= PARAGRAPH).any()
        assert not (inner >= PARAGRAPH).any()  # one paragraph per window
    assert covered.min() >= 1
    assert windows[0][0] == 0 and windows[-1][1] == n_context


def test_context_windows_cut_at_the_best_break_and_never_inside_a_word():
    breaks = np.full(100, INSIDE_WORD, dtype=np.int8)
    breaks[::2] = WORD  # two-piece words
    breaks[0] = PARAGRAPH
    breaks[30] = SENTENCE
    breaks[45] = SENTENCE
    windows = context_windows(breaks, room=40, stride=20)
    assert windows[0] == (0, 30)  # the sentence break in the second half of the room
    assert windows[1][0] == 16  # at most 20 tokens back, past the middle, at a word start
    assert all(breaks[s] >= WORD for s, _ in windows)
    assert all(e == 100 or breaks[e] >= WORD for _, e in windows)


def test_context_windows_of_a_long_paragraph_hold_at_most_max_sentences():
    """issue 25 item 3: a window of a paragraph longer than the room holds at most
    max_sentences sentences; a paragraph that fits the room is read whole."""
    breaks = np.full(60, WORD, dtype=np.int8)
    breaks[0] = PARAGRAPH
    breaks[10:60:10] = SENTENCE  # six sentences of 10 tokens: fits a room of 64
    assert context_windows(breaks, room=64, stride=64, max_sentences=4) == [(0, 60)]
    breaks = np.full(120, WORD, dtype=np.int8)
    breaks[0] = PARAGRAPH
    breaks[10:120:10] = SENTENCE  # twelve sentences of 10 tokens
    assert context_windows(breaks, room=64, stride=64) == [(0, 60), (40, 100), (80, 120)]
    assert context_windows(breaks, room=64, stride=64, max_sentences=4) == \
        [(0, 40), (30, 70), (60, 100), (90, 120)]
    breaks[10:40:10] = WORD  # a long first sentence (40 tokens): the window keeps the room's cut
    assert context_windows(breaks, room=64, stride=64, max_sentences=4)[0] == (0, 60)


def test_context_windows_one_paragraph_per_window():
    breaks = np.full(300, WORD, dtype=np.int8)
    breaks[[0, 100, 200]] = PARAGRAPH
    assert context_windows(breaks, room=250, stride=64) == [(0, 100), (100, 200), (200, 300)]
    breaks[[10, 20]] = PARAGRAPH  # a heading or greeting is a paragraph of its own
    assert context_windows(breaks, room=250, stride=64) == [(0, 10), (10, 20), (20, 100), (100, 200), (200, 300)]


def test_context_windows_zero_length_context():
    assert context_windows(np.zeros(0, dtype=np.int8), 10, 2) == [(0, 0)]


def test_encoded_text_breaks(tok):
    text = "Attendees: Ann Lee\nBob Ray. Done.\n\nNew para. lower after dot"
    encoded = encode_text(tok, text)
    levels = {text[a:b]: level for (a, b), level in zip(encoded.word_spans, encoded.word_breaks)}
    assert levels["Attendees"] == PARAGRAPH and levels["Ann"] == WORD
    assert levels["Bob"] == LINE  # a line break inside a sentence (a list, wrapped text)
    assert levels["Done"] == SENTENCE
    assert levels["New"] == PARAGRAPH and levels["lower"] == WORD
    assert encoded.span_breaks.tolist() == [lvl >= LINE for lvl in encoded.word_breaks]
    pieces = encoded.breaks[1:][encoded.word_ids[1:] == encoded.word_ids[:-1]]
    assert (pieces == INSIDE_WORD).all()


def test_merge_windows_takes_each_token_from_most_central_window():
    # window A covers tokens 0..5, window B covers 4..9 (overlap 4, 5)
    a = np.tile([1.0, 0.0, 0.0], (6, 1)).astype(np.float32)
    b = np.tile([0.0, 1.0, 0.0], (6, 1)).astype(np.float32)
    merged = merge_windows(10, [(0, a), (4, b)])
    source = merged.argmax(1)
    # token 4 sits 1 from A's right edge but at B's left edge -> A; token 5 the reverse -> B
    assert source.tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1]
    # order of the windows does not matter
    assert np.array_equal(merge_windows(10, [(4, b), (0, a)]), merged)


def test_merge_windows_three_windows_middle_wins_in_its_centre():
    n = 20
    parts = []
    for k, start in enumerate([0, 6, 12]):
        probs = np.zeros((8, 3), dtype=np.float32)
        probs[:, k] = 1.0
        parts.append((start, probs))
    merged = merge_windows(n, parts)
    src = merged.argmax(1)
    for t in range(n):
        # expected: the window in which t has the largest distance to an edge (first wins ties)
        best, best_c = None, -1
        for k, (start, probs) in enumerate(parts):
            if start <= t < start + len(probs):
                pos = t - start
                c = min(pos, len(probs) - 1 - pos)
                if c > best_c:
                    best, best_c = k, c
        assert src[t] == best
    assert np.allclose(merged.sum(1), 1.0)  # every token got a value


# --- encoding text -------------------------------------------------------------------------


def test_encode_text_offsets_slice_the_text(tok):
    text = "The patient was given 20 mg atorvastatin, asked about Refund!"
    enc = encode_text(tok, text)
    assert len(enc) == len(enc.ids) == len(enc.offsets) == len(enc.word_ids) > 0
    pieces = tok.convert_ids_to_tokens(enc.ids.tolist())
    for piece, (s, e) in zip(pieces, enc.offsets):
        assert 0 <= s < e <= len(text)
        assert text[s:e].lower() == piece.replace("##", "")
    # word ids are non-decreasing and start at 0
    assert enc.word_ids[0] == 0
    assert np.all(np.diff(enc.word_ids) >= 0)


def test_word_spans(tok):
    text = "Hello,  world of atorvastatin."
    enc = encode_text(tok, text)
    spans = enc.word_spans
    words = [text[s:e] for s, e in spans]
    assert words == ["Hello", ",", "world", "of", "atorvastatin", "."]
    # 'hello' is split into several sub-tokens of one word
    assert (enc.word_ids == 0).sum() > 1
    assert spans.dtype == np.int64 and spans.shape == (6, 2)


def test_emoji_text(tok):
    """Pictographs the tokenizer cannot spell ([UNK]) stay out of the model input: an
    unknown token beside a name made the model miss it (0.43 instead of 0.88)."""
    text = "I love 🍕 pizza 😀!"
    enc = encode_text(tok, text)
    words = [text[s:e] for s, e in enc.word_spans]
    assert words == ["I", "love", "pizza", "!"]
    assert tok.unk_token_id not in enc.ids
    for s, e in enc.offsets:
        assert text[s:e].strip() == text[s:e] != ""
    assert len(encode_text(tok, "🍕😀 🇺🇸")) == 0  # nothing left: an empty context


@pytest.mark.parametrize("control", ["\f", "\v", "\x85", "\x1e"])
def test_line_ending_controls_are_line_breaks(tok, control):
    """BERT's normalizer deletes control characters, which glued 'Watson\fDaniel' into one word."""
    text = f"emma watson{control}daniel"
    enc = encode_text(tok, text)
    assert [text[a:b] for a, b in enc.word_spans] == ["emma", "watson", "daniel"]
    assert enc.span_breaks.tolist()[1:] == [False, True]


@pytest.mark.parametrize("text", ["", " ", "   \n\t  "])
def test_empty_and_whitespace_text(tok, text):
    enc = encode_text(tok, text)
    assert len(enc) == 0
    assert enc.offsets.shape == (0, 2)
    assert enc.word_spans.shape == (0, 2)
    result = RequestResult(np.ones((1, 3)) / 3, np.zeros((0, 3), dtype=np.float32), enc)
    assert result.word_probs().shape == (0, 3)


def test_encode_prompt_has_no_special_tokens(tok):
    ids = encode_prompt(tok, "Which medications are mentioned?")
    assert tok.cls_token_id not in ids and tok.sep_token_id not in ids
    assert tok.convert_ids_to_tokens(ids.tolist()) == ["which", "medications", "are", "mentioned", "?"]


# --- inputs ------------------------------------------------------------------------------------


def test_build_input_and_token_types(tok):
    prompt = encode_prompt(tok, "what dose")
    context = encode_text(tok, "given 20 mg").ids
    ids = build_input(tok, prompt, context)
    assert ids[0] == tok.cls_token_id
    assert ids[len(prompt) + 1] == tok.sep_token_id and ids[-1] == tok.sep_token_id
    assert ids[1 : len(prompt) + 1].tolist() == prompt.tolist()
    w = Window(0, 0, ids, len(prompt))
    assert ids[w.context_offset : w.context_offset + len(context)].tolist() == context.tolist()
    types = token_type_ids(len(prompt), len(ids))
    assert types[: len(prompt) + 2].tolist() == [0] * (len(prompt) + 2)
    assert types[len(prompt) + 2 :].tolist() == [1] * (len(context) + 1)


def test_context_room():
    assert context_room(None, 10, 64) == 51
    assert context_room(None, 64 - 3 - MIN_CONTEXT_TOKENS, 64) == MIN_CONTEXT_TOKENS


@pytest.mark.parametrize("n_prompt", [64 - 3 - MIN_CONTEXT_TOKENS + 1, 61, 200])
def test_prompt_too_long_error(n_prompt):
    with pytest.raises(PromptTooLongError) as info:
        context_room(None, n_prompt, 64)
    message = str(info.value)
    assert f"Prompt of {n_prompt} tokens" in message
    assert "max_length" in message and "shorten the prompt" in message
    assert isinstance(info.value, ValueError)


def _window(request, n):
    return Window(request, 0, np.arange(n, dtype=np.int64) + 5, 1)


def test_pad_batch(tok):
    windows = [_window(0, 4), _window(1, 7)]
    batch = pad_batch(windows, tok.pad_token_id)
    assert batch.input_ids.shape == (2, 7)
    assert batch.attention_mask.tolist() == [[1] * 4 + [0] * 3, [1] * 7]
    assert (batch.input_ids[0, 4:] == tok.pad_token_id).all()
    assert batch.token_type_ids[0].tolist() == [0, 0, 0, 1, 0, 0, 0]
    assert batch.windows == windows


def test_token_budget_batches_sorted_and_within_budget():
    rng = np.random.default_rng(0)
    windows = [_window(i, int(n)) for i, n in enumerate(rng.integers(5, 60, size=50))]
    batches = token_budget_batches(windows, max_batch_tokens=200, max_batch_size=6)
    flat = [w for b in batches for w in b]
    assert sorted(w.request for w in flat) == list(range(50))  # every window exactly once
    lengths = [len(w.input_ids) for w in flat]
    assert lengths == sorted(lengths)
    for b in batches:
        assert len(b) <= 6
        assert len(b) == 1 or len(b) * max(len(w.input_ids) for w in b) <= 200
    # a huge budget still splits where padding would cost more than a pass
    unbounded = token_budget_batches(windows, 10**9, 1000)
    assert 1 < len(unbounded) < 10


def padded_cost(batches):
    return sum(len(b) * max(len(w.input_ids) for w in b) + PASS_COST_TOKENS for b in batches)


def test_token_budget_batches_are_optimal():
    """The cuts minimize padded tokens + pass cost: no contiguous split of the sorted
    lengths does better (checked by brute force over every split)."""
    rng = np.random.default_rng(1)
    for trial in range(20):
        lengths = sorted(int(n) for n in rng.integers(5, 120, size=9))
        windows = [_window(i, n) for i, n in enumerate(lengths)]
        budget, size = 400, 5
        got = padded_cost(token_budget_batches(windows, budget, size))
        best = float("inf")
        for mask in range(2 ** (len(lengths) - 1)):  # a cut after position i when bit i is set
            bounds = [0] + [i + 1 for i in range(len(lengths) - 1) if mask >> i & 1] + [len(lengths)]
            parts = [windows[a:b] for a, b in zip(bounds, bounds[1:])]
            if all(len(p) <= size and (len(p) == 1 or len(p) * len(p[-1].input_ids) <= budget) for p in parts):
                best = min(best, padded_cost(parts))
        assert got == best


def test_token_budget_batches_split_far_lengths_keep_near_ones():
    near = [_window(i, 30 + i % 2) for i in range(10)]  # 30/31: one token of padding each
    far = [_window(10 + i, 200) for i in range(3)]
    batches = token_budget_batches(near + far, 10**9, 1000)
    assert [len(b) for b in batches] == [10, 3]


def test_token_budget_batches_equal_lengths_share_one_batch():
    windows = [_window(i, 30) for i in range(40)]
    assert len(token_budget_batches(windows, 10**9, 1000)) == 1


def test_word_probs_average_sub_tokens(tok):
    text = "hello of"
    enc = encode_text(tok, text)
    n_hello = int((enc.word_ids == 0).sum())
    token_probs = np.zeros((len(enc), 3), dtype=np.float32)
    token_probs[:n_hello] = [0.0, 1.0, 0.0]
    token_probs[0] = [0.0, 0.0, 1.0]
    token_probs[n_hello:] = [1.0, 0.0, 0.0]
    r = RequestResult(np.ones((1, 3)) / 3, token_probs, enc)
    wp = r.word_probs()
    assert wp.shape == (2, 3)
    assert np.allclose(wp[0], [0.0, (n_hello - 1) / n_hello, 1 / n_hello])
    assert np.allclose(wp[1], [1.0, 0.0, 0.0])


def test_label_ids():
    assert (NEUTRAL, POSITIVE, NEGATIVE, IGNORE) == (0, 1, 2, -100)
    assert CLS_LABELS == {"neutral": 0, "positive": 1, "negative": 2, None: -100}


@pytest.mark.parametrize("text,word", [
    ("Thanks Apple🍎 for", "Apple"), ("Apple™ rocks", "Apple"), ("Nike® shoes", "Nike"),
    ("🇺🇸USA", "USA"), ("👩‍💻Ada", "Ada"), ("Paris❤️", "Paris"), ("🙏🏻Pope", "Pope"), ("Amazon→AWS", "AWS"),
])
def test_symbols_glued_to_words_are_words_of_their_own(text, word):
    """WordPiece turns a word it cannot spell wholly into [UNK]: 'apple🍎' hid the entity."""
    tok = tiny_tokenizer()
    isolate_symbols(tok)
    isolate_symbols(tok)  # idempotent
    assert str(tok.backend_tokenizer.pre_tokenizer.__getstate__()).count("Split") == 1
    encoded = encode_text(tok, text)
    words = [text[a:b] for a, b in encoded.word_spans]
    assert word in words
    pieces = encoded.ids[encoded.word_ids == words.index(word)]
    assert tok.unk_token_id not in pieces


def test_plain_text_tokenizes_as_before():
    plain, isolated = tiny_tokenizer(), tiny_tokenizer()
    isolate_symbols(isolated)
    text = "The patient, aged 54, was given 20 mg (twice) of atorvastatin; C++ and $5 too, 200°F, £4, ±2."
    assert encode_text(plain, text).ids.tolist() == encode_text(isolated, text).ids.tolist()


def test_encode_texts_in_one_call_equals_one_by_one(tok):
    texts = ["Margaret Okafor was given 20 mg.", "", "Apple🍎 and 🇺🇸 flags\fpage two", "a\n\nb " * 30, "🍕"]
    together = encode_texts(tok, texts)
    for text, batched in zip(texts, together):
        alone = encode_text(tok, text)
        assert batched.text == text
        for field in ("ids", "offsets", "word_ids"):
            assert np.array_equal(getattr(batched, field), getattr(alone, field))
    assert encode_texts(tok, []) == []


def test_word_probs_and_one_window_merge_match_the_general_path(tok):
    """The fast paths (one reduceat when every word kept a sub-token; one window over the
    whole context) give what the general ones give."""
    rng = np.random.default_rng(0)
    for text in ["Margaret Okafor was given 20 mg of atorvastatin.", "", "🍕 Apple🍎 x", "un-believable!!"]:
        enc = encode_text(tok, text)
        probs = rng.random((len(enc), 3)).astype(np.float32)
        result = RequestResult(np.zeros((1, 3)), merge_windows(len(enc), [(0, probs)]), enc)
        assert np.array_equal(result.token_probs, probs) and result.token_probs is not probs
        n_words = len(enc.word_spans)
        sums, counts = np.zeros((n_words, 3)), np.zeros(n_words)
        np.add.at(sums, enc.word_ids, probs)
        np.add.at(counts, enc.word_ids, 1.0)
        assert np.allclose(result.word_probs(), sums / np.maximum(counts, 1.0)[:, None])
