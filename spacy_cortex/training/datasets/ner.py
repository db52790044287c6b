"""NER converters: CoNLL-2003 and WNUT-17 (one example per entity type of the set per
context, absent types included, with the sets' own type names from training_prompts.json
"ner_labels"), and the newer sets: one example per (entity type, passage).

A passage gives one example per entity type present in it (spans: that type's mentions) and as
many types of the set's inventory that are absent from it (empty spans: a negative), sampled with
the converter's rng, so about half of the examples are negatives (GLiNER found ~50% negative types
best). Where a set has too few types for that (NCBI: one type), the missing negatives are taken
from passages without any entity ("negative debt"); besides, a passage without entities gives one
negative with probability `_empty_passage_rate`, so the model also sees passages with nothing to find.

Entity types are asked with words a user would type (templates/ner_types.json: {set: {raw type:
[name, paraphrase, ...]}}), put into training_prompts.json's "ner" templates; `_raw_rate` of the
examples use the raw type as written instead (lowercased, _ and - as spaces), except the types of
`_mention_types`: they mark every mention, pronouns and common nouns included (GUM "person": "you",
"the only candidate"; WLP "Location": "the tube"), so their raw words would teach the named-entity
prompts of CoNLL-2003 and the evaluation ("person", "location") to mark generic mentions; their
names say "mention" instead. Pile-NER also uses its GPT-written type definitions
(`_definition_templates`) and keeps its own negatives.

Sibling types (templates/ner_siblings.json): sets with fine types annotate a politician as a
politician only, so "writer" over a sentence whose only person is a politician has no span. With
probability `_rate` per type present in a passage, one of its absent siblings is among the
passage's negatives (the rest sampled from all absent types, as many as before), so that fine
types are told apart and not every person is marked a writer and a politician. A set's catch-all
type whose names also fit the types it covers (MultiCoNER "OtherPER" asked as "person") is never
a negative where a type it covers is present, and where both are present it is asked with its
broad names over all their mentions.

CoNLL-2003 contexts are single sentences or, for a share of them, 2-5 consecutive sentences of
one document joined by spaces (ner_context.py says how and why only CoNLL-2003).

Contexts are tokens joined by single spaces (corpus.readers.read_tagged), except where the data has
the raw text (Pile-NER passages; AnEM gives character offsets, so its sentences keep their spacing).
Sentences under 3 tokens are skipped. Only the splits in SOURCES are read, through the corpus
registry; no test split and no split that corpus/raw/INDEX.md calls EVAL.
"""
import json
import random
import re
from functools import partial
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from ...corpus.readers import Sentence, Spans, read_json, read_jsonl, read_tagged
from ...corpus.registry import train_file, train_files
from ...templates import TEMPLATES_DIR
from ..records import STATS, converters, fill, record
from .ner_context import conll_runs, joined_contexts

TYPES_PATH = TEMPLATES_DIR / "ner_types.json"
SIBLINGS_PATH = TEMPLATES_DIR / "ner_siblings.json"
MIN_TOKENS = 3

# The raw set and the splits each converter reads (files: corpus/registry.py).
SOURCES: Dict[str, Tuple[str, Tuple[str, ...]]] = {
    "conll": ("conll2003", ("train", "dev")),  # dev is allowed for training; test is EVAL
    "wnut": ("wnut17", ("train",)),
    # INTER train only: INTER test is a test split, and the INTER dev episodes (13 other types) are not a train split
    "fewnerd": ("fewnerd_inter_subset", ("train",)),
    "multiconer2": ("multiconer2_en", ("train",)),  # both parts = the official train split
    # the only Pile-NER rows here (SLIMER's validation sample of Pile-NER train) + the GPT type definitions
    "pilener": ("pilener_slimer_subset", ("rows", "definitions")),
    "stackoverflow_ner": ("stackoverflow_ner", ("train",)),
    "wlp": ("wlp_wnut2020", ("train",)),
    "gum_ner": ("gum_ner", ("train",)),
    "wnut16": ("wnut16", ("train",)),
    "harveyner": ("harveyner", ("train",)),
    "anem": ("anem", ("train",)),
    **{name: (name, ("train",)) for name in ("bionlp13cg", "bionlp13pc", "bionlp11id", "bc5cdr", "ncbi_disease")},
    # no train split here; devel (carved from the original training data) is not EVAL in INDEX.md
    "jnlpba": ("jnlpba", ("devel",)),
}

