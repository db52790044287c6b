"""Multiple-choice converters (CommonsenseQA, OpenBookQA, WinoGrande) and the scoring pairs
they, PromptSource (promptsource.py) and the scorer's adaptation (adapt.py) share.

A scoring pair is what `api.score` reads: prompt = the `score` template of templates/tasks.json
filled with a candidate response, context = the instruction; the gold candidate is positive,
the others negative, all in one group. TRAINING splits only, through the corpus registry.
"""
from pathlib import Path
from typing import Iterator, List, Sequence

from ...corpus.registry import read_train
from ...templates import task_template
from ..records import NEG, POS, STATS, converters, group_id, record

WINOGRANDE_QUESTIONS = ["Which option fills the blank?", "Which option does the _ stand for?",
                        "Who or what fills the blank (_)?", "Fill in the blank: which option fits?"]


def score_prompt(candidate: str) -> str:
    """The prompt `api.score` runs for a candidate response."""
    return task_template("score").format(response=candidate)


def choice_records(task: str, instruction: str, candidates: Sequence[str], gold: int) -> Iterator[dict]:
    """One scoring pair per distinct candidate: the gold one positive, the others negative;
    one group."""
    answer = candidates[gold].strip()
    seen = set()
    group = group_id(task, instruction)
    for i, cand in enumerate(candidates):
        cand = cand.strip()
        if not cand or cand in seen or (i != gold and cand == answer):
            continue
        seen.add(cand)
        yield {**record(task, score_prompt(cand), instruction, POS if i == gold else NEG), "group": group}


def commonsenseqa_rows(raw_dir: Path) -> List[dict]:
    return read_train(raw_dir, "commonsenseqa", "train")  # dev is EVAL


@converters.register("commonsenseqa")
def convert_commonsenseqa(raw_dir, templates, rng):
    for r in commonsenseqa_rows(raw_dir):
        choices = r["question"]["choices"]
        keys = [c["label"] for c in choices]
        if r["answerKey"] not in keys:
            STATS["commonsenseqa: no answer key"] += 1
            continue
        yield from choice_records("commonsenseqa", r["question"]["stem"].strip(), [c["text"] for c in choices],
                                  keys.index(r["answerKey"]))


def openbookqa_rows(raw_dir: Path, task: str = "openbookqa") -> Iterator[dict]:
    """Parsed rows of train + dev (test is EVAL)."""
    for split in ("train", "dev"):
        for r in read_train(raw_dir, "openbookqa", split):
            if r is None:
                STATS[f"{task}: openbookqa row with unparsed choices"] += 1
            else:
                yield r


@converters.register("openbookqa")
def convert_openbookqa(raw_dir, templates, rng):
    for r in openbookqa_rows(raw_dir):
        yield from choice_records("openbookqa", r["question_stem"], r["choices"]["text"],
                                  r["choices"]["label"].index(r["answerKey"]))


def winogrande_rows(raw_dir: Path) -> List[dict]:
    return read_train(raw_dir, "winogrande", "train")  # dev is EVAL


@converters.register("winogrande")
def convert_winogrande(raw_dir, templates, rng):
    for r in winogrande_rows(raw_dir):
        instruction = f"{r['sentence'].strip()}\n{rng.choice(WINOGRANDE_QUESTIONS)}"
        yield from choice_records("winogrande", instruction, [r["option1"], r["option2"]], int(r["answer"]) - 1)
