"""Learning curves of `adapt ner` and `adapt textcat`: the test score after adapting on 10,
50 or all sentences of a domain (NER) or 5 or 20 texts per label (textcat), the time it took,
and what the model forgot (CoNLL-2003 and SST-2 before and after).

    python -m spacy_cortex.evaluation.adapt_curves RAW_DIR OUTPUT_DIR [--sets crossner_ai,crossner_music]
        [--sizes 10,50,all] [--seeds 0,1,2] [--minutes 5] [--lrs 3e-5] [--replay-shares 0,0.3]
    python -m spacy_cortex.evaluation.adapt_curves RAW_DIR OUTPUT_DIR --sets banking77 --sizes 5,20

RAW_DIR is the raw public sets (corpus/raw, INDEX.md). Protocol, per set, size, seed and
setting (learning rate x replay share):
- CrossNER domains: the sentences are a seeded sample of the domain's train split (nested:
  the 10 are the first of the 50); the test split (EVAL) is only scored. MIT restaurant and
  movie have no curve: their only split here is EVAL, which is never trained on (INDEX.md).
- banking77 (textcat, 77 exclusive intents): a size is texts per intent, a seeded sample of
  its train split (nested); scored on its test split. Neither split is EVAL, and the
  training mixes hold 1,200 of its train rows, so size 0 is "before adapting", not zero-shot.
- `adapt` runs as a user runs it: a JSONL file of the sentences (spans, or one "label" per
  text; labels given by their names as words, as the zero-shot evaluation gives them), no
  --dev (20% held out, seeded), the time budget --minutes.
- Test score of model-best and of model-last on --test-limit test rows (a seeded subset,
  the same for every run), next to the base model's (size 0): NER exact span-and-type F1
  (spaCy's Scorer), textcat accuracy (the top category); forgetting: CoNLL-2003 test entity
  F1 and SST-2 dev accuracy of model-best minus the base model's, via evaluation.evaluate at
  --forgetting-scale.
- --merge-weights: each run is also scored averaged with the base model, weight by weight
  (adapt --merge-weight, WiSE-FT), at each share of the adapted weights; 1 is the run as
  adapted.
Writes OUTPUT_DIR/adapt_curves.json (every run) and adapt_curves.md (means over seeds); the
adapted models are deleted after scoring unless --keep-models.
"""
import json
import random
import shutil
import statistics
from itertools import product
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import typer
from spacy.scorer import Scorer
from spacy.training import Example

from ..batch.pipelines import parse_labels
from ..commands import typer_app
from ..core.checkpoints import DEFAULT_CHECKPOINT
from ..corpus.readers import read_bio
from ..corpus.registry import CROSSNER_DOMAINS, eval_file, read_eval, read_train, train_file
from ..templates import label_words
from ..training.fewshot import (DEFAULT_LR, DEFAULT_MERGE_WEIGHT, DEFAULT_REPLAY_SHARE, MAIN_SCORE, AdaptSettings, adapt,
                                merge_pipeline, starting_weights)
from .evaluate import evaluate
from .evaluator import Evaluator, eval_labels, ner_label_names, rename_tag, subset

Sentence = Tuple[List[str], List[str]]  # words, IOB2 tags (NER); or text, [label name] (textcat)
# set -> (raw set, train split, test split, eval_labels scheme)
CURVE_SETS = {f"crossner_{d}": ("crossner", f"{d}_train", f"{d}_test", "crossner") for d in CROSSNER_DOMAINS}
TEXTCAT_SETS = {"banking77": ("banking77", "train", "test")}  # set -> (raw set, train split, test split)
FORGETTING_SETS = {"conll2003": "ents_f", "sst2": "accuracy"}
app = typer_app(__doc__.split("\n\n")[0])


def read_split(raw: Path, name: str, split: str, scheme: str, training: bool) -> List[Sentence]:
    """The sentences of a split, tags renamed as the zero-shot evaluation renames them;
    a training split through the registry's train_file (which refuses EVAL splits)."""
    path = train_file(raw, name, split) if training else eval_file(raw, name, split)
    return read_bio(path, eval_labels()["ner"][scheme].get("tags"))


def task_of(set_name: str) -> str:
    return "textcat" if set_name in TEXTCAT_SETS else "ner"


