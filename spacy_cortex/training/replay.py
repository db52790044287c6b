"""The replay sample: general-skill training records that `adapt` mixes into every update, so
that an adapted model keeps its zero-shot skills (extraction, questions, NLI, labels).

    python -m spacy_cortex.training.replay RAW_DIR OUTPUT.jsonl [--per-set 150] [--seed 0]

builds one from the raw public sets (RAW_DIR: the corpus/raw folder with its INDEX.md) with
the training converters (training/datasets/; EVAL texts are dropped by the leakage guard),
taking only sets whose licence allows redistribution (REPLAY_SETS). The package ships the
sample built with the defaults, spacy_cortex/training/data/replay.jsonl (its sources,
licences and attribution: data/REPLAY.md); `adapt --replay-file` takes another.
"""
import json
import random
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import typer

from ..commands import typer_app

DATA_DIR = Path(__file__).resolve().parent / "data"
SHIPPED = DATA_DIR / "replay.jsonl"
# converter -> (raw set, licence as corpus/raw/INDEX.md states it): redistributable sets only
# (not CoNLL-2003: Reuters research-only; not SST-2, MNLI, RTE: research terms).
REPLAY_SETS: Dict[str, tuple] = {
    "squad": ("squad_v1.1", "CC BY-SA 4.0"),
    "snli": ("snli", "CC BY-SA 4.0"),
    "boolq": ("boolq_train_subset", "CC BY-SA 3.0"),
    "wnut": ("wnut17", "CC BY 4.0"),
    "multiconer2": ("multiconer2_en", "CC BY 4.0"),
    "fewnerd": ("fewnerd_inter_subset", "CC BY-SA 4.0"),
    "stackoverflow_ner": ("stackoverflow_ner", "MIT"),
    "banking77": ("banking77", "CC BY 4.0"),
    "clinc150": ("clinc150", "CC BY 3.0"),
    "hwu64": ("hwu64", "CC BY 4.0"),
    "snips_intents": ("snips_nlu", "CC0 1.0"),
    "commonsenseqa": ("commonsenseqa", "MIT"),
    "openbookqa": ("openbookqa", "Apache 2.0"),
}
app = typer_app(__doc__.split("\n\n")[0])


class ReplayError(ValueError):
    """A replay file that cannot be used; the message names file:line."""


def build(raw_dir: Path, per_set: int, seed: int = 0) -> Dict[str, List[dict]]:
    """{converter: about `per_set` of its records} for the REPLAY_SETS converters: the first
    records of the converter's shuffled output (a record group is never cut)."""
    from .convert import run  # the converters and the leakage guard: only for building

    with tempfile.TemporaryDirectory() as tmp:
        run(Path(raw_dir), Path(tmp), list(REPLAY_SETS), seed)
        return {name: first_in_file(Path(tmp) / f"{name}.jsonl", per_set) for name in REPLAY_SETS}


def first_in_file(path: Path, n: int) -> List[dict]:
    """first_records of a JSONL file."""
    with path.open(encoding="utf-8") as f:
        return first_records(map(json.loads, f), n)


def first_records(rows, n: int) -> List[dict]:
    """The first n rows, and the rest of the last one's group (rows of one "group" are adjacent)."""
    out: List[dict] = []
    for row in rows:
        if len(out) >= n and (row.get("group") is None or row.get("group") != out[-1].get("group")):
            break
        out.append(row)
    return out


def load_replay(path: Optional[Path] = None) -> List[dict]:
    """The records of a replay file (default: the shipped sample). Raises ReplayError
    (file:line) for a line that is not a training record, or a file without records."""
    path = Path(path or SHIPPED)
    records = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                records.append(checked_record(line, f"{path}:{number}"))
    if not records:
        raise ReplayError(f"{path}:1: no replay records")
    return records


def checked_record(line: str, where: str) -> dict:
    """One unified training record (training/records.py) of a replay line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise ReplayError(f"{where}: malformed JSON: {err}") from None
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("task", "prompt", "context")):
        raise ReplayError(f"{where}: a replay record needs string 'task', 'prompt' and 'context'")
    if record.get("spans") is None and record.get("cls") is None:
        raise ReplayError(f"{where}: a replay record needs 'spans' (extraction) or 'cls' (classification)")
    return record


class ReplaySampler:
    """The replay records added to each update: `share` (in [0, 1)) of the update's records
    are replay, so n task records get round(n * share / (1 - share)) of them, drawn from a
    seeded shuffle of `records`, reshuffled at each pass. Called by cortex.update (its
    `replay` attribute) with the number of task records."""

    def __init__(self, records: Sequence[dict], share: float, seed: int = 0):
        if not 0.0 <= share < 1.0:
            raise ValueError(f"replay share must be in [0, 1), got {share}")
        if not records:
            raise ValueError("no replay records")
        self.records = list(records)
        self.share = share
        self.drawn = 0  # replay records handed out so far
        self._rng = random.Random(seed)
        self._order: List[int] = []

    def __call__(self, n: int) -> List[dict]:
        wanted = round(n * self.share / (1.0 - self.share))
        out = []
        for _ in range(wanted):
            if not self._order:
                self._order = list(range(len(self.records)))
                self._rng.shuffle(self._order)
            out.append(dict(self.records[self._order.pop()]))
        self.drawn += wanted
        return out


@app.command()
def main(
    raw_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="The raw public sets (corpus/raw, with INDEX.md)"),
    output: Path = typer.Argument(..., dir_okay=False, help="The replay JSONL to write"),
    per_set: int = typer.Option(150, min=1, help="Records per set (a record group is kept whole)"),
    seed: int = typer.Option(0, help="Seed of the converters' sampling and shuffle"),
):
    """Build a replay sample from the redistributable training sets."""
    sample = build(raw_dir, per_set, seed)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as f:
        for name, records in sample.items():
            f.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
            typer.echo(f"{name}\t{len(records)}\t{REPLAY_SETS[name][0]} ({REPLAY_SETS[name][1]})")
    total = sum(map(len, sample.values()))
    typer.echo(f"Wrote {total} records ({output.stat().st_size / 1e6:.2f} MB) to {output}")


if __name__ == "__main__":
    app()
