"""The rows of the evaluation sets, read from the raw folder through the corpus registry:
SQuAD (context, question, answers), NLI (premise, hypothesis, label), topics (text, label)
and multiple choice (instruction, candidates, index of the gold one)."""
import html
import re
from pathlib import Path
from typing import List, Optional, Tuple

from ..corpus.registry import read_eval
from ..training.datasets.tasks import WINOGRANDE_QUESTIONS

NLI_LABELS = ("entailment", "neutral", "contradiction")


def squad_rows(raw: Path) -> List[Tuple[str, str, List[str]]]:
    data = read_eval(raw, "squad_v1.1", "dev")["data"]
    return [(p["context"], q["question"].strip(), [a["text"] for a in q["answers"]])
            for art in data for p in art["paragraphs"] for q in p["qas"]]


def nli_rows(raw: Path, name: str, split: str, tag: Optional[str] = None) -> List[Tuple[str, str, str]]:
    """(premise, hypothesis, label) of a JSON-lines NLI split; `tag`: only its rows of that tag (ANLI rounds)."""
    return [(r["premise"], r["hypothesis"], r["label"]) for r in read_eval(raw, name, split)
            if tag is None or r.get("tag") == tag]


def xnli_rows(raw: Path) -> List[Tuple[str, str, str]]:
    rows = read_eval(raw, "xnli_en", "test")[1:]
    return [(r[1], r[2], NLI_LABELS[int(r[3])]) for r in rows]


def ag_news_rows(raw: Path) -> List[Tuple[str, str]]:
    classes = ["World", "Sports", "Business", "Sci-Tech"]
    def clean(text):  # AG's escapes: "#39;" for "&#39;", "\\" for line breaks
        return html.unescape(re.sub(r"(?<!&)(#\d+|quot|amp|lt|gt);", r"&\1;", text)).replace("\\", " ")
    return [(clean(f"{r['Title']}. {r['Description']}"), classes[int(r["Class Index"]) - 1])
            for r in read_eval(raw, "ag_news", "test")]


def dbpedia_rows(raw: Path) -> List[Tuple[str, str]]:
    classes = [c.strip() for c in read_eval(raw, "dbpedia14_subset", "classes") if c.strip()]
    by_name = {re.sub(r"(?<!^)([A-Z])", r" \1", c).lower(): c for c in classes}
    rows = [(text, classes[int(label) - 1]) for text, label in read_eval(raw, "dbpedia14_subset", "test")[1:]]
    rows += [(f"{r['title']} {r['content'].strip()}", by_name[r["label"]])
             for r in read_eval(raw, "dbpedia14_subset", "test_sample")]
    return rows


def yahoo_rows(raw: Path) -> List[Tuple[str, str]]:
    return [(f"{r['title']} {r['content']}".strip(), r["label"])
            for r in read_eval(raw, "yahoo_answers_topics_subset", "test_sample")]


Choice = Tuple[str, List[str], int]  # (instruction, candidate responses, index of the gold one)


def commonsenseqa_rows(raw: Path) -> List[Choice]:
    rows = read_eval(raw, "commonsenseqa", "dev")
    return [(r["question"]["stem"].strip(), [c["text"] for c in r["question"]["choices"]],
             [c["label"] for c in r["question"]["choices"]].index(r["answerKey"])) for r in rows]


def openbookqa_rows(raw: Path) -> List[Choice]:
    return [(r["question_stem"], r["choices"]["text"], r["choices"]["label"].index(r["answerKey"]))
            for r in read_eval(raw, "openbookqa", "test") if r is not None]


def winogrande_rows(raw: Path) -> List[Choice]:
    # the first of the question wordings training used, fixed so that runs compare
    return [(f"{r['sentence'].strip()}\n{WINOGRANDE_QUESTIONS[0]}", [r["option1"], r["option2"]], int(r["answer"]) - 1)
            for r in read_eval(raw, "winogrande", "dev")]