def curve_data(raw: Path, set_name: str) -> Tuple[List[Sentence], List[Sentence], Dict[str, str]]:
    """(training pool, test rows, {tag or category: label name}) of a curve set."""
    if set_name in TEXTCAT_SETS:
        name, train_split, test_split = TEXTCAT_SETS[set_name]
        read = {train_split: read_train, test_split: read_eval}
        rows = {split: [(r["text"], [label_words(r["category"])]) for r in read[split](raw, name, split)]
                for split in (train_split, test_split)}
        names = {label[0]: label[0] for _, label in rows[train_split] + rows[test_split]}
        return rows[train_split], rows[test_split], names
    name, train_split, test_split, scheme = CURVE_SETS[set_name]
    test = read_split(raw, name, test_split, scheme, training=False)
    pool = read_split(raw, name, train_split, scheme, training=True)
    labels = {t[2:] for _, tags in pool + test for t in tags if t != "O"}
    return pool, test, ner_label_names(scheme, labels)


def sample(pool: Sequence[Sentence], size: str, seed: int, per_label: bool = False) -> List[Sentence]:
    """`size` sentences ("all": the pool) of a seeded shuffle, or `size` of each label
    (per_label: textcat rows, label first in the row's second item): nested across sizes."""
    order = list(pool)
    random.Random(seed).shuffle(order)
    if size == "all":
        return order
    if not per_label:
        return order[:int(size)]
    taken: Dict[str, int] = {}
    kept = []
    for row in order:
        taken[row[1][0]] = taken.get(row[1][0], 0) + 1
        if taken[row[1][0]] <= int(size):
            kept.append(row)
    return kept


def span_line(words: List[str], tags: List[str], names: Dict[str, str]) -> dict:
    """A sentence as a JSONL span record ({text, spans}), words joined by single spaces and
    labels given by their names."""
    starts = [sum(len(w) + 1 for w in words[:i]) for i in range(len(words))]
    spans = []
    for i, tag in enumerate(tags):  # IOB2 (read_bio): an I- tag continues the span before it
        if tag.startswith("B-"):
            spans.append({"start": starts[i], "end": starts[i] + len(words[i]), "label": names[tag[2:]]})
        elif tag.startswith("I-"):
            spans[-1]["end"] = starts[i] + len(words[i])
    return {"text": " ".join(words), "spans": spans}


def training_record(row: Sentence, names: Dict[str, str], task: str) -> dict:
    """A JSONL record as `adapt` reads it: spans (span_line) or the text's one label."""
    return span_line(*row, names) if task == "ner" else {"text": row[0], "label": row[1][0]}


def test_scores(raw: Path, checkpoint: str, rows: Sequence[Sentence], names: Dict[str, str],
                precision: str, task: str = "ner") -> Dict[str, float]:
    """{"score": the curve's figure, ...}: entity P/R/F of cortex_ner (labels by name,
    default settings), as evaluation.sets_spans.eval_ner scores them, score = F1; or the
    accuracy of cortex_textcat's top category (exclusive labels by name)."""
    ev = Evaluator(raw, checkpoint, precision)
    if task == "textcat":
        docs = ev.run_component("cortex_textcat", {"labels": sorted(set(names.values())), "exclusive": True},
                                [ev.nlp.make_doc(text) for text, _ in rows])
        right = sum(max(d.cats, key=d.cats.get) == label[0] for d, (_, label) in zip(docs, rows))
        accuracy = round(right / max(len(rows), 1), 4)
        return {"score": accuracy, "accuracy": accuracy}
    config = {"labels": sorted(set(names.values()))}
    preds = ev.run_component("cortex_ner", config, [ev.words_doc(words) for words, _ in rows])
    examples = [Example(p, ev.words_doc(w, [rename_tag(t, names) for t in tags])) for p, (w, tags) in zip(preds, rows)]
    scores = Scorer.score_spans(examples, "ents")
    found = {k: round(scores[f"ents_{k}"] or 0.0, 4) for k in ("f", "p", "r")}
    return {"score": found["f"], **found}


def forgetting_scores(raw: Path, checkpoint: str, scale: float, precision: str) -> Dict[str, float]:
    """CoNLL-2003 test entity F1 and SST-2 dev accuracy (evaluation.evaluate at `scale`)."""
    report = evaluate(raw, checkpoint, list(FORGETTING_SETS), scale, precision)
    return {name: round(report["sets"][name]["metrics"][key], 4) for name, key in FORGETTING_SETS.items()}