# Few-NERD sentences that are also CrossNER (EVAL) sentences, named in fewnerd_inter_subset/SOURCE.md.
EVAL_OVERLAP = {
    "fewnerd": [
        "He was later awarded the Gold Medal of the Royal Astronomical Society and the Royal Medal of the Royal "
        "Society for this work .",
        "It was during the 1960s that Warhol began to make paintings of iconic American objects such as dollar bills , "
        "mushroom clouds , electric chairs , Campbell 's Soup Cans , Coca-Cola bottles , celebrities such as Marilyn "
        "Monroe , Elvis Presley , Marlon Brando , Troy Donahue , Muhammad Ali , and Elizabeth Taylor , as well as "
        "newspaper headlines or photographs of police dogs attacking African -American protesters during the "
        "Birmingham campaign in the civil rights movement .",
    ],
}

# StackOverflow: post headers ("Question_ID : 123", "Question_URL : https://...") and code / output blocks
# replaced by a placeholder ("CODE_BLOCK : Q_4780 ( code omitted for annotation )") hold no language.
SO_PSEUDO = re.compile(r"(Question_ID|Question_URL|Answer_to_Question_ID) :.*"
                       r"|(CODE_BLOCK|OUTPUT_BLOCK|OP_BLOCK) :( \S+)? \( (code|output) omitted for annotation \)")
DOCSTART = "-DOCSTART-"
INVISIBLE = "\u200b\u200c\u200d\u200e\u200f\u2060\ufeff"


# ---------------------------------------------------------------- names and prompts
def load_types(path: Path = TYPES_PATH) -> dict:
    return read_json(path)


def load_siblings(path: Path = SIBLINGS_PATH) -> dict:
    return read_json(path)


def sibling_map(entry: dict) -> Dict[str, List[str]]:
    """{type: its siblings, sorted}: the other members of the groups it is in (ner_siblings.json)."""
    out: Dict[str, set] = {}
    for group in entry.get("groups", []):
        for t in group:
            out.setdefault(t, set()).update(x for x in group if x != t)
    return {t: sorted(sibs) for t, sibs in out.items()}


def raw_words(raw: str) -> str:
    """A raw type as written, lowercased, '_' and '-' as spaces: 'person_artist/author' -> 'person artist/author'."""
    return " ".join(re.sub(r"[_-]+", " ", raw).lower().split())


def type_prompt(rng: random.Random, templates: dict, types: dict, raw: str, names: List[str],
                definition: Optional[str] = None, guidelines: Optional[str] = None, allow_raw: bool = True) -> str:
    """A prompt asking for one type: one of its names or (`_raw_rate`, where allowed) its raw words."""
    label = raw_words(raw) if allow_raw and rng.random() < types["_raw_rate"] else rng.choice(names)
    if definition and rng.random() < types["_definition_rate"]:
        tpl = [t for t in types["_definition_templates"] if guidelines or "{guidelines}" not in t]
        return fill(rng, tpl, label=label, definition=definition, guidelines=guidelines)
    return fill(rng, templates["ner"], label=label)


def pick_negatives(rng: random.Random, present: List[str], absent: List[str], n: int,
                   siblings: Dict[str, List[str]], rate: float) -> List[str]:
    """n absent types: for each present type, with probability `rate`, one of its absent
    siblings; the rest sampled from all absent types."""
    picked: List[str] = []
    for t in present:
        options = [s for s in siblings.get(t, ()) if s in absent and s not in picked]
        if options and len(picked) < n and rng.random() < rate:
            picked.append(rng.choice(options))
    return picked + rng.sample([t for t in absent if t not in picked], n - len(picked))


def covered(broad: dict, t: str, spans: Spans) -> List[str]:
    """The types present in `spans` that the broad (catch-all) type t covers; none if t is not broad."""
    return [c for c in broad.get(t, {}).get("covers", ()) if c in spans]


def type_examples(task: str, passages: Iterable[Tuple[str, Spans]], templates: dict, rng: random.Random,
                  types: Optional[dict] = None, siblings: Optional[dict] = None) -> Iterator[dict]:
    """Present types + as many absent types per passage, siblings of the present ones first
    (see the module docstring)."""
    types = types or load_types()
    table = siblings if siblings is not None else load_siblings()
    entry = table.get(task, {})
    sibs, broad, rate = sibling_map(entry), entry.get("broad", {}), table.get("_rate", 0.0)
    names = types[task]
    inventory = list(names)
    debt = 0
    for text, spans in passages:
        unknown = sorted(set(spans) - set(names))
        if unknown:
            raise ValueError(f"{task}: entity types {unknown} have no names in {TYPES_PATH.name}")
        present = [t for t in inventory if t in spans]
        absent = [t for t in inventory if t not in spans and not covered(broad, t, spans)]
        n_neg = min(len(present), len(absent))
        debt += len(present) - n_neg
        if not present and absent:
            if debt > 0:
                n_neg, debt = 1, debt - 1
            elif rng.random() < types["_empty_passage_rate"]:
                n_neg = 1
        for t in present + pick_negatives(rng, present, absent, n_neg, sibs, rate):
            yield type_record(task, rng, templates, types, t, text, spans, broad)


