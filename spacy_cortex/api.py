"""A small Python API over the same model and batching as the spaCy components.

Every function takes `model=` (a CortexModel, e.g. `nlp.get_pipe("cortex").model`); by
default the shipped checkpoint is loaded once and reused.

Arguments are checked first: a text that is not a string (or a sequence of strings where
many are allowed) is a TypeError naming the argument and what it got; a blank prompt,
question, hypothesis or query is a ValueError. The texts read (texts, contexts, premises,
passages, instructions) may be blank: they decide as the components do on a blank doc
(core.decoding): extract -> [], classify -> every label 0.0 (none_label 1.0), answer ->
text None with has_answer 0.0, entail -> neutral 1.0, similarity -> 0.0, rank and score ->
0.0, select -> no candidate.
"""
import threading
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from .core.decoding import (
    SPAN_EXTEND_THRESHOLD,
    SPAN_THRESHOLD,
    SPAN_WINDOW,
    NO_ANSWER_THRESHOLD,
    check_answer_settings,
    check_thresholds,
    check_window,
    classification_probs,
    extractive_answer,
    is_blank,
    label_scores,
    threshold_spans,
    yes_probability,
)
from .core.device import resolve_device
from .core.encoding import NEGATIVE, NEUTRAL, POSITIVE
from .core.model import CortexModel
from .core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from .templates import check_none_label, label_prompts, strip_end, task_template
from .relation_rules import (REL_EXTEND_THRESHOLD, REL_NO_ANSWER_THRESHOLD, REL_THRESHOLD, check_entities,
                             extract_relations, parse_relations)
from .relation_rules import requests as rel_requests

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
    """The given model, or the shipped one. Raises TypeError for anything but a CortexModel."""
    if model is None:
        return load_model()
    if not isinstance(model, CortexModel):
        raise TypeError(f"model must be a CortexModel (load_model(...) or nlp.get_pipe('cortex').model) or None, "
                        f"got {type(model).__name__}")
    return model