def run_one(raw: Path, out: Path, set_name: str, size: str, seed: int, lr: float, share: float,
            options: dict) -> List[dict]:
    """Adapt on one sample and score it, as adapted and averaged with the base model at
    each of options["merge_weights"]: rows of the curve."""
    pool, test, names = options["data"][set_name]
    task = task_of(set_name)
    folder = out / "runs" / f"{set_name}-{size}-seed{seed}-lr{lr:g}-replay{share:g}"
    folder.mkdir(parents=True, exist_ok=True)
    train = folder / "train.jsonl"
    train.write_text("".join(json.dumps(training_record(row, names, task), ensure_ascii=False) + "\n"
                             for row in sample(pool, size, seed, per_label=task == "textcat")), encoding="utf-8")
    labels = parse_labels(sorted(set(names.values())), "--label", task)  # prompts as `--label NAME` gives them
    settings = AdaptSettings(task, labels, minutes=options["minutes"], model=options["model"], lr=lr,
                             replay_share=share, seed=seed, merge_weight=1.0)
    metrics = adapt(settings, train, None, folder / "adapted")
    run = {"set": set_name, "size": size, "sentences": metrics["data"]["train"]["docs"] + metrics["data"]["dev"]["docs"],
           "seed": seed, "lr": lr, "replay_share": share, "steps": metrics["steps"],
           "train_seconds": metrics["train_seconds"], "seconds": metrics["seconds"],
           "dev_best": (metrics["best"]["scores"] or {}).get(MAIN_SCORE[task])}
    rows = []
    start = starting_weights(options["model"]) if any(w != 1 for w in options["merge_weights"]) else None
    for weight in options["merge_weights"]:
        models = folder / "adapted" if weight == 1 else merged_models(folder, start, weight)
        best, last = models / "model-best" / "cortex", models / "model-last" / "cortex"
        rows.append({**run, "merge_weight": weight,
                     "test_best": test_scores(raw, str(best), test, names, options["precision"], task),
                     "test_last": test_scores(raw, str(last), test, names, options["precision"], task),
                     "forgetting": forgetting_scores(raw, str(best), options["forgetting_scale"], options["precision"])})
        if weight != 1:
            shutil.rmtree(models)
    if not options["keep_models"]:
        for name in ("model-best", "model-last"):
            shutil.rmtree(folder / "adapted" / name)
    return rows


def merged_models(folder: Path, start, weight: float) -> Path:
    """folder/merged-WEIGHT/model-best and model-last: the run's adapted pipelines averaged
    with the base model's weights `start` (fewshot.starting_weights; fewshot.merge_pipeline)."""
    target = folder / f"merged-{weight:g}"
    target.mkdir(parents=True, exist_ok=True)
    for name in ("model-best", "model-last"):
        merge_pipeline(folder / "adapted" / name, start, weight).to_disk(target / name)
    return target


def summary_rows(runs: Sequence[dict], zero_shot: Dict[str, dict], base: Dict[str, float]) -> List[dict]:
    """Means (and the standard deviation of test F1) over seeds per set, size and setting;
    forgetting as the change from the base model."""
    groups: Dict[tuple, List[dict]] = {}
    for r in runs:
        groups.setdefault((r["set"], r["size"], r["lr"], r["replay_share"], r.get("merge_weight", 1.0)), []).append(r)
    rows = [{"set": s, "size": "0 (zero-shot)" if task_of(s) == "ner" else "0 (before adapting)", "lr": None,
             "replay_share": None, "merge_weight": None, "seeds": 1,
             "test_best": zero_shot[s]["score"], "test_sd": 0.0, "test_last": zero_shot[s]["score"],
             "train_seconds": 0.0, **{f"delta_{k}": 0.0 for k in FORGETTING_SETS}} for s in zero_shot]
    for (s, size, lr, share, weight), group in groups.items():
        best = [r["test_best"]["score"] for r in group]
        rows.append({"set": s, "size": size, "lr": lr, "replay_share": share, "merge_weight": weight, "seeds": len(group),
                     "test_best": statistics.mean(best), "test_sd": statistics.pstdev(best),
                     "test_last": statistics.mean(r["test_last"]["score"] for r in group),
                     "train_seconds": statistics.mean(r["train_seconds"] for r in group),
                     **{f"delta_{k}": statistics.mean(r["forgetting"][k] - base[k] for r in group)
                        for k in FORGETTING_SETS}})
    return rows


