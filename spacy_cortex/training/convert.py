"""Convert public raw datasets into the unified CORTEX JSONL training format.

One file per converter (training/datasets/), records as records.py describes them.

Only TRAINING splits are read: converters get their files from the corpus registry, which
refuses EVAL splits, and every record that repeats an EVAL text is dropped (leakage.py).

Usage: python -m spacy_cortex.training.convert RAW_DIR OUT_DIR [--tasks a,b] [--seed 0]
       python -m spacy_cortex.training.convert --raw-dir RAW_DIR OUT_DIR ...

RAW_DIR is the folder of the raw public datasets, one folder per set as corpus/raw/INDEX.md
lists them (in this project ../shared/corpus/raw; project.yml's vars.raw_dir). A missing
folder or file is a usage error (exit code 2) that names the file and how to set RAW_DIR.
"""
import argparse
import itertools
import json
import random
import sys
from pathlib import Path
from typing import Dict, List, Optional

from ..corpus.registry import DATASETS
from . import datasets  # noqa: F401  registers the converters
from .leakage import EVAL_KEYS, LeakGuard, eval_texts
from .records import STATS, converters, load_templates


def shuffled_groups(records: List[dict], rng: random.Random) -> List[dict]:
    """Records in random order, those of one group (consecutive, same "group") kept together
    in their order. Without groups this is rng.shuffle's order, so a set whose records have
    none converts as it did before groups existed."""
    units = [list(run) for _, run in itertools.groupby(records, key=lambda r: r.get("group", object()))]
    rng.shuffle(units)
    return [r for unit in units for r in unit]


def run(raw_dir: Path, out_dir: Path, tasks: Optional[List[str]] = None, seed: int = 0,
        templates: Optional[dict] = None) -> Dict[str, int]:
    templates = templates or load_templates()
    out_dir.mkdir(parents=True, exist_ok=True)
    guard = LeakGuard(eval_texts(Path(raw_dir)), templates)  # built once for all tasks
    EVAL_KEYS.clear()
    EVAL_KEYS.update(guard.keys)
    counts = {}
    try:
        for name in tasks or sorted(converters.get_all()):
            rng = random.Random(f"{seed}:{name}")  # per-task stream: adding tasks never changes others
            records, leaked = [], 0
            for r in converters.get(name)(Path(raw_dir), templates, rng):
                if guard.leaks(r):
                    leaked += 1
                else:
                    records.append(r)
            STATS[f"leak:{name}"] += leaked  # printed for every task, 0 included
            records = shuffled_groups(records, rng)
            with open(out_dir / f"{name}.jsonl", "w", encoding="utf-8") as f:
                for r in records:
                    f.write(json.dumps(r, ensure_ascii=False) + "\n")
            counts[name] = len(records)
    finally:
        EVAL_KEYS.clear()
    return counts


HOW_TO_SET = "set vars.raw_dir in project.yml (or weasel run convert . --vars.raw_dir PATH) or pass --raw-dir PATH"


def raw_dir_problem(raw_dir: Path) -> Optional[str]:
    """Why raw_dir cannot be the raw corpus (None when it can): it must be a folder holding
    INDEX.md or at least one of the registry's set folders."""
    if not raw_dir.is_dir():
        return f"RAW_DIR {raw_dir} is not a folder ({'missing' if not raw_dir.exists() else 'a file'})"
    if not (raw_dir / "INDEX.md").is_file() and not any((raw_dir / name).is_dir() for name in DATASETS):
        return (f"RAW_DIR {raw_dir} holds neither INDEX.md nor any of the raw sets "
                f"({', '.join(sorted(DATASETS)[:5])}, ...)")
    return None


def fail(message: str) -> None:
    print(f"convert: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m spacy_cortex.training.convert", description=__doc__.splitlines()[0],
                                usage="%(prog)s [-h] [--tasks a,b] [--seed N] (RAW_DIR OUT_DIR | --raw-dir RAW_DIR OUT_DIR)")
    p.add_argument("paths", nargs="+", metavar="PATH", type=Path,
                   help="the raw datasets folder (unless --raw-dir is given) and the output folder")
    p.add_argument("--raw-dir", type=Path, default=None,
                   help="the raw datasets folder (project.yml: vars.raw_dir, default ../shared/corpus/raw)")
    p.add_argument("--tasks", default="", help="comma-separated converter names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.raw_dir is not None and len(a.paths) == 1:
        raw_dir, out_dir = a.raw_dir, a.paths[0]
    elif a.raw_dir is None and len(a.paths) == 2:
        raw_dir, out_dir = a.paths
    else:
        p.error("give RAW_DIR OUT_DIR, or --raw-dir RAW_DIR OUT_DIR")
    tasks = [t for t in a.tasks.split(",") if t] or None
    unknown = sorted(set(tasks or ()) - set(converters.get_all()))
    if unknown:
        p.error(f"unknown task(s) {', '.join(unknown)}; known: {', '.join(sorted(converters.get_all()))}")
    problem = raw_dir_problem(raw_dir)
    if problem:
        fail(f"{problem}; {HOW_TO_SET}")
    try:
        counts = run(raw_dir, out_dir, tasks, a.seed)
    except FileNotFoundError as err:
        missing = Path(err.filename) if err.filename else None
        if missing is None:
            fail(f"{err}; {HOW_TO_SET}")
        try:
            shown = missing.relative_to(raw_dir).as_posix()
        except ValueError:
            shown = str(missing)
        fail(f"{shown} not found under RAW_DIR ({raw_dir}); {HOW_TO_SET}")
    for name, n in counts.items():
        print(f"{name}\t{n}")
    print(f"TOTAL\t{sum(counts.values())}")
    for k, v in sorted(STATS.items()):
        print(f"skipped[{k}]\t{v}")


if __name__ == "__main__":
    main()
