"""Evaluation sets of relations (cortex_rel): ADE test (drug -> adverse effect) with gold
entities and end to end with cortex_ner's entities, and FewRel's PubMed relations with gold
entities. Strict micro P/R/F: both entities' spans and labels and the relation label."""
from typing import Dict, List, Sequence, Tuple

from spacy.tokens import Doc, Span

from ..corpus.registry import read_eval
from ..rel import install_extensions, micro_prf, relation_keys
from ..training.datasets.relations import mention
from .evaluator import Evaluator
from .metrics import result

TokenSpan = Tuple[int, int]
# (words, entities [(start, end, label)], relations [(head, tail, label)]), token offsets
Row = Tuple[List[str], List[Tuple[int, int, str]], List[Tuple[TokenSpan, TokenSpan, str]]]
GOLD_KEY = "gold_entities"  # Doc.spans key of the given entities (ADE's overlap, so not Doc.ents)
ADE_TYPES = {"Drug": "drug", "Adverse-Effect": "adverse effect"}
ADE_RELATION = "adverse effect"
ADE_RELATIONS = {ADE_RELATION: {"head": ["drug"], "tail": ["adverse effect"]}}


def ade_rows(raw, split: str) -> List[Row]:
    """ADE sentences; a relation [effect start, end, drug start, end, _] reads drug -> effect
    (corpus/raw/ade_re/SOURCE.md), so the drug is the head."""
    return [(r["tokens"], [(s, e, ADE_TYPES[t]) for s, e, t in r["entities"]],
             [((hs, he), (ts, te), ADE_RELATION) for ts, te, hs, he, _ in r["relations"]])
            for r in read_eval(raw, "ade_re", split)]


def fewrel_rows(raw, split: str) -> Tuple[List[Row], List[str]]:
    """FewRel instances as rows with two entities, the head ("head") and the tail ("tail"),
    and their one relation; and the split's relation labels. Instances whose mentions
    overlap are left out."""
    data = read_eval(raw, "fewrel", split)
    rows = []
    for label, instances in data.items():
        for r in instances:
            head, tail = mention(r["h"][2]), mention(r["t"][2])
            if head[0] < tail[1] and tail[0] < head[1]:
                continue
            rows.append((r["tokens"], [(*head, "head"), (*tail, "tail")], [(head, tail, label)]))
    return rows, sorted(data)


def gold_doc(ev: Evaluator, row: Row) -> Doc:
    """The row's words with its entities in Doc.spans[GOLD_KEY] and its relations in doc._.relations."""
    install_extensions()
    words, entities, relations = row
    doc = ev.words_doc(words)
    spans = {(s, e): Span(doc, s, e, label=label) for s, e, label in entities}
    doc.spans[GOLD_KEY] = list(spans.values())
    doc._.relations = [{"head": spans[h], "tail": spans[t], "label": label} for h, t, label in relations]
    return doc


def strict_scores(predicted: Sequence[Doc], gold: Sequence[Doc]) -> Dict[str, float]:
    return micro_prf((relation_keys(p), relation_keys(g)) for p, g in zip(predicted, gold))


def entity_keys(doc: Doc) -> set:
    return {(e.start, e.end, e.label_) for e in doc.ents}


def eval_ade(ev: Evaluator, default: int = 415) -> dict:
    """ADE test: cortex_rel with the gold entities (given_*), and end to end (e2e_*:
    cortex_ner's drug and adverse effect entities in Doc.ents, then cortex_rel)."""
    rows = ev.rows(ade_rows(ev.raw, "test"), default)
    gold = [gold_doc(ev, row) for row in rows]
    given = ev.run_component("cortex_rel", {"relations": ADE_RELATIONS, "spans_key": GOLD_KEY},
                             [g.copy() for g in gold])
    found = ev.run_component("cortex_ner", {"labels": sorted(ADE_TYPES.values()), **ev.ner_config},
                             [ev.words_doc(words) for words, _, _ in rows])
    e2e = ev.run_component("cortex_rel", {"relations": ADE_RELATIONS}, found)
    ner = micro_prf((entity_keys(d), {(s, e, t) for s, e, t in row[1]}) for d, row in zip(e2e, rows))
    metrics = {f"given_{k}": v for k, v in strict_scores(given, gold).items()}
    metrics.update({f"e2e_{k}": v for k, v in strict_scores(e2e, gold).items()})
    metrics["e2e_ner_f"] = ner["f"]
    return result(metrics, len(rows),
                  f"ade_re test.ADE0.json (fold 0); cortex_rel relations {ADE_RELATIONS} (prompt from the template: "
                  "'Find the adverse effect of {head}.'), default thresholds; given_*: the gold entities "
                  f"(Doc.spans[{GOLD_KEY!r}], nested ones included); e2e_*: cortex_ner labels "
                  f"{sorted(ADE_TYPES.values())} into Doc.ents, then cortex_rel; strict micro P/R/F (both "
                  "entities' spans and types and the relation); e2e_ner_f: exact entity F1 against every gold "
                  "entity (nested ones cannot all be in Doc.ents)")


def eval_fewrel_pubmed(ev: Evaluator, default: int = 300) -> dict:
    """FewRel val_pubmed: each instance's head and tail given, all 10 relations asked of
    the head (by their names as words); a relation is found when the answer marks the tail."""
    all_rows, labels = fewrel_rows(ev.raw, "val_pubmed")
    rows = ev.rows(all_rows, default)
    gold = [gold_doc(ev, row) for row in rows]
    config = {"relations": {label: {"head": "head", "tail": "tail"} for label in labels}, "spans_key": GOLD_KEY}
    predicted = ev.run_component("cortex_rel", config, [g.copy() for g in gold])
    per_label = {label: strict_scores([keep(p, label) for p in predicted], [keep(g, label) for g in gold])["f"]
                 for label in labels}
    return result(strict_scores(predicted, gold), len(rows),
                  f"fewrel val_pubmed.json, a seeded subset of instances; the head and the tail given "
                  f"(Doc.spans[{GOLD_KEY!r}]), each of the {len(labels)} relations asked of the head with its name "
                  "as words ('Find the gene found in organism of {head}.'), default thresholds; strict micro P/R/F "
                  "of (head, tail, relation). FewRel is a few-shot classification benchmark (N-way K-shot "
                  "accuracy): this zero-shot extraction figure is not comparable with its leaderboard",
                  per_relation_f=per_label)


def keep(doc: Doc, label: str) -> Doc:
    """A copy of doc with only the relations of one label (per-relation scores)."""
    out = doc.copy()
    out._.relations = [r for r in doc._.relations if r["label"] == label]
    return out
