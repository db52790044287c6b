"""cortex_qa: extractive questions (answer span or no answer) and yes/no questions."""
import re
import warnings
import string
from collections import Counter
from typing import Dict, Iterable, List, Optional, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example

from .core.decoding import NO_ANSWER_THRESHOLD, check_answer_settings, extractive_answer, yes_probability
from .pipeline import CortexTask, Task, make_span, make_task_component
from .registry import tasks

SPANS_KEY = "cortex_qa"
BOOLEAN_STARTS = {
    "is", "are", "was", "were", "am", "do", "does", "did", "can", "could", "will",
    "would", "should", "shall", "has", "have", "had", "may", "might", "must",
}
QuestionSpec = Union[str, Dict[str, str]]


def install_extensions() -> None:
    for name in ("cortex_answers", "cortex_questions"):
        if not Doc.has_extension(name):
            Doc.set_extension(name, default=None)


def question_type(question: str) -> str:
    words = question.strip().split(maxsplit=1)
    return "boolean" if words and words[0].lower() in BOOLEAN_STARTS else "extractive"


def normalize_question(spec: QuestionSpec) -> Dict[str, str]:
    """A question string, or {"question": ..., "type": "extractive" | "boolean"}."""
    if isinstance(spec, str):
        spec = {"question": spec}
    question = str(spec.get("question", "")).strip()
    if not question:
        raise ValueError(f"Empty question in {spec!r}")
    kind = spec.get("type") or question_type(question)
    if kind not in ("extractive", "boolean"):
        raise ValueError(f"Unknown question type {kind!r}: use 'extractive' or 'boolean'")
    unknown = set(spec) - {"question", "type"}
    if unknown:
        raise ValueError(f"Unknown question keys {sorted(unknown)}: use 'question' and 'type'")
    return {"question": question, "type": kind}


class QATask(Task):
    def __init__(self, questions: List[QuestionSpec], no_answer_threshold: float, max_answer_words: int):
        install_extensions()
        check_answer_settings(no_answer_threshold, max_answer_words)
        self.questions = [normalize_question(q) for q in questions]
        asked = [q["question"] for q in self.questions]
        repeated = sorted({q for q in asked if asked.count(q) > 1})
        if repeated:
            warnings.warn(f"Questions given more than once (each is answered once per listing): {repeated}")
        self.no_answer_threshold = no_answer_threshold
        self.max_answer_words = max_answer_words

    @property
    def labels(self) -> List[str]:
        """The configured questions: the labels of the answer spans in Doc.spans."""
        return [q["question"] for q in self.questions]

    def doc_questions(self, doc: Doc) -> List[Dict[str, str]]:
        extra = [normalize_question(q) for q in (doc._.cortex_questions or [])]
        return self.questions + extra

    def prompts(self, doc: Doc) -> List[str]:
        return [q["question"] for q in self.doc_questions(doc)]

    def answer(self, doc: Doc, question: Dict[str, str], result) -> Tuple[dict, Optional[Span]]:
        """The answer entry and, for a found extractive answer, its span: the spaCy tokens
        that cover the best span, so that the entry and Doc.spans give the same text and
        offsets ('m_okafor99', not the word piece 'm'). The no-answer rule is
        decoding.extractive_answer's, shared with spacy_cortex.answer."""
        entry = {"question": question["question"], "type": question["type"], "text": None,
                 "start_char": None, "end_char": None}
        if question["type"] == "boolean":
            p_yes = yes_probability(result)
            entry.update(text="yes" if p_yes >= 0.5 else "no", score=max(p_yes, 1 - p_yes))
            return entry, None
        found, p_answer = extractive_answer(result, self.max_answer_words, self.no_answer_threshold)
        if found is None:
            entry["score"] = 1.0 - p_answer  # confidence that there is no answer
            return entry, None
        span = make_span(doc, found.start_char, found.end_char, question["question"], found.score)
        entry.update(text=span.text, start_char=span.start_char, end_char=span.end_char, score=found.score)
        return entry, span

    def training_records(self, reference: Doc) -> List[dict]:
        """Gold answer spans from reference.spans["cortex_qa"] (label = question); a
        configured question without a gold span is a no-answer example."""
        answers: Dict[str, list] = {
            q["question"]: [] for q in self.questions if q["type"] == "extractive"
        }
        for span in reference.spans.get(SPANS_KEY, []):
            answers.setdefault(span.label_, []).append((span.start_char, span.end_char))
        return [{"prompt": q, "context": reference.text, "spans": spans} for q, spans in answers.items()]

    def apply(self, doc: Doc, results) -> None:
        answered = [self.answer(doc, q, results[q["question"]]) for q in self.doc_questions(doc)]
        doc._.cortex_answers = [entry for entry, _ in answered]
        doc.spans[SPANS_KEY] = [span for _, span in answered if span is not None]

    def score(self, examples: Iterable[Example]) -> Dict[str, float]:
        """SQuAD exact match / F1 against gold answers in reference.spans["cortex_qa"]
        (span label = question), and yes/no accuracy against reference._.cortex_answers."""
        exact, f1, n = 0.0, 0.0, 0
        for eg in examples:
            gold: Dict[str, List[str]] = {}
            for span in eg.reference.spans.get(SPANS_KEY, []):
                gold.setdefault(span.label_, []).append(span.text)
            for a in eg.reference._.cortex_answers or []:
                if a.get("text"):
                    gold.setdefault(a["question"], []).append(a["text"])
            for a in eg.predicted._.cortex_answers or []:
                if a["question"] in gold:
                    n += 1
                    exact += max(exact_match(a["text"] or "", g) for g in gold[a["question"]])
                    f1 += max(token_f1(a["text"] or "", g) for g in gold[a["question"]])
        return {"qa_exact": exact / n if n else None, "qa_f1": f1 / n if n else None}


