"""A small Python API over the same model and batching as the spaCy components.

Every function takes `model=` (a CortexModel, e.g. `nlp.get_pipe("cortex").model`); by
default the shipped checkpoint is loaded once and reused.
"""
import threading
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .core.decoding import (
    SPAN_EXTEND_THRESHOLD,
    SPAN_THRESHOLD,
    SPAN_WINDOW,
    answer_probability,
    best_span,
    check_thresholds,
    check_window,
    classification_probs,
    label_distribution,
    threshold_spans,
    yes_probability,
)
from .core.device import resolve_device
from .core.encoding import NEGATIVE, NEUTRAL, POSITIVE
from .core.model import CortexModel
from .core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from .templates import check_none_label, label_prompts, strip_end, task_template

Texts = Union[str, Sequence[str]]


_LOAD_MODEL_LOCK = threading.Lock()


def load_model(checkpoint: str = DEFAULT_CHECKPOINT, precision: str = "auto", device: str = "auto") -> CortexModel:
    """A registered checkpoint name or a model folder, loaded once per process and device,
    also when several threads ask at once. device: "auto" (spaCy's current GPU after
    spacy.prefer_gpu / require_gpu, else CPU), "cpu", "cuda", "cuda:N" or "mps". Raises
    FileNotFoundError / CheckpointError for a name that is not registered or a folder that
    is not a cortex checkpoint, DeviceError for a device that is not available."""
    with _LOAD_MODEL_LOCK:
        return _load_model(checkpoint, precision, str(resolve_device(device)))


@lru_cache(maxsize=4)
def _load_model(checkpoint: str, precision: str, device: str) -> CortexModel:
    return CortexModel.from_path(resolve_checkpoint(checkpoint), precision=precision, device=device)


def _model(model: Optional[CortexModel]) -> CortexModel:
    return model if model is not None else load_model()


def _as_list(texts: Texts) -> List[str]:
    """One string is one item (never iterated character by character)."""
    return [texts] if isinstance(texts, str) else list(texts)


