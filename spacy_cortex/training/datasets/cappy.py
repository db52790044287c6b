"""Cappy-style correctness pairs: an instruction built from a training row of SQuAD, BoolQ,
MNLI, TREC, BANKING77 or emotion, with its gold response (positive) and one wrong response
(negative). TRAINING splits only, through the corpus registry."""
import re
from typing import Iterator

from ...corpus.registry import read_train
from ..records import NEG, POS, converters, fill, record
from .labels import banking_rows, emotion_rows, trec_rows
from .qa import squad_questions

CAPPY_PER_SOURCE = 1700  # 6 sources x 1700 instructions x 2 responses ~ 20k records


def _cappy_pair(instr_key, fields, gold, wrong, templates, rng) -> Iterator[dict]:
    context = fill(rng, templates["cappy_instructions"][instr_key], **fields)
    for resp, cls in ((gold, POS), (wrong, NEG)):
        yield record("cappy", fill(rng, templates["cappy"], response=resp), context, cls)


@converters.register("cappy")
def convert_cappy(raw_dir, templates, rng):
    def sample(rows):
        return rng.sample(rows, min(CAPPY_PER_SOURCE, len(rows)))

    squad = list(squad_questions(raw_dir))
    answers = [a.strip() for *_, a, _ in squad]
    for _, ctx, q, ans, _ in sample(squad):
        ans = ans.strip()
        # wrong answer: a capitalized phrase from the same passage (plausible distractor) or another question's answer
        cands = [m for m in re.findall(r"[A-Z][\w-]+(?: [A-Z][\w-]+)*", ctx) if m not in ans and ans not in m]
        wrong = rng.choice(cands) if cands and rng.random() < 0.7 else rng.choice(answers)
        if wrong == ans:
            continue
        yield from _cappy_pair("squad", {"question": q, "passage": ctx}, ans, wrong, templates, rng)
    for r in sample(read_train(raw_dir, "boolq_train_subset", "train")):
        gold, wrong = ("yes", "no") if r["answer"] else ("no", "yes")
        yield from _cappy_pair("boolq", {"question": r["question"], "passage": r["passage"]}, gold, wrong, templates, rng)
    for r in sample(read_train(raw_dir, "mnli_train_subset", "train")):
        wrong = rng.choice([l for l in ("entailment", "neutral", "contradiction") if l != r["label"]])
        yield from _cappy_pair("nli", {"premise": r["premise"], "hypothesis": r["hypothesis"]}, r["label"], wrong, templates, rng)
    trec_names = {k: v[0] for k, v in templates["trec_labels"].items()}
    for key, rows, to_name in (("trec", trec_rows(raw_dir), trec_names.get),
                               ("banking77", banking_rows(raw_dir), str),
                               ("emotion", emotion_rows(raw_dir), str)):
        labels = sorted({l for _, l in rows})
        for text, label in sample(rows):
            wrong = rng.choice([l for l in labels if l != label])
            yield from _cappy_pair(key, {"text": text}, to_name(label), to_name(wrong), templates, rng)
