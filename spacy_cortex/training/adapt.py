"""Adapt the cortex model to a downstream task by training the scorer alone (the third use
of Cappy, Tan et al. 2023: the large model is left as it is; only the small scorer learns
which of its candidate responses are good).

    python -m spacy_cortex.training.adapt rouge GOLD.jsonl SCORED.jsonl
    python -m spacy_cortex.training.adapt train DATA.jsonl OUTPUT [--model cortex-mini-en] [--steps 300]

Training data (JSONL, one item per line), either kind or both:
    {"instruction": "...", "response": "...", "score": 0.8}        regression label in [0, 1]
    {"instruction": "...", "candidates": ["...", "..."], "gold": 1} gold as index or text
`rouge` builds regression items from {"instruction", "gold", "candidates"} lines: each
candidate scored by its Rouge-L F-measure against the gold response (Google's rouge-score,
as in the Cappy paper), the gold response itself with 1.0.
"""
import json
import random
from pathlib import Path
from typing import List, Optional

import typer

from .datasets.tasks import score_prompt
from ..core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from ..scoring import DataError, item_targets, read_items, text_field
from ..commands import typer_app

TASK = "adapt"
app = typer_app(__doc__.split("\n\n")[0])


def item_records(item: dict, where: str) -> List[dict]:
    """Unified training records (training/records.py) of one item, one per candidate, with its
    target as a soft [CLS] target (1.0 and 0.0 give the same loss as class labels)."""
    instruction, candidates, targets = item_targets(item, where)
    return [{"task": TASK, "prompt": score_prompt(c), "context": instruction, "cls": t, "spans": None}
            for c, t in zip(candidates, targets)]


def read_records(path: Path) -> List[dict]:
    """All training records of a data file. Raises DataError (file:line) for the first bad
    line and for a file without items."""
    records = [r for number, item in read_items(path) for r in item_records(item, f"{path}:{number}")]
    if not records:
        raise DataError(f"{path}: no training items")
    return records


def rouge_items(instruction: str, gold: str, candidates: List[str]) -> List[dict]:
    """Regression items: each candidate with its Rouge-L F-measure against the gold response
    (rouge-score, Porter stemming off), the gold response with 1.0; repeats scored once."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    responses = list(dict.fromkeys([gold, *candidates]))
    return [{"instruction": instruction, "response": r,
             "score": 1.0 if r == gold else scorer.score(gold, r)["rougeL"].fmeasure} for r in responses]


@app.command()
def rouge(source: Path = typer.Argument(..., exists=True, dir_okay=False, help="JSONL of {instruction, gold, candidates}"),
          target: Path = typer.Argument(..., help="JSONL of {instruction, response, score} to write")):
    """Build a regression training set with Rouge-L scores."""
    out = []
    for number, item in read_items(source):
        where = f"{source}:{number}"
        candidates = item.get("candidates")
        if not isinstance(candidates, list) or not all(isinstance(c, str) for c in candidates):
            raise typer.BadParameter(f"{where}: 'candidates' must be a list of strings")
        try:
            out += rouge_items(text_field(item, "instruction", where), text_field(item, "gold", where), candidates)
        except DataError as err:
            raise typer.BadParameter(str(err)) from None
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("".join(json.dumps(i, ensure_ascii=False) + "\n" for i in out), encoding="utf-8")
    typer.echo(f"Wrote {len(out)} scored responses to {target}")


def write_corpus(records: List[dict], corpus: Path, replay_corpus: Optional[Path], replay: dict,
                 held_out: int) -> dict:
    """OUTPUT/corpus with adapt.jsonl (+ links to the replayed task files); returns the mix
    (every adaptation record beyond the `held_out` that train.py keeps for dev, once)."""
    corpus.mkdir(parents=True, exist_ok=True)
    with (corpus / f"{TASK}.jsonl").open("w", encoding="utf-8") as f:
        f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    for task in replay:
        link, source = corpus / f"{task}.jsonl", replay_corpus / f"{task}.jsonl"
        if not source.exists():
            raise typer.BadParameter(f"{source} missing (task {task!r} of --replay-mix)")
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(source.resolve())
    return {**replay, TASK: len(records) - held_out}


@app.command()
def train(
    data: Path = typer.Argument(..., exists=True, dir_okay=False,
                                help="JSONL of scored responses and/or candidates with a gold one"),
    output: Path = typer.Argument(..., help="Folder for the corpus, checkpoints and the adapted model (OUTPUT/final)"),
    model: str = typer.Option(DEFAULT_CHECKPOINT, help="Checkpoint to adapt: registered name or folder"),
    steps: int = typer.Option(300, min=1),
    lr: float = typer.Option(2e-5, min=0.0),
    dev: int = typer.Option(100, min=1, help="Items' records held out for the dev log (at most 10%)"),
    replay_corpus: Optional[Path] = typer.Option(None, help="Converted corpus to replay, so the other tasks are kept"),
    replay_mix: Optional[Path] = typer.Option(None, help="JSON {task: examples} of the replay"),
    seed: int = typer.Option(0),
):
    """Fine-tune the scorer alone on DATA (soft [CLS] targets for scores)."""
    from .train import app as train_app

    if (replay_corpus is None) != (replay_mix is None):
        raise typer.BadParameter("give --replay-corpus and --replay-mix together")
    try:
        records = read_records(data)
        base = resolve_checkpoint(model)
    except (DataError, FileNotFoundError, ValueError) as err:
        raise typer.BadParameter(str(err)) from None
    random.Random(seed).shuffle(records)
    if len(records) < 2:
        raise typer.BadParameter(f"{data}: one training record is not enough to train and check on")
    held_out = max(1, min(dev, len(records) // 10))
    replay = json.loads(replay_mix.read_text()) if replay_mix else {}
    mix = write_corpus(records, output / "corpus", replay_corpus, replay, held_out)
    mix_path = output / "mix.json"
    mix_path.write_text(json.dumps(mix, indent=1))
    args = [str(output / "corpus"), str(output), "--mix", str(mix_path), "--base", str(base),
            "--steps", str(steps), "--lr", str(lr), "--warmup", str(max(1, steps // 10)),
            "--dev-per-task", str(held_out), "--eval-every", str(steps), "--save-every", str(steps),
            "--seed", str(seed)]
    typer.main.get_command(train_app).main(args, standalone_mode=False)


if __name__ == "__main__":
    app()
