"""Converters of the sets with large inventories of label names (issue 24, item 2), so that the
model learns what a label name means, also one it has never seen: tweet NER (Broad Twitter
Corpus), ultra-fine entity types (UFET), answer types (SMART: DBpedia and Wikidata classes),
Stack Exchange tags and keyphrases (LIAAD); SGD intents and slots are sgd.py's.

Code-style names become words (`words`: dbo:MusicalArtist -> "musical artist", travel-insurance
-> "travel insurance"; exceptions in templates/typing_sets.json "names"); one-line glosses (UFET
definitions, SGD and SGD-X descriptions) are another wording of a prompt. A text gets gold labels
as positives and about as many wrong labels as negatives, drawn where they are most likely truly
wrong: UFET types never given with the mention's general types, DBpedia classes outside the gold
lineage (siblings first), tags and keyphrases of other texts of the same site or set that the text
does not contain, intents of the same service or of other domains. A [CLS] positive and its
negatives form one group (one positive each, as train.py's listwise term wants).

Each set gives at most settings "cap" records (whole groups, drawn with the converter's rng).
Only training splits are read, through the corpus registry; texts that repeat an EVAL text are
left out before the cap (inside convert.run, whose guard drops them anyway): DBpedia train holds
205 DBpedia test and ~2,600 Wikidata test questions; Wikidata questions are compared without
their {braces}.
"""
import ast
import random
import re
from collections import defaultdict
from functools import lru_cache, partial
from pathlib import Path
from typing import Callable, Dict, Iterable, Iterator, List, NamedTuple, Optional, Sequence, Tuple

from ...corpus.readers import mention_sentence, read_json
from ...corpus.registry import read_train, train_files
from ...templates import TEMPLATES_DIR, with_article
from ..leakage import is_eval_text
from ..records import NEG, POS, STATS, converters, fill, group_id, record
from .ner import bio_sentences, locate_all, passages, type_examples

SETTINGS_PATH = TEMPLATES_DIR / "typing_sets.json"
CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")  # MusicalArtist, NCAATeam
HYPHEN = re.compile(r"-(?!\d)")  # a hyphen before a digit stays: i-94, 90-180
ARTICLE = re.compile(r"(?i)^(the|a|an) ")
TRIES = 50  # draws of a wrong label before giving up on one


@lru_cache(maxsize=1)
def settings() -> dict:
    return read_json(SETTINGS_PATH)


# ---------------------------------------------------------------- names, prompts, records
def words(raw: str) -> str:
    """A code-style name as words: prefix (dbo:) dropped, CamelCase, _ and - split, lowercased
    except acronyms: 'dbo:NCAATeamSeason' -> 'NCAA team season', 'b1-b2-visas' -> 'b1 b2 visas'."""
    for prefix in settings()["strip_prefixes"]:
        raw = raw[len(prefix):] if raw.startswith(prefix) else raw
    raw = HYPHEN.sub(" ", CAMEL.sub(" ", raw).replace("_", " "))
    return " ".join(w if len(w) > 1 and w.isupper() else w.lower() for w in raw.split())


def names(raw: str) -> List[str]:
    """The ways a user names a raw label: the settings' names, else its words."""
    return settings()["names"].get(raw) or [words(raw)]


def phrase(description: str) -> str:
    """A gloss to put after 'the': 'The amount of money to transfer.' -> 'amount of money to transfer'."""
    text = ARTICLE.sub("", description.strip().rstrip("."))
    head = text.split(" ", 1)[0]
    return text if head.isupper() and len(head) > 1 else text[:1].lower() + text[1:]


def label_prompt(rng: random.Random, tpl: Sequence[str], label: str, **kw) -> str:
    """A template filled with the label, the label with an article and any other field."""
    return fill(rng, tpl, label=label, a_label=with_article(label), **kw)


def choice_group(task: str, context: str, key: str, prompts: Sequence[Tuple[str, str]]) -> List[dict]:
    """[CLS] records of one text, [(prompt, cls)] with one positive; one group per (text, key):
    the key tells apart the groups of one text, and of two rows with the same text."""
    group = group_id(task, f"{context}\n{key}")
    return [{**record(task, prompt, context, cls), "group": group} for prompt, cls in prompts]


def checked_span(context: str, start: int, end: int, mention: str) -> List[int]:
    """[start, end], after checking that it slices out `mention` (ValueError otherwise)."""
    if context[start:end] != mention or not mention.strip():
        raise ValueError(f"span {start}:{end} of {context!r} is {context[start:end]!r}, not {mention!r}")
    return [start, end]


