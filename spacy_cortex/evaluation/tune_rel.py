"""Choose cortex_rel's decoding defaults on relation data that is neither trained on nor EVAL.

    python -m spacy_cortex.evaluation.tune_rel RAW_DIR CORPUS_DIR --model CHECKPOINT [--mix MIX] [--rows 300]

The relation converters read ADE train and valid and FewRel val_nyt, and the converted files
are shuffled, so a mix trains on a random sample of their rows. Only the sentences that none
of the trained rows hold are used (trained_texts: the rows after the dev rows, up to the
mix's count, of CORPUS_DIR's files):
- ADE valid (fold 0): the gold drug and adverse-effect entities given, "adverse effect"
  asked of each drug;
- FewRel val_nyt: each instance's head and tail given, all 25 relations asked of the head
  (by name), so this measures telling relations apart.

The model runs once per prompt; thresholds, extension and the [CLS] gate
(`no_answer_threshold`) are then swept over the same results. Strict micro P/R/F of
(head, tail, relation). The chosen values are set in relation_rules by hand, with the
figures in docs/RELATIONS.md.
"""
import itertools
import json
from pathlib import Path
from typing import Dict, List, Sequence, Set, Tuple

import typer
from wasabi import msg

from ..commands import typer_app
from ..training.train import load_corpus
from ..relation_rules import Entity, extract_relations, parse_relations, requests
from ..training.datasets.relations import char_offsets, relation_names
from .evaluator import Evaluator
from .sets_relations import ADE_RELATIONS, ade_rows, fewrel_rows

app = typer_app(__doc__.split("\n\n")[0])

THRESHOLDS = ((0.85, 0.7), (0.7, 0.5), (0.5, 0.4), (0.3, 0.2))  # (threshold, extend_threshold)
GATES = (0.0, 0.2, 0.5, 0.7, 0.8, 0.9)  # no_answer_threshold
Item = Tuple[str, List[Entity], Set[tuple]]  # text, entities, gold (head, tail, label)


def char_item(words: Sequence[str], entities, relations, names: Dict[str, str]) -> Item:
    """A row of token offsets as text joined by spaces, with character offsets; relation
    labels renamed by `names` (FewRel's PIDs)."""
    text, starts = char_offsets(words)
    span = lambda s, e: (starts[s], starts[e - 1] + len(words[e - 1]))
    labels = {(s, e): label for s, e, label in entities}
    ents = [(*span(s, e), label) for s, e, label in entities]
    gold = {((*span(*h), labels[h]), (*span(*t), labels[t]), names.get(label, label)) for h, t, label in relations}
    return text, ents, gold


def normalized(text: str) -> str:
    return " ".join(text.split())


def trained_texts(corpus: Path, task: str, mix: Dict[str, int], dev_per_task: int) -> Set[str]:
    """Whitespace-normalized contexts of the rows of CORPUS/task.jsonl that training reads
    as training rows (train.load_corpus: after the first dev_per_task, up to the mix's count)."""
    if task not in mix:
        return set()
    trained, _ = load_corpus(corpus, {task: mix[task]}, dev_per_task)
    return {normalized(r["context"]) for r in trained}


def unseen(items: Sequence[Item], trained: Set[str]) -> List[Item]:
    return [item for item in items if normalized(item[0]) not in trained]


def sweep(ev: Evaluator, items: Sequence[Item], specs: Dict[str, dict]) -> List[dict]:
    """P/R/F in [0, 1] for each (threshold, extend_threshold, no_answer_threshold)."""
    asked = [requests(text, ents, parse_relations(specs)) for text, ents, _ in items]
    pairs = [(p, text) for (text, _, _), reqs in zip(items, asked) for p in dict.fromkeys(p for _, _, p in reqs)]
    by_text: Dict[str, dict] = {}
    for (prompt, text), result in zip(pairs, ev.model.run_texts(pairs)):
        by_text.setdefault(text, {})[prompt] = result
    table = []
    for (threshold, extend), gate in itertools.product(THRESHOLDS, GATES):
        rels = parse_relations(specs, threshold=threshold, no_answer_threshold=gate)
        tp = n_pred = n_gold = 0
        for text, ents, gold in items:
            found = {(h, t, label) for h, t, label, _ in
                     extract_relations(text, ents, rels, by_text.get(text, {}), extend)}
            tp, n_pred, n_gold = tp + len(found & gold), n_pred + len(found), n_gold + len(gold)
        p, r = tp / max(n_pred, 1), tp / max(n_gold, 1)
        table.append({"threshold": threshold, "extend": extend, "gate": gate, "p": p, "r": r,
                      "f": 2 * p * r / max(p + r, 1e-9)})
    return table


def show(table: List[dict], title: str) -> None:
    msg.table([(t["threshold"], t["extend"], t["gate"], *(f"{100 * t[k]:.1f}" for k in "prf")) for t in table],
              header=("threshold", "extend", "gate", "P", "R", "F"), divider=True, title=title)


@app.command()
def tune_rel(
    raw_dir: Path = typer.Argument(..., exists=True, file_okay=False, help="the corpus/raw folder (ade_re, fewrel)"),
    corpus: Path = typer.Argument(..., exists=True, file_okay=False, help="the converted corpus the model trained on (ade.jsonl, fewrel_nyt.jsonl)"),
    model: str = typer.Option(..., help="registered checkpoint name or Hugging Face folder"),
    rows: int = typer.Option(300, help="seeded subset of each set's unseen sentences"),
    mix: Path = typer.Option(Path("configs/train_mix_v4r.json"), exists=True, dir_okay=False, help="the training mix, to skip trained sentences"),
    dev_per_task: int = typer.Option(100, help="as given to spacy_cortex.training.train"),
    precision: str = typer.Option("bf16"),
):
    """Sweep cortex_rel's thresholds and [CLS] gate on ADE valid and FewRel val_nyt
    sentences the mix did not train on; prints P/R/F tables."""
    ev = Evaluator(raw_dir, model, precision)
    counts = json.loads(mix.read_text())
    ade = unseen([char_item(*row, {}) for row in ade_rows(raw_dir, "valid")],
                 trained_texts(corpus, "ade", counts, dev_per_task))
    ade = ev.rows(ade, rows)
    show(sweep(ev, ade, ADE_RELATIONS), f"ADE valid, gold entities, {len(ade)} untrained sentences")
    names = relation_names(raw_dir)
    nyt, pids = fewrel_rows(raw_dir, "val_nyt")
    nyt = ev.rows(unseen([char_item(*row, names) for row in nyt], trained_texts(corpus, "fewrel_nyt", counts,
                                                                                 dev_per_task)), rows)
    show(sweep(ev, nyt, {names.get(pid, pid): {"head": "head", "tail": "tail"} for pid in pids}),
         f"FewRel val_nyt, all {len(pids)} relations asked, {len(nyt)} untrained instances")


if __name__ == "__main__":
    app()