def _text(name: str, value) -> str:
    """A string argument. Raises TypeError naming `name` and the type it got."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    return value


def _prompt(name: str, value) -> str:
    """A string argument that must say something (the prompt side of a request). Raises
    TypeError for another type, ValueError for a blank string."""
    if is_blank(_text(name, value)):
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def _is_sequence(value) -> bool:
    """A list, tuple or other iterable of items: not a string, bytes or a mapping."""
    return isinstance(value, Iterable) and not isinstance(value, (str, bytes, bytearray, Mapping))


def _texts(name: str, value) -> List[str]:
    """A string (one item, never iterated character by character) or a sequence of strings
    as a list. Raises TypeError naming `name` and the first item that is not a string."""
    if isinstance(value, str):
        return [value]
    if not _is_sequence(value):
        raise TypeError(f"{name} must be a string or a sequence of strings, got {type(value).__name__}")
    items = list(value)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"{name} must be a string or a sequence of strings; item {i} is {type(item).__name__}")
    return items


def extract(texts: Texts, prompt: str, *, threshold: float = SPAN_THRESHOLD,
            extend_threshold: Optional[float] = SPAN_EXTEND_THRESHOLD,
            window: Optional[int] = SPAN_WINDOW, model=None) -> List[List[dict]]:
    """Spans of each text that answer the prompt: [{text, start_char, end_char, score}]
    per text (score in [0, 1]: mean inside-probability of the span's words). threshold,
    extend_threshold and window as cortex_ner's: a span holds a word reaching `threshold`
    and extends down to `extend_threshold` (None: off); `window` is the most text sub-tokens
    read at once (None: as many as the model's max_length leaves). A blank text has no span.
    Raises TypeError for texts that are not strings, ValueError for a blank prompt, a
    threshold outside (0, 1) or a window below 16 tokens."""
    _prompt("prompt", prompt)
    check_thresholds(threshold, extend_threshold)
    check_window(window)
    texts = _texts("texts", texts)
    results = _model(model).run_texts(((prompt, t) for t in texts), None if window is None else {prompt: window})
    return [[s.as_dict(t) for s in threshold_spans(r, threshold, extend_threshold)] for t, r in zip(texts, results)]


def relations(text: str, entities, relations, *, template: Optional[str] = None,
              threshold: float = REL_THRESHOLD, extend_threshold: Optional[float] = REL_EXTEND_THRESHOLD,
              window: Optional[int] = None, no_answer_threshold: float = REL_NO_ANSWER_THRESHOLD,
              model=None) -> List[dict]:
    """Relations between the entities of one text, as cortex_rel finds them (the rules of
    spacy_cortex.relation_rules): [{head, tail: {text, start_char, end_char, label}, label,
    score in [0, 1]}], sorted by head, tail and label.

    entities: (start_char, end_char, label) tuples or dicts with those keys; None: found
        with `extract` and cortex_ner's template, one prompt per entity label the relations
        name as head or tail (every span kept, overlaps included).
    relations: relation labels, or {label: {head, tail, prompt, threshold, symmetric}} as
        cortex_rel's config; template, threshold, extend_threshold, window and
        no_answer_threshold as there.
    Raises TypeError for a text that is not a string or entities of another shape,
    ValueError for offsets outside the text, no relations, a bad relation spec, a
    no_answer_threshold outside [0, 1], or entities None with relations that name no
    entity labels."""
    text = _text("text", text)
    specs = parse_relations(relations, template, threshold, no_answer_threshold)
    check_thresholds(threshold, extend_threshold)
    check_window(window)
    model = _model(model)
    if entities is None:
        found = _relation_entities(text, specs, model)
    else:
        found = check_entities(text, entities)
    asked = list(dict.fromkeys(prompt for _, _, prompt in rel_requests(text, found, specs)))
    results = dict(zip(asked, model.run_texts(((p, text) for p in asked), None if window is None else
                                              {p: window for p in asked})))
    span = lambda e: {"text": text[e[0]:e[1]], "start_char": e[0], "end_char": e[1], "label": e[2]}
    return [{"head": span(h), "tail": span(t), "label": label, "score": score}
            for h, t, label, score in extract_relations(text, found, specs, results, extend_threshold)]


def _relation_entities(text: str, specs: dict, model: CortexModel) -> List[Tuple[int, int, str]]:
    """The entities of the labels the relations name, found by `extract` with cortex_ner's prompts."""
    labels = sorted({t for rel in specs.values() for types in (rel.heads, rel.tails) for t in types or ()})
    if not labels or any(rel.heads is None or rel.tails is None for rel in specs.values()):
        raise ValueError("entities=None: every relation must name its head and tail entity labels "
                         "(or pass the entities)")
    prompts = label_prompts(labels, None, "ner")
    return [(s["start_char"], s["end_char"], label) for label in labels
            for s in extract(text, prompts[label], model=model)[0]]


def classify(
    texts: Texts,
    labels: Union[str, Sequence[str], Dict[str, str]],
    *,
    template: Optional[str] = None,
    exclusive: bool = True,
    none_label: Optional[str] = None,
    model=None,
) -> List[Dict[str, float]]:
    """{label: probability in [0, 1]} for each text; one yes/no prompt per label (a string
    is one label). exclusive: normalized over the labels (one label alone: its P(yes));
    none_label: adds that key with P(no label applies) (see decoding.label_distribution).
    A blank text scores 0.0 for every label (none_label 1.0), as cortex_textcat does.
    Raises TypeError for texts, labels or none_label that are not strings, ValueError for
    empty labels or prompts, or a template without {label}."""
    texts = _texts("texts", texts)
    if isinstance(labels, Mapping):  # {label: prompt}
        _texts("labels", list(labels))
        _texts("label prompts", list(labels.values()))
    else:
        labels = _texts("labels", labels)
    prompts = label_prompts(labels, template, "textcat")
    if none_label is not None:
        _text("none_label", none_label)
    check_none_label(none_label, prompts)
    names = sorted(prompts)
    keys = names + ([none_label] if none_label is not None else [])
    results = _model(model).run_texts((prompts[n], t) for t in texts for n in names)
    out = []
    for i, text in enumerate(texts):
        yes = np.array([yes_probability(r) for r in results[i * len(names) : (i + 1) * len(names)]])
        probs = label_scores(text, yes, exclusive, none_of_these=none_label is not None)
        out.append(dict(zip(keys, map(float, probs))))
    return out


def answer(question: str, contexts: Texts, *, max_answer_words: int = 30,
           no_answer_threshold: float = NO_ANSWER_THRESHOLD, model=None) -> List[dict]:
    """The answer of each context: {text, start_char, end_char, score, has_answer}.
    has_answer in [0, 1] is the probability that the context holds an answer; below
    no_answer_threshold (0.5, cortex_qa's default; 0 always answers) there is none: text,
    start_char and end_char None, score 0.0. Otherwise the best span of at most
    max_answer_words words, score in [0, 1] its mean inside-probability. A blank context
    has none (has_answer 0.0). The same rule as cortex_qa (core.decoding.extractive_answer).
    Raises TypeError for a question or contexts that are not strings, ValueError for a
    blank question, max_answer_words < 1 or no_answer_threshold outside [0, 1]."""
    _prompt("question", question)
    check_answer_settings(no_answer_threshold, max_answer_words)
    contexts = _texts("contexts", contexts)
    results = _model(model).run_texts((question, c) for c in contexts)
    answers = []
    for context, result in zip(contexts, results):
        span, has_answer = extractive_answer(result, max_answer_words, no_answer_threshold)
        entry = span.as_dict(context) if span else {"text": None, "start_char": None,
                                                     "end_char": None, "score": 0.0}
        entry["has_answer"] = has_answer
        answers.append(entry)
    return answers


def entail(premise: Texts, hypothesis: Texts, *, model=None) -> List[Dict[str, float]]:
    """{entailment, neutral, contradiction} probabilities per (premise, hypothesis) pair
    (one premise with many hypotheses or the other way round; they sum to 1). A blank
    premise entails and contradicts nothing: neutral 1.0. Raises TypeError for texts that
    are not strings, ValueError for a blank hypothesis or unequal numbers of texts."""
    premises, hypotheses = _pairs(("premise", premise), ("hypothesis", hypothesis))
    for h in hypotheses:
        _prompt("hypothesis", h)
    prompts = [task_template("entail").format(hypothesis=strip_end(h)) for h in hypotheses]
    results = _model(model).run_texts(zip(prompts, premises))
    return [_nli(classification_probs(r)) for r in results]


def _nli(probs: np.ndarray) -> Dict[str, float]:
    return {"entailment": float(probs[POSITIVE]), "neutral": float(probs[NEUTRAL]),
            "contradiction": float(probs[NEGATIVE])}


def _pairs(first: Tuple[str, Texts], second: Tuple[str, Texts]):
    """Two equally long lists from two (name, texts) arguments, one text paired with each
    of many either way round. Raises TypeError (naming the argument) for texts that are
    not strings, ValueError for unequal numbers."""
    a, b = _texts(*first), _texts(*second)
    if len(a) == 1 and len(b) > 1:
        a = a * len(b)
    elif len(b) == 1 and len(a) > 1:
        b = b * len(a)
    if len(a) != len(b):
        raise ValueError(f"Got {len(a)} and {len(b)} texts: pass equal numbers, or one and many")
    return a, b


def similarity(a: Texts, b: Texts, *, model=None) -> List[float]:
    """Semantic similarity in [0, 1] of each pair, symmetrised over both directions (each
    text is the prompt once). A blank text is about nothing: 0.0 with any text (not run).
    Raises TypeError for texts that are not strings, ValueError for unequal numbers."""
    left, right = _pairs(("a", a), ("b", b))
    read = [i for i, (x, y) in enumerate(zip(left, right)) if not (is_blank(x) or is_blank(y))]
    pairs = [(task_template("similarity").format(text=strip_end(left[i])), right[i]) for i in read]
    pairs += [(task_template("similarity").format(text=strip_end(right[i])), left[i]) for i in read]
    scores = [yes_probability(r) for r in _model(model).run_texts(pairs)]
    out = [0.0] * len(left)
    for k, i in enumerate(read):
        out[i] = (scores[k] + scores[len(read) + k]) / 2
    return out


def rank(query: str, passages: Texts, *, model=None) -> List[dict]:
    """Passages ordered by relevance to the query: [{index, score}], best first, score in
    [0, 1] (a string is one passage; a blank passage scores 0.0). Raises TypeError for a
    query or passages that are not strings, ValueError for a blank query."""
    _prompt("query", query)
    passages = _texts("passages", passages)
    results = _model(model).run_texts((task_template("rank").format(query=strip_end(query)), p) for p in passages)
    scores = [yes_probability(r) for r in results]
    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    return [{"index": i, "score": scores[i]} for i in order]


def score(instruction: str, candidates: Texts, *, model=None) -> List[float]:
    """Cappy-style (Tan et al. 2023, "Cappy: Outperforming and Boosting Large Multi-Task LMs
    with a Small Scorer"): probability in [0, 1] that each candidate response is correct for
    the instruction (the instruction is the context, so long instructions are windowed); a
    string is one candidate. A blank instruction asks nothing: every candidate 0.0, as in
    cortex_select. Raises TypeError for an instruction or candidates that are not strings."""
    return score_batch([(_text("instruction", instruction), _texts("candidates", candidates))], model=model)[0]


def score_batch(items: Sequence[Tuple[str, Texts]], *, model=None) -> List[List[float]]:
    """`score` over many (instruction, candidates) items in one batched run: every
    (instruction, candidate) pair of every item is one request of the same token-budget
    batching. Returns one list of scores per item, in candidate order. Raises TypeError
    (naming the item) for an item that is not an (instruction, candidates) pair of strings."""
    pairs, sizes = [], []
    for instruction, candidates in _items(items):
        pairs += [(task_template("score").format(response=c), instruction) for c in candidates]
        sizes.append(len(candidates))
    scores = [yes_probability(r) for r in _model(model).run_texts(pairs)]
    bounds = np.cumsum([0] + sizes)
    return [scores[a:b] for a, b in zip(bounds[:-1], bounds[1:])]


def _items(items: Sequence[Tuple[str, Texts]]) -> List[Tuple[str, List[str]]]:
    """(instruction, candidates list) per item. Raises TypeError naming the item."""
    if not _is_sequence(items):
        raise TypeError(f"items must be a sequence of (instruction, candidates) pairs, got {type(items).__name__}")
    checked = []
    for i, item in enumerate(items):
        if not (_is_sequence(item) and isinstance(item, Sequence) and len(item) == 2):
            got = f"{type(item).__name__} of {len(item)}" if isinstance(item, Sequence) else type(item).__name__
            raise TypeError(f"items: item {i} must be an (instruction, candidates) pair, got {got}")
        checked.append((_text(f"instruction of item {i}", item[0]), _texts(f"candidates of item {i}", item[1])))
    return checked


def select(instruction: str, candidates: Texts, *, model=None) -> dict:
    """The best candidate response for the instruction: {index, candidate, score, scores}
    (scores: every candidate's `score`, in candidate order; ties go to the first). A blank
    instruction selects nothing (index and candidate None, score 0.0), as in cortex_select.
    Raises TypeError as `score`, ValueError for no candidates."""
    return select_batch([(_text("instruction", instruction), _texts("candidates", candidates))], model=model)[0]


def select_batch(items: Sequence[Tuple[str, Texts]], *, model=None) -> List[dict]:
    """`select` over many (instruction, candidates) items in one batched run."""
    items = _items(items)
    for i, (_, candidates) in enumerate(items):
        if not candidates:
            raise ValueError(f"item {i} has no candidates to select from")
    out = []
    for (instruction, candidates), scores in zip(items, score_batch(items, model=model)):
        if is_blank(instruction):
            out.append({"index": None, "candidate": None, "score": 0.0, "scores": scores})
            continue
        best = int(np.argmax(scores))
        out.append({"index": best, "candidate": candidates[best], "score": scores[best], "scores": scores})
    return out


Generator = Callable[[str, int], Sequence[str]]


def rerank(instruction: str, generate: Generator, n: int = 4, *, model=None) -> List[dict]:
    """Cappy as an auxiliary to a generator: asks `generate(instruction, n)` for n candidate
    responses (any callable: a transformers pipeline via `transformers_generator`, an HTTP
    client, a spacy-llm model) and returns them best first as [{candidate, score}]. Repeated
    candidates (common when sampling) are scored once and listed once. Raises TypeError for
    an instruction that is not a string, a generate that is not callable or that returns
    something other than a list of strings (None, one string, bytes), ValueError for n that
    is not a whole number of at least 1."""
    _text("instruction", instruction)
    if not callable(generate):
        raise TypeError(f"generate must be a callable (instruction, n) -> list of strings, got {type(generate).__name__}")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be at least 1 (a whole number), got {n!r}")
    generated = generate(instruction, n)
    if not _is_sequence(generated):
        raise TypeError(f"generate(instruction, n) must return a list of strings, got {type(generated).__name__}")
    candidates = list(dict.fromkeys(_texts("the candidates of generate(instruction, n)", generated)))
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