def capped(task: str, units: List[List[dict]], rng: random.Random) -> Iterator[dict]:
    """The records of whole units (a group, a passage's records: one context) up to the
    settings' cap; when there are more, the units kept are drawn with rng. Units whose context
    is an EVAL text (seen inside convert.run) are left out first, so they take no room."""
    cap = settings()["cap"]
    kept = [u for u in units if not is_eval_text(u[0]["context"])]
    if len(kept) < len(units):
        STATS[f"{task}: repeats an EVAL text"] += sum(map(len, units)) - sum(map(len, kept))
    units = kept
    if sum(map(len, units)) > cap:
        rng.shuffle(units)
    total = 0
    for unit in units:
        if total + len(unit) > cap:
            STATS[f"{task}: over the cap of {cap} records"] += len(unit)
            continue
        total += len(unit)
        yield from unit


def draw(rng: random.Random, pool: Sequence[str], wrong: Callable[[str], bool]) -> Optional[str]:
    """A label from `pool` that `wrong` accepts, or None after TRIES draws."""
    for _ in range(TRIES):
        label = rng.choice(pool)
        if wrong(label):
            return label
    return None


def clip(text: str) -> str:
    """Line breaks normalized, runs of spaces and blank lines collapsed, cut at a space before
    the settings' max_context_chars."""
    text = re.sub(r"[ \t\u00a0]+", " ", text.replace("\r\n", "\n").replace("\r", "\n"))
    text = re.sub(r" ?\n[\n ]*", "\n", text).strip()
    limit = settings()["max_context_chars"]
    if len(text) <= limit:
        return text
    cut = max(text.rfind(" ", 0, limit), text.rfind("\n", 0, limit))
    return text[:cut if cut > 0 else limit].rstrip()


# ---------------------------------------------------------------- Broad Twitter Corpus
def without_symbols(passages: Iterable[Tuple[str, dict]]) -> Iterator[Tuple[str, dict]]:
    """Passages without the entities that are only symbols: BTC tags the '@' of '@ BethAnne17'
    B-PER and the name B-PER again; the name alone is the person."""
    for text, spans in passages:
        kept = {t: [sp for sp in lst if any(c.isalnum() for c in text[sp[0]:sp[1]])] for t, lst in spans.items()}
        STATS["btc: symbol-only entity dropped"] += sum(map(len, spans.values())) - sum(map(len, kept.values()))
        yield text, {t: lst for t, lst in kept.items() if lst}