def type_record(task: str, rng: random.Random, templates: dict, types: dict, t: str, text: str, spans: Spans,
                broad: dict) -> dict:
    """The example asking for type t: its mentions; a broad type present with types it covers
    is asked by its broad names for all their mentions."""
    inside = covered(broad, t, spans) if t in spans else []
    if inside:
        merged = sorted(span for kind in [t] + inside for span in spans[kind])
        return record(task, type_prompt(rng, templates, types, t, broad[t]["names"], allow_raw=False), text,
                      spans=merged)
    allow_raw = t not in types.get("_mention_types", {}).get(task, ())
    return record(task, type_prompt(rng, templates, types, t, types[task][t], allow_raw=allow_raw), text,
                  spans=spans.get(t, []))


# ---------------------------------------------------------------- readers
def bio_sentences(path: Path) -> Iterator[Sentence]:
    """A token<TAB>tag file (the tag in column 2) as read_tagged reads it; the token count
    is the text's space-separated words."""
    for text, spans, _ in read_tagged(path, sep="\t", tag_col=1):
        yield text, spans, len(text.split(" "))


def _trim(text: str, spans: Spans) -> Spans:
    """Spans without edge whitespace / zero-width characters (StackOverflow has entities that are one U+200C)."""
    out: Spans = {}
    for kind, lst in spans.items():
        kept = []
        for s, e in lst:
            while s < e and (text[s].isspace() or text[s] in INVISIBLE):
                s += 1
            while e > s and (text[e - 1].isspace() or text[e - 1] in INVISIBLE):
                e -= 1
            if s < e:
                kept.append([s, e])
            else:
                STATS["ner: empty entity dropped"] += 1
        if kept:
            out[kind] = kept
    return out


def passages(task: str, sentences: Iterable[Sentence],
             drop: Optional[Callable[[str], Optional[str]]] = None) -> Iterator[Tuple[str, Spans]]:
    """Sentences of at least MIN_TOKENS tokens that `drop` keeps (it returns the reason to drop one, or None)."""
    for text, spans, n_tokens in sentences:
        if text.startswith(DOCSTART) and n_tokens <= 2:
            continue
        if n_tokens < MIN_TOKENS:
            STATS[f"{task}: under {MIN_TOKENS} tokens"] += 1
            continue
        reason = drop(text) if drop else None
        if reason:
            STATS[f"{task}: {reason}"] += 1
            continue
        yield text, _trim(text, spans)


def _files(raw_dir: Path, task: str) -> List[Path]:
    name, splits = SOURCES[task]
    return [path for split in splits for path in train_files(raw_dir, name, split)]


def _bio_task(task: str, raw_dir: Path, templates: dict, rng: random.Random, drop=None, **reader) -> Iterator[dict]:
    """A tagged-token set: bio_sentences where it parses the file, else read_tagged(**reader)."""
    sents = (s for path in _files(raw_dir, task)
             for s in (read_tagged(path, **reader) if reader else bio_sentences(path)))
    yield from type_examples(task, passages(task, sents, drop), templates, rng)


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


# ---------------------------------------------------------------- converters
def ner_examples(task: str, contexts: Iterable[Tuple[str, Spans]], label_set: str, templates: dict,
                 rng: random.Random) -> Iterator[dict]:
    """One example per entity type of the set per context, absent types included (empty spans ->
    negative), each type asked by one of the set's own names (training_prompts.json "ner_labels")."""
    names = templates["ner_labels"][label_set]
    for text, spans in contexts:
        for kind, descs in names.items():
            prompt = fill(rng, templates["ner"], label=rng.choice(descs))
            yield record(task, prompt, text, spans=spans.get(kind, []))


def _tab_sentences(path: Path) -> List[Sentence]:
    return list(read_tagged(path, sep="\t", tag_col=1))