def normalize_answer(text: str) -> str:
    """SQuAD's normalization: lower case, no punctuation, articles or extra spaces."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def token_f1(prediction: str, gold: str) -> float:
    pred, ref = normalize_answer(prediction).split(), normalize_answer(gold).split()
    common = sum((Counter(pred) & Counter(ref)).values())
    if not pred or not ref:
        return float(pred == ref)
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


@tasks.register("spacy_cortex.QA.v1")
def make_qa_task(
    questions: Optional[List[QuestionSpec]] = None,
    no_answer_threshold: float = NO_ANSWER_THRESHOLD,
    max_answer_words: int = 30,
) -> QATask:
    return QATask(list(questions or []), no_answer_threshold, max_answer_words)


@Language.factory(
    "cortex_qa",
    assigns=["doc._.cortex_answers", "doc.spans"],
    default_config={
        "questions": [], "no_answer_threshold": NO_ANSWER_THRESHOLD, "max_answer_words": 30,
        "upstream": "cortex",
    },
    default_score_weights={"qa_f1": 1.0, "qa_exact": 0.0},
)
def make_cortex_qa(
    nlp: Language,
    name: str,
    questions: List[QuestionSpec],
    no_answer_threshold: float,
    max_answer_words: int,
    upstream: str,
) -> CortexTask:
    """Question answering over each doc.

    questions: strings or {"question": ..., "type": "extractive" | "boolean"}; the type
        defaults to boolean for questions opening with an auxiliary verb ("Is", "Does"...).
        Per-doc questions are read from doc._.cortex_questions as well.
    no_answer_threshold: below this [CLS] probability that the text holds an answer, an
        extractive question is answered with text None (score: 1 - that probability, the
        confidence that there is none). A blank doc holds no answer (score 1.0), and a
        boolean question on it is answered "no" (score 1.0), as in spacy_cortex.answer.
    max_answer_words: longest answer span considered.
    Writes doc._.cortex_answers ([{question, type, text, start_char, end_char, score}])
    and doc.spans["cortex_qa"] (one span per found answer, labelled with the question).
    upstream: name of the cortex component (added if missing).
    """
    build = lambda: make_qa_task(questions, no_answer_threshold, max_answer_words)
    return make_task_component(nlp, name, upstream, build)