@converters.register("btc")
def convert_btc(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """NER as the newer NER sets (ner.type_examples): present types + as many absent ones.
    train + dev (test is EVAL)."""
    conf = settings()["btc"]
    types = {"_raw_rate": 0.0, "_empty_passage_rate": conf["_empty_passage_rate"], "btc": conf["types"]}
    sents = (s for split in ("train", "dev") for path in train_files(raw_dir, "broad_twitter_corpus", split)
             for s in bio_sentences(path))
    records = type_examples("btc", without_symbols(passages("btc", sents)), templates, rng, types)
    yield from capped("btc", [[r] for r in records], rng)


# ---------------------------------------------------------------- UFET
class Mention(NamedTuple):
    id: str  # annot_id
    text: str
    start: int
    end: int
    mention: str
    gold: Tuple[str, ...]  # its types, sorted


def ufet_mentions(raw_dir: Path) -> List[Mention]:
    """Mentions of train + dev (test is EVAL) in their sentences."""
    out = []
    for split in ("train", "dev"):
        for row in read_train(raw_dir, "ufet_crowd", split):
            text, start, end = mention_sentence(row)
            checked_span(text, start, end, row["mention_span"])
            gold = tuple(sorted(set(row["y_str"])))
            out.append(Mention(row["annot_id"], text, start, end, row["mention_span"], gold))
    return out


def ufet_definitions(raw_dir: Path) -> Dict[str, str]:
    """{type: gloss} of the glosses fit to be prompts: no placeholder, long enough, and for a
    compound type not its first word's gloss run into the next one ('academic_discipline' ->
    'an educator who works at a college ... a branch of knowledge', as the file has them)."""
    conf = settings()["ufet"]
    raw = dict(line.split(" <sep> ", 1) for line in read_train(raw_dir, "ufet_crowd", "definitions")
               if " <sep> " in line)
    out = {}
    for name, gloss in raw.items():
        gloss, first = gloss.strip(), name.split("_")[0]
        if gloss in conf["definition_placeholders"] or len(gloss.split()) < conf["definition_min_words"]:
            continue
        if "_" in name and first in raw and gloss.startswith(raw[first].strip() + " "):
            continue
        out[name] = gloss
    return out


class UfetNegatives:
    """Wrong types for a mention: types never given together with one of the mention's
    general types (person, location ...) in train + dev, drawn from the whole vocabulary
    (types never seen) or from the types given to other mentions (by frequency)."""

    def __init__(self, mentions: Sequence[Mention], vocabulary: Sequence[str], conf: dict):
        self.general = set(conf["general_types"])
        self.with_general: Dict[str, set] = defaultdict(set)
        for m in mentions:
            for g in self.general.intersection(m.gold):
                self.with_general[g].update(m.gold)
        self.used = [t for m in mentions for t in m.gold]
        self.vocabulary = list(vocabulary)
        self.vocabulary_rate = conf["vocabulary_negative_rate"]

    def draw(self, gold: Sequence[str], rng: random.Random) -> Optional[str]:
        """A wrong type for a mention with these gold types, or None."""
        general = self.general.intersection(gold)
        pool = self.vocabulary if rng.random() < self.vocabulary_rate else self.used
        return draw(rng, pool, lambda t: t not in gold and not any(t in self.with_general[g] for g in general))


def ufet_prompt(kind: str, raw: str, m: Mention, defs: Dict[str, str], rng: random.Random, conf: dict) -> str:
    """An "extract" or "classify" prompt for a type, with its gloss at the definition_rate."""
    gloss = defs.get(raw)
    tpl = conf[f"{kind}_definition"] if gloss and rng.random() < conf["definition_rate"] else conf[kind]
    return label_prompt(rng, tpl, rng.choice(names(raw)), definition=gloss, mention=m.mention)


def ufet_units(m: Mention, negatives: UfetNegatives, defs: Dict[str, str], rng: random.Random,
               conf: dict) -> Iterator[List[dict]]:
    """Up to positives_per_mention gold types, each with one wrong type (half absent): an
    extraction pair (the mention's span / none) at extract_rate for a type that is not a general
    one (other people in the sentence are not marked), else a [CLS] pair about the mention."""
    for gold in rng.sample(m.gold, min(conf["positives_per_mention"], len(m.gold))):
        wrong = negatives.draw(m.gold, rng)
        if wrong is None:
            STATS["ufet: no wrong type found"] += 1
            continue
        if gold not in negatives.general and rng.random() < conf["extract_rate"]:
            yield [record("ufet", ufet_prompt("extract", t, m, defs, rng, conf), m.text, spans=spans)
                   for t, spans in ((gold, [[m.start, m.end]]), (wrong, []))]
        else:
            prompts = [(ufet_prompt("classify", t, m, defs, rng, conf), cls) for t, cls in ((gold, POS), (wrong, NEG))]
            yield choice_group("ufet", m.text, f"{m.id}:{gold}", prompts)


@converters.register("ufet")
def convert_ufet(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """Mentions of train + dev; the 10,331-type vocabulary for wrong types, its glosses as prompts."""
    conf = settings()["ufet"]
    mentions = ufet_mentions(raw_dir)
    vocabulary = [t.strip() for t in read_train(raw_dir, "ufet_crowd", "types") if t.strip()]
    negatives, defs = UfetNegatives(mentions, vocabulary, conf), ufet_definitions(raw_dir)
    yield from capped("ufet", [u for m in mentions for u in ufet_units(m, negatives, defs, rng, conf)], rng)


# ---------------------------------------------------------------- SMART answer types
class Hierarchy:
    """DBpedia's classes (dbpedia_types.tsv: Type, Depth, Parent); the literal types are
    siblings of each other."""

    def __init__(self, rows: Sequence[Sequence[str]], literals: Sequence[str]):
        self.parent = {r[0]: r[2] for r in rows[1:] if len(r) >= 3}
        self.parent.update({t: "literal" for t in literals})
        self.children: Dict[str, set] = defaultdict(set)
        for child, parent in self.parent.items():
            self.children[parent].add(child)
        self.types = sorted(self.parent)

    def ancestors(self, t: str) -> List[str]:
        """The declared classes above t (not the root owl:Thing, of which all are descendants)."""
        out: List[str] = []
        while self.parent.get(t) in self.parent and self.parent[t] not in out:
            t = self.parent[t]
            out.append(t)
        return out

    def descendants(self, t: str) -> set:
        """Every class below t."""
        out, todo = set(), [t]
        while todo:
            for child in self.children.get(todo.pop(), ()):
                if child not in out:
                    out.add(child)
                    todo.append(child)
        return out

    def wrong(self, gold: Sequence[str], rng: random.Random, sibling_rate: float) -> Optional[str]:
        """A class outside the gold classes' lineage (their ancestors, and the descendants of
        the most specific ones: a Person question may want an Artist, an Artist question no
        Athlete): a sibling of one at sibling_rate, where there is one, else any class."""
        below = [self.descendants(t) for t in gold]
        leaves = [t for t, sub in zip(gold, below) if not sub.intersection(gold)]
        lineage = set(gold).union(*(self.ancestors(t) for t in gold), *(self.descendants(t) for t in leaves))
        siblings = sorted({s for t in gold for s in self.children.get(self.parent.get(t), ())} - lineage)
        if siblings and rng.random() < sibling_rate:
            return rng.choice(siblings)
        return draw(rng, self.types, lambda t: t not in lineage)


def merged(rows: Iterable[Tuple[str, List[str]]]) -> Dict[str, List[str]]:
    """{question: gold labels}: a question asked twice has the labels of both rows (so that
    neither gives the other's a negative), in order."""
    gold: Dict[str, List[str]] = {}
    for question, labels in rows:
        gold[question] = list(dict.fromkeys(gold.get(question, []) + labels))
    return gold


def dbpedia_questions(raw_dir: Path, hierarchy: Hierarchy, literals: Sequence[str]) -> Iterator[Tuple[str, List[str]]]:
    """(question, gold classes most specific first) of DBpedia train and QALD-9 train (its one
    class + that class's ancestors; its literal rows name the literal type as category)."""
    for r in read_train(raw_dir, "smart_answer_types", "dbpedia_train"):
        if not (r.get("question") or "").strip() or not r.get("type"):
            STATS["smart_types: DBpedia question or type missing"] += 1
            continue
        yield r["question"].strip(), r["type"]
    for row in read_train(raw_dir, "smart_answer_types", "qald9_train"):
        if len(row) >= 3 and row[2].strip().startswith("dbo:"):
            yield row[0].strip(), [row[2].strip()] + hierarchy.ancestors(row[2].strip())
        elif len(row) == 2 and row[1].strip() in literals:
            yield row[0].strip(), [row[1].strip()]
        else:
            STATS["smart_types: QALD-9 row without a type"] += 1


def wikidata_questions(raw_dir: Path, blocklist: Sequence[str]) -> Iterator[Tuple[str, List[str]]]:
    """(question without {braces}, class labels) of the early Wikidata train file, without
    its junk labels (numbers, raw QIDs, the blocklist)."""
    for r in read_train(raw_dir, "smart_answer_types", "wikidata_train"):
        labels = [x.split("; ", 1)[-1].strip() for x in ast.literal_eval(r["ans_typ_label"])]
        labels = [x for x in dict.fromkeys(labels) if x and not re.fullmatch(r"Q?\d+", x) and x not in blocklist]
        question = " ".join(r["question"].replace("{", "").replace("}", "").split()).strip('"').strip()
        if labels and question:
            yield question, labels
        else:
            STATS["smart_types: Wikidata question without a usable label"] += 1


def answer_type_group(question: str, gold: Sequence[str], wrong: Optional[str], label_names: Callable,
                      rng: random.Random, conf: dict) -> List[dict]:
    """One gold class (the most specific at specific_rate) and one wrong class, one group."""
    if wrong is None:
        STATS["smart_types: no wrong type found"] += 1
        return []
    right = gold[0] if rng.random() < conf["specific_rate"] else rng.choice(gold)
    prompts = [(label_prompt(rng, conf["prompts"], rng.choice(label_names(t))), cls)
               for t, cls in ((right, POS), (wrong, NEG))]
    return choice_group("smart_types", question, right, prompts)


@converters.register("smart_types")
def convert_smart_types(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """DBpedia (+ QALD-9) questions with DBpedia classes, then Wikidata questions with Wikidata labels."""
    conf = settings()["smart"]
    hierarchy = Hierarchy(read_train(raw_dir, "smart_answer_types", "dbpedia_types"), conf["literal_types"])
    dbpedia = merged(dbpedia_questions(raw_dir, hierarchy, conf["literal_types"]))
    units = [answer_type_group(q, gold, hierarchy.wrong(gold, rng, conf["sibling_rate"]), names, rng, conf)
             for q, gold in dbpedia.items()]
    # a question of both: DBpedia's classes only (the Wikidata labels would contradict them: location, state)
    wikidata = {q: gold for q, gold in merged(wikidata_questions(raw_dir, conf["wikidata_blocklist"])).items()
                if q not in dbpedia}
    pool = sorted({label for gold in wikidata.values() for label in gold})
    units += [answer_type_group(q, gold, draw(rng, pool, lambda x: x not in gold), lambda x: [x], rng, conf)
              for q, gold in wikidata.items()]
    yield from capped("smart_types", [u for u in units if u], rng)


# ---------------------------------------------------------------- tags: Stack Exchange, keyphrases
def tag_pairs(task: str, row_id: str, context: str, gold: Sequence[str], wrong: Callable[[], Optional[str]],
              n: int, tpl: Sequence[str], rng: random.Random) -> Iterator[List[dict]]:
    """Up to n gold tags, each with one wrong tag from `wrong()`, one group each."""
    for tag in rng.sample(list(gold), min(n, len(gold))):
        other = wrong()
        if other is None:
            STATS[f"{task}: no wrong tag found"] += 1
            continue
        prompts = [(label_prompt(rng, tpl, rng.choice(names(t))), cls) for t, cls in ((tag, POS), (other, NEG))]
        yield choice_group(task, context, f"{row_id}:{tag}", prompts)


def wrong_tag(rng: random.Random, used: Sequence[str], vocabulary: Sequence[str], frequent_rate: float,
              gold: Sequence[str]) -> Optional[str]:
    """A tag of the site that is not gold: drawn by frequency at frequent_rate, else from all its tags."""
    return draw(rng, used if rng.random() < frequent_rate else vocabulary, lambda t: t not in gold)


@converters.register("stackexchange_tags")
def convert_stackexchange_tags(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """Title and body -> user tags; wrong tags from the same site (frequent or any)."""
    conf = settings()["stackexchange"]
    units: List[List[dict]] = []
    for site in ("cooking", "robotics", "travel"):
        rows = [(clip(f"{r['title'].strip()}\n{r['content']}"), [t.strip() for t in r["tags"].split(",") if t.strip()])
                for r in read_train(raw_dir, "stackexchange_tags", site)]  # tags: "a-b, c"
        used = [t for _, tags in rows for t in tags]
        vocabulary = sorted(set(used))
        for i, (text, tags) in enumerate(rows):
            wrong = partial(wrong_tag, rng, used, vocabulary, conf["frequent_negative_rate"], tags)
            units += tag_pairs("stackexchange_tags", f"{site}:{i}", text, tags, wrong,
                               conf["positives_per_question"], conf["prompts"], rng)
    yield from capped("stackexchange_tags", units, rng)


def phrase_spans(text: str, phrases: Iterable[str]) -> List[List[int]]:
    """Whole-word occurrences of the phrases in `text`, any case (ner.locate_all on lowercased
    copies, where lowercasing keeps the length)."""
    same = len(text.lower()) == len(text)
    return locate_all(text.lower(), [p.lower() for p in phrases]) if same else locate_all(text, phrases)


def keyphrase_units(doc: dict, others: Sequence[str], rng: random.Random, conf: dict) -> Iterator[List[dict]]:
    """An extraction record of the key phrases found in the (clipped) text, and tag pairs:
    gold = phrases found there or not in the text at all (not those only inside longer words,
    SemEval's cut keys); wrong = phrases of other documents of the set absent from the text."""
    text, keys = clip(doc["text"]), [k for k in doc["keyphrases"] if k.strip()]
    spans = phrase_spans(text, keys)
    if spans:
        yield [record("keyphrases", rng.choice(conf["extract"]), text, spans=spans)]
    lower, full = text.lower(), doc["text"].lower()
    gold = [k for k in keys if k.lower() not in full or phrase_spans(text, [k])]
    taken = {k.lower() for k in keys}
    yield from tag_pairs("keyphrases", f"{doc['dataset']}:{doc['doc_id']}", text, gold,
                         lambda: draw(rng, others, lambda k: k.lower() not in taken and k.lower() not in lower),
                         conf["tag_pairs_per_document"], conf["tag"], rng)


@converters.register("keyphrases")
def convert_keyphrases(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """The five keyphrase sets; wrong tags from the keyphrases of the same set."""
    conf = settings()["keyphrases"]
    units: List[List[dict]] = []
    for split in ("inspec", "semeval2017", "kpcrowd500n", "kdd", "www"):
        docs = read_train(raw_dir, "keyphrase_liaad", split)
        others = sorted({k.strip() for d in docs for k in d["keyphrases"] if k.strip()})
        units += [u for d in docs for u in keyphrase_units(d, others, rng, conf)]
    yield from capped("keyphrases", units, rng)