def markdown(rows: Sequence[dict], base: Dict[str, float]) -> str:
    """The summary as a Markdown table (scores x100: NER F1, textcat accuracy; a textcat
    size is texts per label)."""
    lines = ["| set | size | lr | replay | merge | seeds | test best (sd) | test last | train s | "
             "CoNLL F1 change | SST-2 acc change |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['set']} | {r['size']} | {r['lr'] if r['lr'] is not None else '-'} | "
                     f"{r['replay_share'] if r['replay_share'] is not None else '-'} | "
                     f"{r['merge_weight'] if r['merge_weight'] is not None else '-'} | {r['seeds']} | "
                     f"{100 * r['test_best']:.1f} ({100 * r['test_sd']:.1f}) | {100 * r['test_last']:.1f} | "
                     f"{r['train_seconds']:.0f} | {100 * r['delta_conll2003']:+.1f} | {100 * r['delta_sst2']:+.1f} |")
    lines.append(f"\nBase model: CoNLL-2003 F1 {100 * base['conll2003']:.1f}, SST-2 accuracy {100 * base['sst2']:.1f}.")
    return "\n".join(lines) + "\n"


def split_list(value: str, cast=str) -> list:
    return [cast(v.strip()) for v in value.split(",") if v.strip()]


@app.command()
def main(
    raw_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="The raw public sets (corpus/raw)"),
    output_dir: Path = typer.Argument(..., help="Folder for adapt_curves.json, adapt_curves.md and runs/"),
    sets: str = typer.Option("crossner_ai,crossner_music",
                             help=f"Comma-separated: {', '.join([*CURVE_SETS, *TEXTCAT_SETS])}"),
    sizes: str = typer.Option("10,50,all", help="Training sentences per run, per label for textcat sets "
                                               "(all: the whole train split)"),
    seeds: str = typer.Option("0,1,2", help="Seeds of the sample, the held-out split and training"),
    minutes: float = typer.Option(5.0, help="adapt's time budget per run"),
    lrs: str = typer.Option(f"{DEFAULT_LR:g}", help="Learning rates to compare"),
    replay_shares: str = typer.Option(f"{DEFAULT_REPLAY_SHARE:g}", help="Replay shares to compare (0: no replay)"),
    model: str = typer.Option(DEFAULT_CHECKPOINT, help="The checkpoint to adapt"),
    test_limit: int = typer.Option(200, min=1, help="Test sentences scored per set (a seeded subset)"),
    forgetting_scale: float = typer.Option(0.2, help="evaluate's --limit-scale for CoNLL-2003 and SST-2"),
    precision: str = typer.Option("auto", help="Precision of the scoring pipelines"),
    merge_weights: str = typer.Option(f"1,{DEFAULT_MERGE_WEIGHT:g}", help="Score each run as adapted (1) and averaged "
                                      "with the base model at these shares of the adapted weights (adapt --merge-weight)"),
    keep_models: bool = typer.Option(False, help="Keep each run's model-best and model-last"),
):
    """Learning curves of `adapt ner` and `adapt textcat` (module docstring)."""
    names = split_list(sets)
    unknown = [n for n in names if n not in CURVE_SETS and n not in TEXTCAT_SETS]
    if unknown:
        raise typer.BadParameter(f"--sets: unknown {unknown}; known: {', '.join([*CURVE_SETS, *TEXTCAT_SETS])}")
    data = {}
    for n in names:
        pool, test, labels = curve_data(raw_dir, n)
        data[n] = (pool, subset(test, test_limit), labels)
    weights = split_list(merge_weights, float)
    if not weights or not all(0 < w <= 1 for w in weights):
        raise typer.BadParameter(f"--merge-weights {merge_weights}: give shares in (0, 1]")
    options = {"data": data, "minutes": minutes, "model": model, "precision": precision,
               "forgetting_scale": forgetting_scale, "keep_models": keep_models, "merge_weights": weights}
    zero_shot = {n: test_scores(raw_dir, model, data[n][1], data[n][2], precision, task_of(n)) for n in names}
    base = forgetting_scores(raw_dir, model, forgetting_scale, precision)
    runs = [row for n, size, seed, lr, share in product(names, split_list(sizes), split_list(seeds, int),
                                                     split_list(lrs, float), split_list(replay_shares, float))
            for row in run_one(raw_dir, output_dir, n, size, seed, lr, share, options)]
    rows = summary_rows(runs, zero_shot, base)
    report = {"protocol": __doc__.split("\n\n", 2)[2].strip(), "model": model, "minutes": minutes,
              "test_limit": test_limit, "forgetting_scale": forgetting_scale, "zero_shot": zero_shot,
              "base_forgetting_sets": base, "runs": runs, "summary": rows}
    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / "adapt_curves.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    (output_dir / "adapt_curves.md").write_text(markdown(rows, base), encoding="utf-8")
    typer.echo(markdown(rows, base))


if __name__ == "__main__":
    app()
