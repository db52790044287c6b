"""Relation converters: relations as conditional extraction ("Find the employer of {head}."
over the sentence or document, answered with the tail's spans), cortex_rel's prompts.

- fewrel_wiki, fewrel_nyt: FewRel val_wiki / val_nyt, relation names as words from the
  Wikidata names in pid2name.json ("P27" -> "country of citizenship"); each instance gives
  its relation (the tail's span) and one other relation of the set sampled as a negative
  (no span: FewRel marks one relation per sentence, so a sampled one rarely holds).
- ade: ADE train + valid (test is EVAL), every entity asked "adverse effect": a drug gets
  its effects' spans; an effect gets none (every drug of this set has an effect, so the
  negatives are the relation asked the wrong way round).
- redocred: Re-DocRED dev, document-level: each head entity asked each of its relations
  (every mention of every tail), and one relation it does not have as a negative.

Prompts: the training_prompts.json "rel" templates where it has them, else cortex_rel's own
(templates/tasks.json "rel"), with the relation as words. Contexts are tokens joined by
single spaces, as the NER converters do. FewRel val_pubmed is EVAL and never read.
"""
import random
from pathlib import Path
from typing import Dict, Iterator, List, Sequence, Tuple

from ...corpus.registry import read_train
from ...relation_rules import relation_prompt
from ..records import STATS, converters, record

TokenSpan = Tuple[int, int]
# Re-DocRED's date relations, missing from FewRel's pid2name.json (redocred/SOURCE.md)
DATE_RELATIONS = {"P569": "date of birth", "P570": "date of death", "P571": "inception",
                  "P576": "dissolved, abolished or demolished", "P577": "publication date", "P580": "start time",
                  "P582": "end time", "P585": "point in time"}


def relation_names(raw_dir: Path) -> Dict[str, str]:
    """{Wikidata PID: its name}: FewRel's pid2name.json and the date relations."""
    names = {pid: entry[0] for pid, entry in read_train(raw_dir, "fewrel", "names").items()}
    return {**DATE_RELATIONS, **names}


def char_offsets(tokens: Sequence[str]) -> Tuple[str, List[int]]:
    """Tokens joined by single spaces, and each token's start character."""
    starts, pos = [], 0
    for token in tokens:
        starts.append(pos)
        pos += len(token) + 1
    return " ".join(tokens), starts


def char_span(tokens: Sequence[str], starts: Sequence[int], span: TokenSpan) -> List[int]:
    return [starts[span[0]], starts[span[1] - 1] + len(tokens[span[1] - 1])]


def rel_prompt(templates: dict, rng: random.Random, relation: str, head: str) -> str:
    """A prompt asking `relation` of `head`: a training paraphrase or cortex_rel's template."""
    template = rng.choice(templates["rel"]) if templates.get("rel") else None
    return relation_prompt(relation, template).format(head=head)


def ask(task: str, templates: dict, rng: random.Random, tokens: Sequence[str], head: TokenSpan,
        relation: str, tails: Sequence[TokenSpan]) -> dict:
    """One record: `relation` asked of the head, the tails' spans (none: a negative)."""
    text, starts = char_offsets(tokens)
    head_text = " ".join(tokens[head[0] : head[1]])
    spans = sorted(char_span(tokens, starts, t) for t in set(tails))
    return record(task, rel_prompt(templates, rng, relation, head_text), text, spans=spans)


def mention(positions: Sequence[Sequence[int]]) -> TokenSpan:
    """FewRel's first mention (its token indices) as a token span."""
    return min(positions[0]), max(positions[0]) + 1


def fewrel_records(task: str, split: str, raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    names = relation_names(raw_dir)
    data = read_train(raw_dir, "fewrel", split)
    labels = sorted(data)
    for pid in labels:
        for r in data[pid]:
            head, tail = mention(r["h"][2]), mention(r["t"][2])
            other = rng.choice([p for p in labels if p != pid])
            yield ask(task, templates, rng, r["tokens"], head, names[pid], [tail])
            yield ask(task, templates, rng, r["tokens"], head, names[other], [])


@converters.register("fewrel_wiki")
def convert_fewrel_wiki(raw_dir, templates, rng):
    return fewrel_records("fewrel_wiki", "val_wiki", raw_dir, templates, rng)


@converters.register("fewrel_nyt")
def convert_fewrel_nyt(raw_dir, templates, rng):
    return fewrel_records("fewrel_nyt", "val_nyt", raw_dir, templates, rng)


@converters.register("ade")
def convert_ade(raw_dir, templates, rng):
    for split in ("train", "valid"):  # test is EVAL
        for r in read_train(raw_dir, "ade_re", split):
            effects: Dict[TokenSpan, List[TokenSpan]] = {}
            for ts, te, hs, he, _ in r["relations"]:  # effect first, then drug (ade_re/SOURCE.md)
                effects.setdefault((hs, he), []).append((ts, te))
            for s, e, kind in r["entities"]:  # an effect asked for its adverse effect: a negative
                yield ask("ade", templates, rng, r["tokens"], (s, e), "adverse effect", effects.get((s, e), []))


def redocred_tokens(doc: dict) -> Tuple[List[str], List[int]]:
    """The document's tokens, and the first token of each sentence in them."""
    tokens, firsts = [], []
    for sentence in doc["sents"]:
        firsts.append(len(tokens))
        tokens += sentence
    return tokens, firsts


@converters.register("redocred")
def convert_redocred(raw_dir, templates, rng):
    names = relation_names(raw_dir)
    for doc in read_train(raw_dir, "redocred", "dev"):
        tokens, firsts = redocred_tokens(doc)
        spans = [[(firsts[m["sent_id"]] + m["pos"][0], firsts[m["sent_id"]] + m["pos"][1]) for m in entity]
                 for entity in doc["vertexSet"]]
        tails: Dict[Tuple[int, str], List[TokenSpan]] = {}
        for label in doc["labels"]:
            if label["r"] not in names:
                STATS["redocred: relation without a name"] += 1
                continue
            tails.setdefault((label["h"], label["r"]), []).extend(spans[label["t"]])
        relations = sorted({r for _, r in tails})
        for head in sorted({h for h, _ in tails}):
            for pid in sorted(r for h, r in tails if h == head):
                yield ask("redocred", templates, rng, tokens, spans[head][0], names[pid], tails[head, pid])
            absent = [r for r in relations if (head, r) not in tails]
            if absent:  # one relation this head does not have: a negative
                yield ask("redocred", templates, rng, tokens, spans[head][0], names[rng.choice(absent)], [])
