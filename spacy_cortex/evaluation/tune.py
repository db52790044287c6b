"""Choose the decoding settings on data that is neither trained on nor an EVAL set.

    python -m spacy_cortex.evaluation.tune RAW_DIR CORPUS_DIR --model CHECKPOINT [--mix configs/train_mix.json]

- answer-span log-odds bias (decoding.ANSWER_LOG_ODDS_BIAS): SQuAD TRAIN questions past the
  rows the mix trains on (CORPUS_DIR/squad.jsonl from spacy_cortex.training.convert);
- NER prompt template, threshold and prefer_specific (cortex_ner's defaults): WNUT-17 dev,
  every type prompted through each candidate template; and, for the zero-shot setting the
  defaults serve, the CrossNER dev sets (five domains, their labels by name as evaluate
  gives them; their test sets are EVAL), as the average entity F1 over the domains.

Prints EM/F1 per bias and P/R/F per template and threshold; the model is run once per data set and only the
decoding is repeated. The chosen values are set in the code by hand, with the figures in the
model card.
"""
import itertools
import json
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import typer
from spacy.scorer import Scorer
from spacy.training import Example
from wasabi import msg

from ..core.decoding import SPAN_WINDOW, best_span
from ..corpus.readers import read_bio, read_jsonl
from ..corpus.registry import CROSSNER_DOMAINS, eval_file
from ..ner import NERTask
from ..qa import exact_match, token_f1
from ..templates import label_prompts
from .evaluator import Evaluator, eval_labels, ner_label_names, rename_tag
from ..commands import typer_app

app = typer_app()

BIASES = (-3.0, -2.5, -2.0, -1.5, -1.0, -0.5, 0.0, 0.5, 1.0)
THRESHOLDS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95)  # a confident model peaks high
EXTEND_THRESHOLDS = (None, 0.5, 0.6, 0.7)  # each with the thresholds above it
NER_TEMPLATES = ("{label}", "Find all {label} mentioned in the text.")
WNUT_NAMES = {"person": "person", "location": "location", "corporation": "company",
              "product": "product", "creative-work": "creative work", "group": "group"}


def unused_squad_rows(corpus: Path, mix: Dict[str, int], dev_per_task: int, n: int) -> List[dict]:
    """SQuAD rows after those train.load_corpus reads (dev + the mix's count)."""
    skip = mix["squad"] + dev_per_task
    rows = read_jsonl(corpus / "squad.jsonl", skip + n)[skip:]
    if len(rows) < n:
        raise ValueError(f"Only {len(rows)} SQuAD rows are unused by the mix; asked for {n}")
    return rows


def sweep_answer_bias(ev: Evaluator, rows: Sequence[dict]) -> List[dict]:
    results = ev.model.run_texts((r["prompt"], r["context"]) for r in rows)
    table = []
    for bias in BIASES:
        em, f1 = [], []
        for row, res in zip(rows, results):
            span = best_span(res, bias=bias)
            pred = row["context"][span.start_char : span.end_char] if span else ""
            golds = [row["context"][a:b] for a, b in row["spans"]]
            em.append(max(exact_match(pred, g) for g in golds))
            f1.append(max(token_f1(pred, g) for g in golds))
        table.append({"bias": bias, "exact": float(np.mean(em)), "f1": float(np.mean(f1))})
    return table


def sweep_ner(ev: Evaluator, sentences: Sequence, template: str, names: Dict[str, str] = WNUT_NAMES) -> List[dict]:
    """The cortex_ner decoding (spans per label, overlaps resolved by score, with or without
    the most specific label winning) per threshold, the labels prompted through `template`.
    names: {tag in the data: its name in the prompt}; labels are given by name, as evaluate
    gives them (prefer_specific judges the names), and the gold tags renamed to match."""
    prompts = label_prompts(list(names.values()), template, "ner")
    texts = [ev.words_doc(words).text for words, _ in sentences]
    flat = ev.model.run_texts(((p, text) for text in texts for p in prompts.values()),
                              {p: SPAN_WINDOW for p in prompts.values()})  # as cortex_ner reads them
    n = len(prompts)
    per_doc = [dict(zip(prompts.values(), flat[i * n : (i + 1) * n])) for i in range(len(texts))]
    table = []
    settings = [(t, e) for t in THRESHOLDS for e in EXTEND_THRESHOLDS if e is None or e < t]
    # one task per prefer_specific, so that the labels' subtypes are judged once, not per setting
    tasks = {specific: NERTask(prompts, 0.5, spans_key=None, prefer_specific=specific) for specific in (False, True)}
    for (threshold, extend), prefer_specific in itertools.product(settings, (False, True)):
        task = tasks[prefer_specific]
        task.threshold, task.extend_threshold = threshold, extend
        task.prepare(ev.model)
        examples = []
        for results, (words, tags) in zip(per_doc, sentences):
            pred = ev.words_doc(words)
            task.apply(pred, results)  # what cortex_ner writes to Doc.ents
            examples.append(Example(pred, ev.words_doc(words, [rename_tag(t, names) for t in tags])))
        scores = Scorer.score_spans(examples, "ents")
        table.append({"template": template, "threshold": threshold, "extend_threshold": extend,
                      "prefer_specific": prefer_specific,
                      "p": scores["ents_p"] or 0.0,
                      "r": scores["ents_r"] or 0.0, "f": scores["ents_f"] or 0.0})
    return table