@converters.register("conll")
def convert_conll(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """All four CoNLL types in every context; a share of the contexts are joined sentences."""
    for path in _files(raw_dir, "conll"):
        contexts = joined_contexts(conll_runs(_tab_sentences(path), MIN_TOKENS), rng)
        yield from ner_examples("conll", contexts, "conll", templates, rng)


@converters.register("wnut")
def convert_wnut(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """Single tweets: not joined (ner_context.py)."""
    for path in _files(raw_dir, "wnut"):
        yield from ner_examples("wnut", ((text, spans) for text, spans, _ in _tab_sentences(path)), "wnut",
                                templates, rng)


@converters.register("fewnerd")
def convert_fewnerd(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    held_out = {_norm(t) for t in EVAL_OVERLAP["fewnerd"]}
    yield from _bio_task("fewnerd", raw_dir, templates, rng,
                         drop=lambda text: "also in CrossNER (EVAL)" if _norm(text) in held_out else None)


@converters.register("multiconer2")
def convert_multiconer2(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    yield from _bio_task("multiconer2", raw_dir, templates, rng, sep=" ", comment=re.compile(r"# id \S+\tdomain="))


@converters.register("stackoverflow_ner")
def convert_stackoverflow_ner(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    yield from _bio_task("stackoverflow_ner", raw_dir, templates, rng,  # bio_sentences: the gold tag is column 2
                         drop=lambda text: "post header or code placeholder" if SO_PSEUDO.fullmatch(text) else None)


@converters.register("wlp")
def convert_wlp(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    yield from _bio_task("wlp", raw_dir, templates, rng, sep="\t", tag_col=1, comment=re.compile(r"# document: "))


@converters.register("harveyner")
def convert_harveyner(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    yield from _bio_task("harveyner", raw_dir, templates, rng, sep=" ", comment=re.compile(r"-DOCSTART-( |$)"))


@converters.register("anem")
def convert_anem(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    yield from _bio_task("anem", raw_dir, templates, rng, sep="\t", offsets=True)





# Sets in plain token<TAB>tag files (read_bio parses them): one registration each.
for _name in ("gum_ner", "wnut16", "bionlp13cg", "bionlp13pc", "bionlp11id", "bc5cdr", "ncbi_disease", "jnlpba"):
    converters.register(_name, func=partial(_bio_task, _name))


# ---------------------------------------------------------------- Pile-NER
def locate_all(text: str, entities: Iterable[str]) -> List[List[int]]:
    """Every whole-word occurrence of each entity string (Pile-NER lists strings, not offsets);
    where occurrences overlap the longer one is kept."""
    found = []
    for ent in {e.strip() for e in entities if e.strip()}:
        for m in re.finditer(re.escape(ent), text):
            s, e = m.span()
            if (ent[0].isalnum() and s > 0 and text[s - 1].isalnum()) or \
                    (ent[-1].isalnum() and e < len(text) and text[e].isalnum()):
                continue  # inside a longer word
            found.append([s, e])
    kept: List[List[int]] = []
    for s, e in sorted(found, key=lambda x: (x[0] - x[1], x[0])):
        if all(e <= ks or s >= ke for ks, ke in kept):
            kept.append([s, e])
    return sorted(kept)


def pile_definitions(path: Path) -> Dict[str, Tuple[str, Optional[str]]]:
    """{type: (definition, guidelines or None)}; guidelines cut off mid-sentence in the source are left out."""
    raw = read_json(path)
    out = {}
    for name, entry in raw.items():
        answer = json.loads(entry["gpt_answer"])
        guidelines = answer.get("Guidelines", "").strip()
        out[name] = (answer["Definition"].strip(), guidelines if guidelines.endswith((".", ")", "'", '"')) else None)
    return out


@converters.register("pilener")
def convert_pilener(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """One example per data row (passage, type), its negatives (output "[]") kept as they are."""
    rows_path, defs_path = (train_file(raw_dir, "pilener_slimer_subset", split) for split in ("rows", "definitions"))
    types = load_types()
    names, defs = types["pilener"], pile_definitions(defs_path)
    for r in read_jsonl(rows_path):
        tag, text, ents = r["tagName"], r["input"], json.loads(r["output"])
        spans = locate_all(text, ents)
        if ents and not spans:
            STATS["pilener: entities not found in passage"] += 1
            continue
        if tag not in names:
            raise ValueError(f"pilener: entity type {tag!r} has no names in {TYPES_PATH.name}")
        definition, guidelines = defs.get(tag, (None, None))
        yield record("pilener", type_prompt(rng, templates, types, tag, names[tag], definition, guidelines),
                     text, spans=spans)
