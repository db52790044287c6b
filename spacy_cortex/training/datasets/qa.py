"""Extractive QA converters: SQuAD (questions with their answer span, and questions paired
with another article's paragraph: no answer) and the SQuAD-format and multi-span sets.
TRAINING splits only, through the corpus registry."""
import random
import re
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

from ...corpus.readers import read_csv, read_json
from ...corpus.registry import read_train, train_file, train_files
from ..records import STATS, converters, detok, locate, qa_prompt, record


# ---------------------------------------------------------------- SQuAD
def squad_questions(raw_dir: Path) -> Iterator[tuple]:
    """(article_idx, context, question, answer_text, answer_start) from the reconstructed TRAIN file."""
    data = read_train(raw_dir, "squad_v1.1", "train")["data"]
    for ai, art in enumerate(data):
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                for ans in qa["answers"][:1]:
                    yield ai, para["context"], qa["question"].strip(), ans["text"], ans.get("answer_start")


@converters.register("squad")
def convert_squad(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    for _, context, q, answer, start in squad_questions(raw_dir):
        span = locate(context, answer, start)
        if span is None:
            STATS["squad: answer not found"] += 1
            continue
        yield record("squad", qa_prompt(q, templates, rng), context, spans=[span])


@converters.register("squad_noanswer")
def convert_squad_noanswer(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """~1 in 3 questions paired with a paragraph from ANOTHER article -> no answer."""
    rows = list(squad_questions(raw_dir))
    paras = sorted({(ai, c) for ai, c, *_ in rows})
    for ai, _, q, *_ in rows:
        if rng.random() >= 1 / 3:
            continue
        other_ai, other = rng.choice(paras)
        while other_ai == ai:
            other_ai, other = rng.choice(paras)
        yield record("squad_noanswer", qa_prompt(q, templates, rng), other, spans=[])


# ---------------------------------------------------------------- SQuAD-format sets
def add_span(spans: List[List[int]], span: Optional[List[int]]) -> None:
    """Keep `span` unless it overlaps one already kept (annotators' alternatives of one answer)."""
    if span and not any(span[0] < e and s < span[1] for s, e in spans):
        spans.append(span)


def squad_format(task, path, templates, rng, all_answers=False) -> Iterator[dict]:
    """SQuAD v1.1-format file: the first answer (all_answers: every answer that does not overlap
    an earlier one: separate evidence spans) located in the paragraph."""
    for art in read_json(path)["data"]:
        for para in art["paragraphs"]:
            context = para["context"]
            for qa in para["qas"]:
                question = qa["question"].strip()
                spans: List[List[int]] = []
                for ans in qa["answers"] if all_answers else qa["answers"][:1]:
                    add_span(spans, locate(context, ans["text"], ans.get("answer_start")))
                if not question or not spans:
                    STATS[f"{task}: answer not found"] += 1
                    continue
                yield record(task, qa_prompt(question, templates, rng), context, spans=sorted(spans))


@converters.register("squadshifts")
def convert_squadshifts(raw_dir, templates, rng):
    # SQuAD-shifts' "test" files are TRAINING material here (squadshifts/SOURCE.md; not this corpus's EVAL)
    for name in ("new_wiki", "amazon_reviews", "reddit"):
        yield from squad_format("squadshifts", train_file(raw_dir, "squadshifts", name), templates, rng)


@converters.register("policyqa")
def convert_policyqa(raw_dir, templates, rng):
    # dev only (there is no train file); test.json is never read
    yield from squad_format("policyqa", train_file(raw_dir, "policyqa", "dev"), templates, rng, all_answers=True)


SUBJQA_NONE = "ANSWERNOTFOUND"


def subjqa_pairs(raw_dir: Path) -> Iterator[Tuple[str, str, List[List[int]]]]:
    """(question, review, spans) per question-review pair of the train splits. The annotators'
    rows of a pair are merged: answerable if any of them marked a span (non-overlapping spans
    kept); spans=[] only when every annotator said ANSWERNOTFOUND."""
    for path in train_files(raw_dir, "subjqa", "train"):
        pairs: Dict[Tuple[str, str], List[List[int]]] = {}
        for r in read_csv(path):
            question, review = r["question"].strip(), r["review"]
            context = review[:review.rindex(SUBJQA_NONE)].rstrip() if SUBJQA_NONE in review else review.rstrip()
            spans = pairs.setdefault((question, context), [])
            if r["human_ans_spans"].strip() == SUBJQA_NONE:
                continue
            s, e = (int(x) for x in re.findall(r"\d+", r["human_ans_indices"])[:2])
            e = min(e, len(context))  # a few spans run into the ANSWERNOTFOUND token
            while s < e and context[s].isspace():
                s += 1
            while e > s and context[e - 1].isspace():
                e -= 1
            if s < e:
                add_span(spans, [s, e])
            else:
                STATS["subjqa: empty answer span"] += 1
        for (question, context), spans in pairs.items():
            if question and context:
                yield question, context, sorted(spans)


@converters.register("subjqa")
def convert_subjqa(raw_dir, templates, rng):
    for question, context, spans in subjqa_pairs(raw_dir):
        yield record("subjqa", qa_prompt(question, templates, rng), context, spans=spans)


# ---------------------------------------------------------------- MultiSpanQA (token BIO)
NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", "%", ")", "]", "}", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def join_tokens(tokens: Sequence[str]) -> Tuple[str, List[int]]:
    """Text of whitespace tokens with PTB spacing undone (as records.detok), and each token's start."""
    text, starts = "", []
    for i, tok in enumerate(tokens):
        if i and tok not in NO_SPACE_BEFORE and tokens[i - 1] not in NO_SPACE_AFTER:
            text += " "
        starts.append(len(text))
        text += tok
    return text, starts


def bio_spans(labels: Sequence[str], starts: Sequence[int], tokens: Sequence[str]) -> List[List[int]]:
    spans: List[List[int]] = []
    inside = False
    for tag, start, tok in zip(labels, starts, tokens):
        if tag == "B" or (tag == "I" and not inside):
            spans.append([start, start + len(tok)])
        elif tag == "I":
            spans[-1][1] = start + len(tok)
        inside = tag in ("B", "I")
    return spans


@converters.register("multispanqa")
def convert_multispanqa(raw_dir, templates, rng):
    # valid.json is the only labelled split held (train is absent); every question has 2+ spans
    for r in read_train(raw_dir, "multispanqa", "valid")["data"]:
        context, starts = join_tokens(r["context"])
        spans = bio_spans(r["label"], starts, r["context"])
        question = detok(" ".join(r["question"]))
        question = question[:1].upper() + question[1:] + ("" if question.endswith("?") else "?")
        if not spans:
            STATS["multispanqa: no span"] += 1
            continue
        yield record("multispanqa", qa_prompt(question, templates, rng), context, spans=spans)