def sweep_crossner_dev(ev: Evaluator, raw_dir: Path, template: str, sentences: int) -> List[dict]:
    """sweep_ner on each CrossNER domain's dev set (its first `sentences`), every label of the
    domain by the name evaluate gives it; rows of the average P / R / F over the domains."""
    spec = eval_labels()["ner"]["crossner"]
    tables = []
    for domain in CROSSNER_DOMAINS:
        data = read_bio(eval_file(raw_dir, "crossner", f"{domain}_dev"), spec.get("tags"))[:sentences]
        names = ner_label_names("crossner", {t[2:] for _, tags in data for t in tags if t != "O"})
        tables.append(sweep_ner(ev, data, template, names))
    return [{**rows[0], **{k: float(np.mean([r[k] for r in rows])) for k in "prf"}} for rows in zip(*tables)]


def ner_table(rows: List[dict], title: str) -> None:
    msg.table([(r["template"], r["threshold"], r["extend_threshold"], r["prefer_specific"],
                *(f"{100 * r[k]:.1f}" for k in "prf")) for r in rows],
              header=("template", "threshold", "extend", "specific", "P", "R", "F"), divider=True, title=title)


def best_ner(rows: List[dict], where: str) -> str:
    best = max(rows, key=lambda r: r["f"])
    return (f"{where}: best NER template {best['template']!r} at threshold {best['threshold']}, "
            f"extend_threshold {best['extend_threshold']}, prefer_specific {best['prefer_specific']} "
            f"(F1 {100 * best['f']:.1f})")


@app.command()
def tune(
    raw_dir: Path = typer.Argument(..., help="the corpus/raw folder (WNUT-17 dev)"),
    corpus: Path = typer.Argument(..., help="converted corpus (squad.jsonl)"),
    model: str = typer.Option(..., help="registered checkpoint name or Hugging Face folder"),
    mix: Path = typer.Option(Path("configs/train_mix.json"), help="the training mix, to skip trained rows"),
    dev_per_task: int = typer.Option(100, help="as given to spacy_cortex.training.train"),
    squad_questions: int = typer.Option(500),
    wnut_sentences: int = typer.Option(1009, help="WNUT-17 dev has 1,009"),
    crossner_sentences: int = typer.Option(200, help="per CrossNER domain's dev set (they have 350-450)"),
    precision: str = typer.Option("bf16"),
):
    ev = Evaluator(raw_dir, model, precision)
    squad = unused_squad_rows(corpus, json.loads(mix.read_text()), dev_per_task, squad_questions)
    bias_table = sweep_answer_bias(ev, squad)
    msg.table([(r["bias"], f"{100 * r['exact']:.1f}", f"{100 * r['f1']:.1f}") for r in bias_table],
              header=("answer bias", "EM", "F1"), divider=True,
              title=f"SQuAD train, {len(squad)} unused questions")
    wnut = read_bio(eval_file(raw_dir, "wnut17", "dev"))[:wnut_sentences]
    wnut_rows = [row for template in NER_TEMPLATES for row in sweep_ner(ev, wnut, template)]
    ner_table(wnut_rows, f"WNUT-17 dev, {len(wnut)} sentences")
    crossner_rows = [row for template in NER_TEMPLATES
                     for row in sweep_crossner_dev(ev, raw_dir, template, crossner_sentences)]
    ner_table(crossner_rows, f"CrossNER dev, average of {len(CROSSNER_DOMAINS)} domains, "
                             f"up to {crossner_sentences} sentences each")
    best_bias = max(bias_table, key=lambda r: r["f1"])["bias"]
    msg.good(f"best answer bias {best_bias}; {best_ner(wnut_rows, 'WNUT-17 dev')}; "
             f"{best_ner(crossner_rows, 'CrossNER dev')}")


if __name__ == "__main__":
    app()
