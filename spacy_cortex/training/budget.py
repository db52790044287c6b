"""spaCy's training loop under a time budget, for `adapt`.

spaCy's `train` stops at max_steps, max_epochs or patience; `adapt` is given minutes. This
module drives spaCy's own loop (`spacy.training.loop.train_while_improving` over its train
batches, with its evaluation callback, meta update and logger) and ends the train batches at
the deadline, so no step starts after it. The state reached is then evaluated once (unless
its step was just evaluated) and saved: model-last at every evaluation, and a copy as
model-best when its score is the best so far (ties: the later), as `spacy train` saves them.
A run therefore ends within the budget plus one step, one dev evaluation and one save.

The learning rate follows `spacy_cortex.warmup_linear_time.v1`: a linear warm-up over
`warmup_steps`, then a linear decay that reaches 0 when the budget ends (or at total_steps,
whichever comes first).
"""
import shutil
import sys
import time
from pathlib import Path
from typing import IO, Dict, Iterable, Iterator, List, Optional

from spacy.language import Language
from spacy.schemas import ConfigSchemaTraining
from spacy.training.loop import (DIR_MODEL_BEST, DIR_MODEL_LAST, clean_output_dir, create_before_to_disk_callback,
                                 create_evaluation_callback, create_train_batches, train_while_improving, update_meta)
from spacy.util import fix_random_seed, registry, resolve_dot_names


@registry.schedules("spacy_cortex.warmup_linear_time.v1")
def warmup_linear_time(initial_rate: float, warmup_steps: int, minutes: float, total_steps: int = 0) -> Iterator[float]:
    """warmup_linear.v1 with a time budget: rate = initial_rate x min((step + 1) / warmup_steps,
    1 - elapsed / minutes, (total_steps - step) / (total_steps - warmup_steps)), at least 0;
    minutes <= 0 or total_steps 0 leave that limit out. The clock starts when the first
    rate is asked for (when the optimizer is created)."""
    start, step = time.monotonic(), 0
    while True:
        factor = min(1.0, (step + 1) / max(1, warmup_steps))
        if minutes > 0:
            factor = min(factor, 1.0 - (time.monotonic() - start) / (60.0 * minutes))
        if total_steps:
            factor = min(factor, (total_steps - step) / max(1, total_steps - warmup_steps))
        yield initial_rate * max(0.0, factor)
        step += 1


def until(deadline: float, batches: Iterable) -> Iterator:
    """The batches, ended at `deadline` (time.monotonic()); the first is always given."""
    for i, batch in enumerate(batches):
        if i and time.monotonic() >= deadline:
            return
        yield batch


def train_within(nlp: Language, output: Path, minutes: float, stdout: Optional[IO] = None,
                 stderr: Optional[IO] = None) -> Dict[str, object]:
    """Train the initialized `nlp` (its config: corpora, [training]) for at most `minutes`
    of steps; writes output/model-last and output/model-best; spaCy's logger writes to
    stdout and stderr (default sys.stdout, sys.stderr). Returns {"steps", "seconds",
    "evaluations": [{"step", "seconds", "score", "scores"}], "best": the evaluation saved as
    model-best, "last": the final one}."""
    config = nlp.config.interpolate()
    T = registry.resolve(config["training"], schema=ConfigSchemaTraining)
    if T["seed"] is not None:
        fix_random_seed(T["seed"])
    train_corpus, dev_corpus = resolve_dot_names(config, [T["train_corpus"], T["dev_corpus"]])
    evaluate = create_evaluation_callback(nlp, dev_corpus, T["score_weights"])
    start = time.monotonic()
    batches = until(start + 60.0 * minutes, create_train_batches(nlp, train_corpus, T["batcher"], T["max_epochs"]))
    steps = train_while_improving(
        nlp, T["optimizer"], batches, evaluate, dropout=T["dropout"], eval_frequency=T["eval_frequency"],
        accumulate_gradient=T["accumulate_gradient"], patience=T["patience"], max_steps=T["max_steps"],
        exclude=T["frozen_components"], annotating_components=T["annotating_components"],
        before_update=T["before_update"])
    clean_output_dir(output)
    saver = Saver(nlp, T, output, start)
    log_step, finalize_logger = T["logger"](nlp, stdout or sys.stdout, stderr or sys.stderr)
    info = None
    try:
        for _, info, is_best in steps:
            if is_best is not None:
                saver.save(info, is_best)
            log_step(info if is_best is not None else None)
        if info is not None and info["score"] is None:  # the last step was not evaluated
            saver.save(info, final_evaluation(info, evaluate))
            log_step(info)
    finally:
        finalize_logger()
    return saver.summary(info)


def final_evaluation(info: dict, evaluate) -> bool:
    """Evaluate the current state into `info` (score, other_scores, checkpoints); True
    when its score is at least the best so far."""
    info["score"], info["other_scores"] = evaluate()
    best = max((score for score, _ in info["checkpoints"]), default=info["score"])
    info["checkpoints"].append((info["score"], info["step"]))
    return info["score"] >= best


class Saver:
    """Writes model-last (and model-best) as spacy train does, and keeps every evaluation."""

    def __init__(self, nlp: Language, T: dict, output: Path, start: float):
        self.nlp, self.T, self.output, self.start = nlp, T, Path(output), start
        self.before_to_disk = create_before_to_disk_callback(T["before_to_disk"])
        self.evaluations: List[dict] = []
        self.best: Optional[dict] = None

    def save(self, info: dict, is_best: bool) -> None:
        evaluation = {"step": info["step"], "seconds": round(time.monotonic() - self.start, 1),
                      "score": info["score"], "scores": dev_scores(info["other_scores"])}
        self.evaluations.append(evaluation)
        update_meta(self.T, self.nlp, info)
        with self.nlp.use_params(self.T["optimizer"].averages):
            self.before_to_disk(self.nlp).to_disk(self.output / DIR_MODEL_LAST)
        if is_best:
            self.best = evaluation
            if (self.output / DIR_MODEL_BEST).exists():
                shutil.rmtree(self.output / DIR_MODEL_BEST)
            shutil.copytree(self.output / DIR_MODEL_LAST, self.output / DIR_MODEL_BEST)

    def summary(self, info: Optional[dict]) -> Dict[str, object]:
        return {"steps": 0 if info is None else info["step"] + 1, "seconds": round(time.monotonic() - self.start, 1),
                "evaluations": self.evaluations, "best": self.best,
                "last": self.evaluations[-1] if self.evaluations else None}


def dev_scores(scores: Dict[str, object]) -> Dict[str, object]:
    """The task scores of a dev evaluation (ents_*, cats_*), without speed and token accuracy."""
    return {k: v for k, v in scores.items() if k.startswith(("ents_", "cats_"))}
