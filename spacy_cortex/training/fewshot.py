"""Few-shot adaptation of the shared model to your labels: `python -m spacy_cortex adapt`.

    python -m spacy_cortex adapt ner train.jsonl --label DRUG --label DOSE="What doses are given?" --minutes 5 --output adapted
    python -m spacy_cortex adapt textcat train.jsonl --dev dev.jsonl --label billing --label refund --output adapted

TRAIN and DEV come in the formats of annotation tools (training/annotations.py). Without
--dev a seeded share of TRAIN (--holdout) is held out to choose model-best on. The data go
to OUTPUT/corpus as DocBins; the config is the package's template (training/adapt_ner.cfg,
adapt_textcat.cfg) with the options filled in; spaCy's training loop runs under the time
budget (training/budget.py), and every update also trains on a share of replayed general
training data (training/replay.py) so that the model keeps its zero-shot skills. Writes
OUTPUT/model-best and OUTPUT/model-last (spaCy pipelines for spacy.load, spacy package and
annotate --pipeline) and OUTPUT/metrics.json (dev scores before and after, data, settings, time).
"""
import json
import random
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Dict, List, Optional, Sequence, Tuple

import typer
from spacy.language import Language
from spacy.tokens import Doc, DocBin

from ..batch.pipelines import parse_labels
from ..commands import typer_app
from ..core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from .annotations import AnnotationError, read_annotations
from .budget import dev_scores, train_within
from .replay import ReplayError, ReplaySampler, load_replay

HERE = Path(__file__).resolve().parent
TEMPLATES = {"ner": HERE / "adapt_ner.cfg", "textcat": HERE / "adapt_textcat.cfg"}
COMPONENTS = {"ner": "cortex_ner", "textcat": "cortex_textcat"}
MAIN_SCORE = {"ner": "ents_f", "textcat": "cats_score"}
# The defaults; spacy_cortex.evaluation.adapt_curves measures them (docs/ADAPT.md).
DEFAULT_MINUTES = 5.0
# lr 1e-4 with model-best and model-last averaged 0.7 / 0.3 with the starting model (WiSE-FT)
# beat lr 3e-5 without the average on CrossNER test F1 (54.2 against 52.4, 5 domains) and
# forgot about half as much (CoNLL-2003 F1 -6.2 against -11.8; benchmarks/README.md).
DEFAULT_LR = 1e-4
DEFAULT_REPLAY_SHARE = 0.3
DEFAULT_HOLDOUT = 0.2
DEFAULT_EVAL_EVERY = 20
DEFAULT_MERGE_WEIGHT = 0.7


@dataclass
class AdaptSettings:
    """What `adapt` trains and how: the command's options. labels: {label: prompt}."""

    task: str
    labels: Dict[str, str]
    minutes: float = DEFAULT_MINUTES
    model: str = DEFAULT_CHECKPOINT
    lr: float = DEFAULT_LR
    replay_share: float = DEFAULT_REPLAY_SHARE  # share of each update's records that are replay; 0: none
    replay_file: Optional[Path] = None  # None: the sample shipped in the package
    holdout: float = DEFAULT_HOLDOUT  # share of TRAIN held out as dev when no dev file is given
    max_steps: int = 0  # 0: the time budget alone
    eval_every: int = DEFAULT_EVAL_EVERY  # steps between dev evaluations
    merge_weight: float = DEFAULT_MERGE_WEIGHT  # the adapted weights' share in the WiSE-FT average; 1: none
    multi_label: bool = False  # textcat: categories are not exclusive
    seed: int = 0
    gpu_id: int = -1

    def check(self) -> None:
        """Raises ValueError naming the option whose value is out of range."""
        problems = [
            (self.task not in TEMPLATES, f"task {self.task!r}: use ner or textcat"),
            (not self.labels, "--label: give at least one label"),
            (not self.minutes > 0, f"--minutes {self.minutes}: give a time above 0"),
            (not self.lr > 0, f"--lr {self.lr}: give a learning rate above 0"),
            (not 0 <= self.replay_share < 1, f"--replay-share {self.replay_share}: give a share in [0, 1)"),
            (not 0 < self.holdout < 1, f"--holdout {self.holdout}: give a share between 0 and 1"),
            (self.max_steps < 0, f"--max-steps {self.max_steps}: give 0 (no limit) or more"),
            (self.eval_every < 1, f"--eval-every {self.eval_every}: give 1 or more"),
            (not 0 < self.merge_weight <= 1, f"--merge-weight {self.merge_weight}: give a share in (0, 1]"),
            (self.multi_label and self.task == "ner", "--multi-label is for textcat"),
        ]
        for bad, message in problems:
            if bad:
                raise ValueError(message)


