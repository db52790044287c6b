"""Convert public raw datasets into the unified CORTEX JSONL training format.

One file per converter (training/datasets/), records as records.py describes them.

Only TRAINING splits are read: converters get their files from the corpus registry, which
refuses EVAL splits, and every record that repeats an EVAL text is dropped (leakage.py).

Usage: python -m spacy_cortex.training.convert RAW_DIR OUT_DIR [--tasks a,b] [--seed 0]
"""
import argparse
import itertools
import json
import random
from pathlib import Path
from typing import Dict, List, Optional

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


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("raw_dir", type=Path)
    p.add_argument("out_dir", type=Path)
    p.add_argument("--tasks", default="", help="comma-separated converter names (default: all)")
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    tasks = [t for t in a.tasks.split(",") if t] or None
    counts = run(a.raw_dir, a.out_dir, tasks, a.seed)
    for name, n in counts.items():
        print(f"{name}\t{n}")
    print(f"TOTAL\t{sum(counts.values())}")
    for k, v in sorted(STATS.items()):
        print(f"skipped[{k}]\t{v}")


if __name__ == "__main__":
    main()