def _require_text(name: str, value: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def extract(texts: Texts, prompt: str, *, threshold: float = SPAN_THRESHOLD,
            extend_threshold: Optional[float] = SPAN_EXTEND_THRESHOLD,
            window: Optional[int] = SPAN_WINDOW, model=None) -> List[List[dict]]:
    """Spans of each text that answer the prompt: [{text, start_char, end_char, score}]
    per text (score in [0, 1]: mean inside-probability of the span's words). threshold,
    extend_threshold and window as cortex_ner's: a span holds a word reaching `threshold`
    and extends down to `extend_threshold` (None: off); `window` is the most text sub-tokens
    read at once (None: as many as the model's max_length leaves). Raises ValueError for an
    empty prompt, a threshold outside (0, 1) or a window below 16 tokens."""
    _require_text("prompt", prompt)
    check_thresholds(threshold, extend_threshold)
    check_window(window)
    texts = _as_list(texts)
    results = _model(model).run_texts(((prompt, t) for t in texts), None if window is None else {prompt: window})
    return [[s.as_dict(t) for s in threshold_spans(r, threshold, extend_threshold)] for t, r in zip(texts, results)]


def classify(
    texts: Texts,
    labels: Union[str, Sequence[str], Dict[str, str]],
    *,
    template: Optional[str] = None,
    exclusive: bool = True,
    none_label: Optional[str] = None,
    model=None,
) -> List[Dict[str, float]]:
    """{label: probability} for each text; one yes/no prompt per label (a string is one
    label). exclusive: normalized over the labels (one label alone: its P(yes));
    none_label: adds that key with P(no label applies) (see decoding.label_distribution).
    Raises ValueError for empty labels or prompts, or a template without {label}."""
    texts = _as_list(texts)
    prompts = label_prompts(labels, template, "textcat")
    check_none_label(none_label, prompts)
    names = sorted(prompts)
    keys = names + ([none_label] if none_label is not None else [])
    results = _model(model).run_texts((prompts[n], t) for t in texts for n in names)
    out = []
    for i in range(len(texts)):
        yes = np.array([yes_probability(r) for r in results[i * len(names) : (i + 1) * len(names)]])
        probs = label_distribution(yes, exclusive, none_of_these=none_label is not None)
        out.append(dict(zip(keys, map(float, probs))))
    return out


def answer(question: str, contexts: Texts, *, max_answer_words: int = 30, model=None) -> List[dict]:
    """Best answer span of each context: {text, start_char, end_char, score,
    has_answer} (text None for an empty context). Raises ValueError for an empty question
    or max_answer_words < 1."""
    _require_text("question", question)
    if max_answer_words < 1:
        raise ValueError(f"max_answer_words must be at least 1, got {max_answer_words}")
    contexts = _as_list(contexts)
    results = _model(model).run_texts((question, c) for c in contexts)
    answers = []
    for context, result in zip(contexts, results):
        span = best_span(result, max_answer_words)
        entry = span.as_dict(context) if span else {"text": None, "start_char": None,
                                                     "end_char": None, "score": 0.0}
        entry["has_answer"] = answer_probability(result)
        answers.append(entry)
    return answers


def entail(premise: Texts, hypothesis: Texts, *, model=None) -> List[Dict[str, float]]:
    """{entailment, neutral, contradiction} probabilities per (premise, hypothesis) pair."""
    premises, hypotheses = _pairs(premise, hypothesis)
    for h in hypotheses:
        _require_text("hypothesis", h)
    prompts = [task_template("entail").format(hypothesis=strip_end(h)) for h in hypotheses]
    results = _model(model).run_texts(zip(prompts, premises))
    return [_nli(classification_probs(r)) for r in results]


def _nli(probs: np.ndarray) -> Dict[str, float]:
    return {"entailment": float(probs[POSITIVE]), "neutral": float(probs[NEUTRAL]),
            "contradiction": float(probs[NEGATIVE])}


def _pairs(a: Texts, b: Texts):
    """Two equally long lists, one text paired with each of many either way round."""
    a, b = _as_list(a), _as_list(b)
    if len(a) == 1 and len(b) > 1:
        a = a * len(b)
    elif len(b) == 1 and len(a) > 1:
        b = b * len(a)
    if len(a) != len(b):
        raise ValueError(f"Got {len(a)} and {len(b)} texts: pass equal numbers, or one and many")
    return a, b


def similarity(a: Texts, b: Texts, *, model=None) -> List[float]:
    """Semantic similarity in [0, 1] of each pair, symmetrised over both directions (each
    text is the prompt once). Raises ValueError for an empty text."""
    left, right = _pairs(a, b)
    for text in (*left, *right):
        _require_text("each text", text)
    pairs = [(task_template("similarity").format(text=strip_end(x)), y) for x, y in zip(left, right)]
    pairs += [(task_template("similarity").format(text=strip_end(y)), x) for x, y in zip(left, right)]
    scores = [yes_probability(r) for r in _model(model).run_texts(pairs)]
    n = len(left)
    return [(scores[i] + scores[n + i]) / 2 for i in range(n)]


def rank(query: str, passages: Texts, *, model=None) -> List[dict]:
    """Passages ordered by relevance to the query: [{index, score}], best first (a string
    is one passage). Raises ValueError for an empty query."""
    _require_text("query", query)
    passages = _as_list(passages)
    results = _model(model).run_texts((task_template("rank").format(query=strip_end(query)), p) for p in passages)
    scores = [yes_probability(r) for r in results]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [{"index": i, "score": scores[i]} for i in order]


def score(instruction: str, candidates: Texts, *, model=None) -> List[float]:
    """Cappy-style (Tan et al. 2023, "Cappy: Outperforming and Boosting Large Multi-Task LMs
    with a Small Scorer"): probability in [0, 1] that each candidate response is correct for
    the instruction (the instruction is the context, so long instructions are windowed); a
    string is one candidate. Raises ValueError for an empty instruction."""
    return score_batch([(instruction, candidates)], model=model)[0]


def score_batch(items: Sequence[Tuple[str, Texts]], *, model=None) -> List[List[float]]:
    """`score` over many (instruction, candidates) items in one batched run: every
    (instruction, candidate) pair of every item is one request of the same token-budget
    batching. Returns one list of scores per item, in candidate order. Raises ValueError
    for an empty instruction (naming the item)."""
    pairs, sizes = [], []
    for i, (instruction, candidates) in enumerate(items):
        _require_text(f"instruction of item {i}", instruction)
        candidates = _as_list(candidates)
        pairs += [(task_template("score").format(response=c), instruction) for c in candidates]
        sizes.append(len(candidates))
    scores = [yes_probability(r) for r in _model(model).run_texts(pairs)]
    bounds = np.cumsum([0] + sizes)
    return [scores[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def select(instruction: str, candidates: Texts, *, model=None) -> dict:
    """The best candidate response for the instruction: {index, candidate, score, scores}
    (scores: every candidate's `score`, in candidate order; ties go to the first). Raises
    ValueError for an empty instruction or no candidates."""
    return select_batch([(instruction, candidates)], model=model)[0]


def select_batch(items: Sequence[Tuple[str, Texts]], *, model=None) -> List[dict]:
    """`select` over many (instruction, candidates) items in one batched run."""
    items = [(instruction, _as_list(candidates)) for instruction, candidates in items]
    for i, (_, candidates) in enumerate(items):
        if not candidates:
            raise ValueError(f"item {i} has no candidates to select from")
    out = []
    for (_, candidates), scores in zip(items, score_batch(items, model=model)):
        best = int(np.argmax(scores))
        out.append({"index": best, "candidate": candidates[best], "score": scores[best], "scores": scores})
    return out


Generator = Callable[[str, int], Sequence[str]]


def rerank(instruction: str, generate: Generator, n: int = 4, *, model=None) -> List[dict]:
    """Cappy as an auxiliary to a generator: asks `generate(instruction, n)` for n candidate
    responses (any callable: a transformers pipeline via `transformers_generator`, an HTTP
    client, a spacy-llm model) and returns them best first as [{candidate, score}]. Repeated
    candidates (common when sampling) are scored once and listed once. Raises ValueError for
    n < 1, and TypeError when the generator returns something other than a list of strings."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    generated = generate(instruction, n)
    if isinstance(generated, str) or not all(isinstance(c, str) for c in generated):
        raise TypeError(f"generate(instruction, n) must return a list of strings, got {generated!r:.200}")
    candidates = list(dict.fromkeys(generated))
    if not candidates:
        return []
    scores = score(instruction, candidates, model=model)
    order = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    return [{"candidate": candidates[i], "score": scores[i]} for i in order]


def transformers_generator(pipeline, **generate_kwargs) -> Generator:
    """A `rerank` generator over a transformers "text-generation" pipeline: n sampled
    continuations of the instruction (the prompt itself left out). generate_kwargs go to the
    pipeline call (max_new_tokens, temperature, ...); sampling is on unless they say otherwise."""
    kwargs = {"do_sample": True, "max_new_tokens": 64, **generate_kwargs}

    def generate(instruction: str, n: int) -> List[str]:
        outputs = pipeline(instruction, num_return_sequences=n, return_full_text=False, **kwargs)
        return [o["generated_text"].strip() for o in outputs]

    return generate