@dataclass
class Split:
    """The gold docs to train and choose the best model on; where the dev docs come from;
    records left out per file (annotations.Annotations.skipped)."""

    train: List[Doc]
    dev: List[Doc]
    dev_source: str
    skipped: Dict[str, Dict[str, int]]


def adapt(settings: AdaptSettings, train: Path, dev: Optional[Path], output: Path,
          stdout: Optional[IO] = None) -> dict:
    """Adapt the model to `train` (dev: `dev`, or a held-out share of train) for
    settings.minutes of training; writes output/model-best, output/model-last,
    output/corpus/{train,dev}.spacy and output/metrics.json, and returns the metrics.
    Progress and notes go to `stdout` (default sys.stdout). Raises AnnotationError
    (file:line) for bad data, ReplayError for a bad replay file."""
    import spacy
    from spacy.training.initialize import init_nlp

    started, stdout = time.monotonic(), stdout or sys.stdout
    settings.check()
    split = load_split(settings, Path(train), dev and Path(dev), spacy.blank("en"))
    notes = data_notes(settings, split)
    for note in notes:
        stdout.write(f"Note: {note}\n")
    paths = write_corpus(Path(output) / "corpus", split)
    sampler = replay_sampler(settings)
    if settings.gpu_id >= 0:
        spacy.require_gpu(settings.gpu_id)
    nlp = init_nlp(adapt_config(settings, paths), use_gpu=settings.gpu_id)
    nlp.meta.update(pipeline_meta(settings))
    zero_shot = gold_scores(nlp, split.dev)
    nlp.get_pipe("cortex").replay = sampler
    try:
        run = train_within(nlp, Path(output), settings.minutes, stdout=stdout)
    finally:
        nlp.get_pipe("cortex").replay = None
    metrics = {
        "task": settings.task, "labels": settings.labels, "main_score": MAIN_SCORE[settings.task],
        "zero_shot": zero_shot, "best": run["best"], "last": run["last"], "evaluations": run["evaluations"],
        "steps": run["steps"], "train_seconds": run["seconds"], "seconds": round(time.monotonic() - started, 1),
        "data": data_summary(settings.task, train, split, paths), "notes": notes,
        "replay": None if sampler is None else {"records": len(sampler.records), "drawn": sampler.drawn,
                                                "file": str(settings.replay_file or "shipped sample")},
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(settings).items()},
        "merge": merge_outputs(settings, Path(output), split.dev) if settings.merge_weight < 1 else None,
    }
    (Path(output) / "metrics.json").write_text(json.dumps(metrics, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return metrics


# ---------------------------------------------------------------- data

def load_split(settings: AdaptSettings, train: Path, dev: Optional[Path], nlp: Language) -> Split:
    """The train and dev docs: dev from its file, or a seeded share of train held out."""
    for label in settings.labels:  # a label the model predicts but no gold doc has must align in scoring
        nlp.vocab.strings.add(label)

    def read(path: Path):
        return read_annotations(path, settings.task, settings.labels, nlp, exclusive=not settings.multi_label)

    found = read(train)
    skipped = {str(train): found.skipped} if found.skipped else {}
    if dev is None:
        train_docs, dev_docs = hold_out(found.docs, settings.holdout, settings.seed, train)
        return Split(train_docs, dev_docs, f"{len(dev_docs)} of {train} held out (seed {settings.seed})", skipped)
    held = read(dev)
    if held.skipped:
        skipped[str(dev)] = held.skipped
    return Split(found.docs, held.docs, str(dev), skipped)


def hold_out(docs: Sequence[Doc], share: float, seed: int, path: Path) -> Tuple[List[Doc], List[Doc]]:
    """(train, dev): round(share x n) docs (at least 1, at most n - 1) chosen by a seeded
    shuffle as dev, both in file order. Raises AnnotationError for fewer than 2 docs."""
    if len(docs) < 2:
        raise AnnotationError(f"{path}:1: {len(docs)} annotated record: too few to hold out a dev part; give --dev")
    order = list(range(len(docs)))
    random.Random(seed).shuffle(order)
    dev = set(order[:min(len(docs) - 1, max(1, round(share * len(docs))))])
    return [d for i, d in enumerate(docs) if i not in dev], [d for i, d in enumerate(docs) if i in dev]


def label_counts(task: str, docs: Sequence[Doc]) -> Dict[str, int]:
    """Entities (ner) or texts with the category (textcat) per label."""
    counts: Dict[str, int] = {}
    for doc in docs:
        labels = [e.label_ for e in doc.ents] if task == "ner" else [k for k, v in doc.cats.items() if v >= 0.5]
        for label in labels:
            counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def data_notes(settings: AdaptSettings, split: Split) -> List[str]:
    """Warnings about the data that do not stop training: labels without a training or
    a dev example, dev texts also in train, records left out."""
    notes = []
    counts = label_counts(settings.task, split.train)
    unseen = [label for label in sorted(settings.labels) if label not in counts]
    if unseen:
        notes.append(f"no training example of {', '.join(unseen)}: trained as absent everywhere")
    dev_counts = label_counts(settings.task, split.dev)
    undev = [label for label in sorted(settings.labels) if label not in dev_counts and label in counts]
    if undev:
        notes.append(f"no dev example of {', '.join(undev)}: its dev F-score is 0 whatever the model does, "
                     "so model-best is chosen on the other labels (give --dev, or more data)")
    shared = {d.text for d in split.train} & {d.text for d in split.dev}
    if shared:
        notes.append(f"{len(shared)} dev text(s) are also training texts: the dev score flatters the model")
    notes += [f"{file}: left out {n} record(s) with Prodigy {reason}" for file, reasons in split.skipped.items()
              for reason, n in reasons.items()]
    return notes


def data_summary(task: str, train: Path, split: Split, paths: Dict[str, Path]) -> dict:
    """What metrics.json says about the data."""
    return {"train": {"file": str(train), "docs": len(split.train), "labels": label_counts(task, split.train)},
            "dev": {"file": split.dev_source, "docs": len(split.dev), "labels": label_counts(task, split.dev)},
            "corpus": {name: str(path) for name, path in paths.items()}, "skipped": split.skipped}


def write_corpus(folder: Path, split: Split) -> Dict[str, Path]:
    """folder/train.spacy and folder/dev.spacy; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"train": folder / "train.spacy", "dev": folder / "dev.spacy"}
    DocBin(docs=split.train).to_disk(paths["train"])
    DocBin(docs=split.dev).to_disk(paths["dev"])
    return paths


# ---------------------------------------------------------------- pipeline

def adapt_config(settings: AdaptSettings, paths: Dict[str, Path]):
    """The task's config template with the settings and data paths filled in."""
    from spacy.util import load_config

    component = f"components.{COMPONENTS[settings.task]}"
    overrides = {
        "paths.train": str(paths["train"]), "paths.dev": str(paths["dev"]), "paths.checkpoint": str(settings.model),
        f"{component}.labels": dict(settings.labels), "system.seed": settings.seed,
        "training.optimizer.learn_rate.initial_rate": settings.lr,
        "training.optimizer.learn_rate.minutes": settings.minutes,
        "training.max_steps": settings.max_steps, "training.eval_frequency": settings.eval_every,
    }
    if settings.task == "textcat":
        overrides[f"{component}.exclusive"] = not settings.multi_label
    return load_config(TEMPLATES[settings.task], overrides=overrides, interpolate=False)


def pipeline_meta(settings: AdaptSettings) -> dict:
    """meta.json's name and description of the adapted pipeline."""
    return {"name": f"cortex_adapted_{settings.task}",
            "description": f"{COMPONENTS[settings.task]} for {', '.join(sorted(settings.labels))}, adapted from "
                           f"{Path(str(settings.model)).name} by `python -m spacy_cortex adapt {settings.task}`"}


def gold_scores(nlp: Language, gold: Sequence[Doc]) -> Dict[str, object]:
    """The task scores of `nlp` on gold docs, their texts annotated afresh (as spaCy's
    Corpus makes the dev examples of training)."""
    from spacy.training import Example

    return dev_scores(nlp.evaluate([Example(nlp.make_doc(doc.text), doc) for doc in gold]))


def starting_weights(model: str):
    """The fp32 Hugging Face model of the checkpoint `model` (name or folder) adapts from."""
    from ..core.model import CortexModel

    return CortexModel.from_path(resolve_checkpoint(model)).hf_model.float()


def merge_pipeline(source: Path, start, weight: float) -> Language:
    """The adapted pipeline at `source` with its shared model's weights set to
    (1 - weight) x `start` + weight x its own (WiSE-FT, training/merge.py; `start`: the
    starting_weights it was adapted from). weight: in (0, 1]."""
    import spacy

    from .merge import interpolate

    nlp = spacy.load(source)
    interpolate(nlp.get_pipe("cortex").model.hf_model, start, 1.0 - weight)
    return nlp


def merge_outputs(settings: AdaptSettings, output: Path, dev: Sequence[Doc]) -> dict:
    """Average model-best and model-last with the starting model in place (merge_pipeline at
    settings.merge_weight), score them on dev again and write those scores into their
    meta.json: {"weight", "best", "last"}, dev scores (None where training saved none)."""
    start = starting_weights(settings.model)
    found = {"weight": settings.merge_weight}
    for name in ("best", "last"):
        folder = output / f"model-{name}"
        found[name] = None
        if folder.is_dir():
            nlp = merge_pipeline(folder, start, settings.merge_weight)
            found[name] = gold_scores(nlp, dev)
            performance = nlp.meta.setdefault("performance", {})
            performance.update({k: v for k, v in found[name].items() if k in performance})
            nlp.to_disk(folder)
    return found


def replay_sampler(settings: AdaptSettings) -> Optional[ReplaySampler]:
    """The sampler of the replay records (None with no replay share), for cortex.replay."""
    if not settings.replay_share:
        return None
    return ReplaySampler(load_replay(settings.replay_file), settings.replay_share, settings.seed)


def summary_line(metrics: dict, output: Path) -> str:
    """One line: the main dev score zero-shot, best and last, steps and time."""
    key = metrics["main_score"]

    def score(evaluation: Optional[dict]) -> str:
        value = (evaluation or {}).get(key)
        return "-" if value is None else f"{value:.3f}"

    best, merge = metrics["best"] or {}, metrics.get("merge")
    merged = "" if not merge else \
        f"; averaged with the start (--merge-weight {merge['weight']:g}): best {score(merge['best'])}, last {score(merge['last'])}"
    return (f"dev {key}: zero-shot {score(metrics['zero_shot'])}, best {score(best.get('scores'))} "
            f"(step {best.get('step')}), last {score((metrics['last'] or {}).get('scores'))}{merged}; "
            f"{metrics['steps']} steps in {metrics['train_seconds']:.0f} s. Wrote {output}/model-best, "
            f"model-last and metrics.json")


# ---------------------------------------------------------------- the command

app = typer_app("Adapt the model to your labels from annotated examples in minutes, keeping its zero-shot skills")
DEV = typer.Option(None, "--dev", exists=True, dir_okay=False,
                   help="Annotated texts to choose model-best on (same formats; default: --holdout of TRAIN)")
OUTPUT = typer.Option(..., "--output", "-o", help="Folder for model-best, model-last, metrics.json and corpus/")
MINUTES = typer.Option(DEFAULT_MINUTES, help="Training time: no step starts later (then one dev evaluation and a save)")
MODEL = typer.Option(DEFAULT_CHECKPOINT, help="Checkpoint to adapt: registered name or folder (an adapted pipeline's cortex/)")
LR = typer.Option(DEFAULT_LR, help="Peak learning rate (warm-up over 5 steps, then linear decay to 0 at the time budget)")
REPLAY = typer.Option(True, help="Mix replayed general training data into every update (keeps zero-shot skills)")
REPLAY_SHARE = typer.Option(DEFAULT_REPLAY_SHARE, help="Share of each update's training records that are replay")
REPLAY_FILE = typer.Option(None, exists=True, dir_okay=False,
                           help="Replay records (JSONL, python -m spacy_cortex.training.replay); default: the shipped sample")
HOLDOUT = typer.Option(DEFAULT_HOLDOUT, help="Without --dev: the share of TRAIN held out as dev (seeded)")
MAX_STEPS = typer.Option(0, help="Stop after this many steps too (0: the time budget alone)")
EVAL_EVERY = typer.Option(DEFAULT_EVAL_EVERY, help="Steps between dev evaluations (each saves model-last)")
SEED = typer.Option(0, help="Seed of the held-out split, the replay draw and training")
MERGE_WEIGHT = typer.Option(DEFAULT_MERGE_WEIGHT, help="The adapted weights' share in an average with the starting "
                            "model's (WiSE-FT; 1: no average); lower keeps more of what the model knew")
GPU_ID = typer.Option(-1, "--gpu-id", "-g", help="GPU to train on (-1: CPU)")


@app.command()
def ner(
    train: Path = typer.Argument(..., exists=True, dir_okay=False,
                                 help="Annotated texts: .spacy, .jsonl (text + spans), .conll / .bio / .txt (token tag)"),
    label: List[str] = typer.Option(..., "--label", "-l", help="Entity label, or LABEL=prompt (repeatable; declare every label of the data)"),
    output: Path = OUTPUT, dev: Optional[Path] = DEV, minutes: float = MINUTES, model: str = MODEL, lr: float = LR,
    replay: bool = REPLAY, replay_share: float = REPLAY_SHARE, replay_file: Optional[Path] = REPLAY_FILE,
    holdout: float = HOLDOUT, max_steps: int = MAX_STEPS, eval_every: int = EVAL_EVERY,
    merge_weight: float = MERGE_WEIGHT, seed: int = SEED, gpu_id: int = GPU_ID,
):
    """Adapt cortex_ner to your entity labels."""
    run_command("ner", label, train, dev, output, minutes=minutes, model=model, lr=lr,
                replay_share=replay_share if replay else 0.0, replay_file=replay_file, holdout=holdout,
                max_steps=max_steps, eval_every=eval_every, merge_weight=merge_weight, seed=seed, gpu_id=gpu_id)


@app.command()
def textcat(
    train: Path = typer.Argument(..., exists=True, dir_okay=False,
                                 help="Annotated texts: .spacy, .jsonl ({text, cats} or {text, label} or {text, labels})"),
    label: List[str] = typer.Option(..., "--label", "-l", help="Category label, or LABEL=prompt (repeatable; declare every label of the data)"),
    output: Path = OUTPUT, dev: Optional[Path] = DEV,
    multi_label: bool = typer.Option(False, help="Categories are not mutually exclusive"),
    minutes: float = MINUTES, model: str = MODEL, lr: float = LR, replay: bool = REPLAY,
    replay_share: float = REPLAY_SHARE, replay_file: Optional[Path] = REPLAY_FILE, holdout: float = HOLDOUT,
    max_steps: int = MAX_STEPS, eval_every: int = EVAL_EVERY, merge_weight: float = MERGE_WEIGHT,
    seed: int = SEED, gpu_id: int = GPU_ID,
):
    """Adapt cortex_textcat to your categories."""
    run_command("textcat", label, train, dev, output, multi_label=multi_label, minutes=minutes, model=model,
                lr=lr, replay_share=replay_share if replay else 0.0, replay_file=replay_file, holdout=holdout,
                max_steps=max_steps, eval_every=eval_every, merge_weight=merge_weight, seed=seed, gpu_id=gpu_id)


@app.command()
def evaluate(
    pipeline: str = typer.Argument(..., help="A pipeline with cortex_ner or cortex_textcat: folder (model-best) or package name"),
    test: Path = typer.Argument(..., exists=True, dir_okay=False, help="Annotated texts in the formats `adapt` reads"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="JSON file for the scores"),
):
    """Score a pipeline on annotated texts (spacy evaluate for the formats adapt reads)."""
    import spacy

    try:
        nlp = spacy.load(pipeline)
        task, component = pipeline_task(nlp)
    except (ValueError, OSError) as err:
        raise typer.BadParameter(str(err)) from None
    try:
        found = read_annotations(test, task, component.labels, nlp,
                                 exclusive=getattr(component.task, "exclusive", True))
    except AnnotationError as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1)
    scores = gold_scores(nlp, found.docs)
    report = {"pipeline": pipeline, "test": str(test), "docs": len(found.docs), "skipped": found.skipped,
              "main_score": MAIN_SCORE[task], "scores": scores}
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    typer.echo(json.dumps(report, indent=2, ensure_ascii=False))


def pipeline_task(nlp: Language):
    """("ner" or "textcat", the component) of a pipeline with one cortex_ner or cortex_textcat.
    Raises ValueError for none or several."""
    found = [(task, nlp.get_pipe(name)) for name in nlp.pipe_names for task, factory in COMPONENTS.items()
             if nlp.get_pipe_meta(name).factory == factory]
    if len(found) != 1:
        raise ValueError(f"the pipeline has {len(found)} cortex_ner / cortex_textcat components "
                         f"({nlp.pipe_names}); evaluate scores a pipeline with one")
    return found[0]


def pipeline_checkpoint(model: str) -> str:
    """`model`, or for a saved pipeline's folder (an adapted model-best: meta.json beside a
    cortex/ checkpoint) the folder of its shared model, cortex/."""
    folder = Path(str(model))
    if (folder / "meta.json").is_file() and (folder / "cortex" / "config.json").is_file():
        return str(folder / "cortex")
    return model


def run_command(task: str, labels: List[str], train: Path, dev: Optional[Path], output: Path, **options) -> None:
    """Options that are wrong are usage errors (exit code 2); bad data is an error naming
    file:line (exit code 1)."""
    from ..core.model import check_checkpoint_dir  # torch: loaded when a command runs

    try:
        settings = AdaptSettings(task, parse_labels(labels, "--label", task), **options)
        settings.check()
        settings.model = pipeline_checkpoint(settings.model)
        check_checkpoint_dir(resolve_checkpoint(settings.model))
        if output.is_file():
            raise ValueError(f"--output {output} is a file: give a folder")
    except (ValueError, OSError) as err:
        raise typer.BadParameter(str(err)) from None
    try:
        metrics = adapt(settings, train, dev, output)
    except (AnnotationError, ReplayError) as err:
        typer.echo(f"Error: {err}", err=True)
        raise typer.Exit(1)
    typer.echo(summary_line(metrics, output), err=True)
