"""Round-3 label sets (issue 24, item 2) as label prompts, so that the model meets many label
names: emotions (GoEmotions, SemEval-2018 E-c), offence (OLID, Davidson), politeness,
clickbait, spam, irony, crisis information types, dialogue acts and emotions (SwDA,
DailyDialog) and ATIS intents.

Each text gets every gold label as a positive and sampled absent labels as negatives: first a
near label of its set ('annoyance' for an 'anger' text, templates/near_labels.json), then
others of the set, and at times a label of another set that the gold label rules out (a clean
text is no 'hate speech'). A label reads as people type it or as a short description
(templates/label_sets.json). A single-label text is one group (gold + negatives, as
records.label_prompts); a multi-label text is one group per gold label, each with its share
of the negatives, so that every group holds exactly one positive (train.assign_groups).

Texts are taken label by label in turn (rare labels first come through whole) up to
MAX_RECORDS per set. TRAINING splits only, through the corpus registry; convert.run's leakage
guard drops texts of the EVAL splits (GoEmotions, OLID, irony, SwDA, DailyDialog, ATIS tests).
"""
import html
import statistics
from collections import defaultdict
from functools import lru_cache
from typing import Dict, Iterator, List, Sequence, Set, Tuple

from ...corpus.readers import read_json, read_lines
from ...corpus.registry import read_train, train_files
from ...templates import TEMPLATES_DIR
from ..records import NEG, POS, STATS, converters, detok, fill, group_id, record

LABEL_SETS_PATH = TEMPLATES_DIR / "label_sets.json"
NEAR_LABELS_PATH = TEMPLATES_DIR / "near_labels.json"
MAX_RECORDS = 20_000  # per set: the largest (GoEmotions, SwDA) would give 100k+
N_NEG = 3  # negatives of a single-label text (fewer when its set has fewer other labels)
CRISIS_MIN_CONFIDENCE = 0.5  # CrisisNLP's crowd majorities below this are too unsure to train on

Row = Tuple[str, Tuple[str, ...]]  # text, its gold labels (raw, as label_sets.json keys them)
Ref = Tuple[str, str]  # (task, raw label)


@lru_cache(maxsize=1)
def label_sets() -> dict:
    """templates/label_sets.json: templates, description_rate and per task its labels."""
    return read_json(LABEL_SETS_PATH)


@lru_cache(maxsize=1)
def near_labels() -> dict:
    """templates/near_labels.json: near groups per task, cross-set contrasts, cross_rate."""
    return read_json(NEAR_LABELS_PATH)


def parse_ref(ref: str) -> Ref:
    """'olid/OFF' -> ('olid', 'OFF') (the label part may hold '/', as CrisisNLP's do)."""
    task, label = ref.split("/", 1)
    return task, label


@lru_cache(maxsize=None)
def near_map(task: str) -> Dict[str, Set[str]]:
    """{label: the other members of its near groups} of one task."""
    out: Dict[str, Set[str]] = defaultdict(set)
    for group in near_labels()["near"].get(task, []):
        for label in group:
            out[label] |= set(group) - {label}
    return dict(out)


# ---------------------------------------------------------------- prompts and records
def label_prompt(task: str, label: str, templates: dict, rng) -> str:
    """A prompt for one label: a name through its set's template family, or a description."""
    data = label_sets()
    entry = data["sets"][task]["labels"][label]
    if rng.random() < data["description_rate"]:
        return fill(rng, data["templates"]["description"], label=rng.choice(entry["descriptions"]))
    family = data["sets"][task]["template"]
    return fill(rng, data["templates"].get(family) or templates[family], label=rng.choice(entry["names"]))


def negatives(task: str, golds: Sequence[str], rng) -> List[Ref]:
    """Absent labels of the set (one near label first, if any; N_NEG + one per extra gold
    label in all) and, at cross_rate, one label of another set a gold label rules out."""
    others = [l for l in label_sets()["sets"][task]["labels"] if l not in golds]
    near = sorted({n for g in golds for n in near_map(task).get(g, ())} & set(others))
    count = min(len(others), N_NEG + len(golds) - 1)
    picked = [rng.choice(near)] if near and count else []
    picked += rng.sample([l for l in others if l not in picked], count - len(picked))
    out = [(task, l) for l in picked]
    contrasts = sorted({c for g in golds for c in near_labels()["contrasts"].get(f"{task}/{g}", ())})
    if contrasts and rng.random() < near_labels()["cross_rate"]:
        out.append(parse_ref(rng.choice(contrasts)))
    return out


def text_records(task: str, text: str, golds: Sequence[str], templates: dict, rng) -> Iterator[dict]:
    """One group per gold label (the text's only group when it has one gold label), the
    negatives dealt out over the groups in turn."""
    groups: List[List[Ref]] = [[(task, g)] for g in golds]
    for i, neg in enumerate(negatives(task, golds, rng)):
        groups[i % len(groups)].append(neg)
    for gold, members in zip(golds, groups):
        group = group_id(task, text if len(golds) == 1 else f"{text}\n{gold}")
        for i, (t, label) in enumerate(members):
            cls = POS if i == 0 else NEG
            yield {**record(task, label_prompt(t, label, templates, rng), text, cls), "group": group}


def balanced(rows: Sequence[Row], rng) -> Iterator[Row]:
    """Rows label by label in turn (each label's rows shuffled, a row once): the first n
    rows cover rare labels as well as frequent ones."""
    pools: Dict[str, List[int]] = defaultdict(list)
    for i, (_, golds) in enumerate(rows):
        for g in golds:
            pools[g].append(i)
    queues = []
    for label in sorted(pools):
        rng.shuffle(pools[label])
        queues.append(iter(pools[label]))
    seen: Set[int] = set()
    while queues:
        alive = []
        for queue in queues:
            i = next((i for i in queue if i not in seen), None)
            if i is not None:
                seen.add(i)
                alive.append(queue)
                yield rows[i]
        queues = alive


def clean_rows(task: str, rows: Sequence[Row]) -> List[Row]:
    """Rows with implied labels added; blank and repeated texts and rows of a dropped label
    left out (counted). An unknown label raises KeyError: label_sets.json must name it."""
    spec = label_sets()["sets"][task]
    drop, out, seen = set(spec.get("drop", ())), [], set()
    for text, golds in rows:
        text = text.strip()
        if drop & set(golds):
            STATS[f"{task}: dropped label"] += 1
            continue
        if not text or text in seen:
            STATS[f"{task}: blank or repeated text"] += 1
            continue
        seen.add(text)
        implied = [i for g in golds for i in spec["labels"][g].get("implies", ())]
        out.append((text, tuple(dict.fromkeys([*golds, *implied]))))
    return out


def labelset_records(task: str, rows: Sequence[Row], templates: dict, rng) -> Iterator[dict]:
    """The records of a set's rows, balanced over labels, at most MAX_RECORDS."""
    rows = clean_rows(task, rows)
    count = 0
    for used, (text, golds) in enumerate(balanced(rows, rng)):
        records = list(text_records(task, text, golds, templates, rng))
        count += len(records)
        if count > MAX_RECORDS:
            STATS[f"{task}: texts over the cap"] += len(rows) - used
            return
        yield from records


# ---------------------------------------------------------------- emotions
def goemotions_rows(raw_dir) -> List[Row]:
    """train.tsv: text, comma-separated indices into labels.txt, comment id (dev, test: not read)."""
    names = [l.strip() for l in read_train(raw_dir, "goemotions", "labels") if l.strip()]
    return [(r[0], tuple(names[int(i)] for i in r[1].split(","))) for r in read_train(raw_dir, "goemotions", "train")]


def semeval_rows(raw_dir) -> List[Row]:
    """Train TSV: ID, tweet, one 0/1 column per emotion; no emotion at all -> 'neutral'."""
    head, *rows = read_train(raw_dir, "semeval2018_ec", "train")
    emotions = [h.strip() for h in head[2:]]
    return [(r[1], tuple(e for e, v in zip(emotions, r[2:]) if v.strip() == "1") or ("neutral",)) for r in rows]


@converters.register("goemotions")
def convert_goemotions(raw_dir, templates, rng):
    yield from labelset_records("goemotions", goemotions_rows(raw_dir), templates, rng)


@converters.register("semeval_ec")
def convert_semeval_ec(raw_dir, templates, rng):
    yield from labelset_records("semeval_ec", semeval_rows(raw_dir), templates, rng)


# ---------------------------------------------------------------- offence, politeness, spam, clickbait, irony
def olid_rows(raw_dir) -> List[Row]:
    """Training TSV: id, tweet, levels A / B / C (NULL below a level that does not apply);
    the path of levels is the gold set (OFF, TIN, IND), every label off the path is absent."""
    _, *rows = read_train(raw_dir, "olid", "train")
    return [(r[1], tuple(x for x in r[2:5] if x != "NULL")) for r in rows]


def davidson_rows(raw_dir) -> List[Row]:
    """`class`: 0 hate speech, 1 offensive, 2 neither; HTML entities unescaped."""
    return [(html.unescape(r["tweet"]), (r["class"],)) for r in read_train(raw_dir, "davidson_hate_offensive", "all")]


def politeness_rows(raw_dir) -> List[Row]:
    """Top quartile of a community's normalized scores -> polite, bottom -> impolite, the
    middle half dropped (as the paper binarizes)."""
    rows: List[Row] = []
    for community in ("wikipedia", "stack_exchange"):
        data = read_train(raw_dir, "stanford_politeness", community)
        low, _, high = statistics.quantiles([float(r["Normalized Score"]) for r in data], n=4)
        for r in data:
            score = float(r["Normalized Score"])
            if low < score < high:
                STATS["politeness: middle score"] += 1
            else:
                rows.append((r["Request"], ("polite" if score >= high else "impolite",)))
    return rows


def clickbait_rows(raw_dir) -> List[Row]:
    return [(line, (split,)) for split in ("clickbait", "news")
            for line in read_train(raw_dir, "clickbait", split) if line.strip()]


def sms_rows(raw_dir) -> List[Row]:
    """`label<TAB>text` lines after the copy's `Label<TAB>SMS` header."""
    return [("\t".join(r[1:]), (r[0],)) for r in read_train(raw_dir, "sms_spam", "all")[1:]]


def irony_rows(raw_dir) -> List[Row]:
    """TweetEval irony train: line-aligned text and label-id files, ids named in mapping.txt."""
    mapping = dict(l.split("\t") for l in read_train(raw_dir, "tweeteval_irony", "mapping") if l.strip())
    texts, labels = (read_lines(p) for p in train_files(raw_dir, "tweeteval_irony", "train"))
    return [(t, (mapping[l.strip()],)) for t, l in zip(texts, labels)]


@converters.register("olid")
def convert_olid(raw_dir, templates, rng):
    yield from labelset_records("olid", olid_rows(raw_dir), templates, rng)


@converters.register("davidson")
def convert_davidson(raw_dir, templates, rng):
    yield from labelset_records("davidson", davidson_rows(raw_dir), templates, rng)


@converters.register("politeness")
def convert_politeness(raw_dir, templates, rng):
    yield from labelset_records("politeness", politeness_rows(raw_dir), templates, rng)


@converters.register("clickbait")
def convert_clickbait(raw_dir, templates, rng):
    yield from labelset_records("clickbait", clickbait_rows(raw_dir), templates, rng)


@converters.register("sms_spam")
def convert_sms_spam(raw_dir, templates, rng):
    yield from labelset_records("sms_spam", sms_rows(raw_dir), templates, rng)


@converters.register("irony")
def convert_irony(raw_dir, templates, rng):
    yield from labelset_records("irony", irony_rows(raw_dir), templates, rng)


# ---------------------------------------------------------------- crisis information types
def crisis_rows(raw_dir) -> List[Row]:
    """Aggregated CrowdFlower judgments: `tweet` and its majority `type_of_message`, kept
    from CRISIS_MIN_CONFIDENCE; HTML entities unescaped (the mojibake stays)."""
    rows: List[Row] = []
    for r in read_train(raw_dir, "crisisnlp_sandy", "all"):
        if float(r["type_of_message:confidence"] or 0) < CRISIS_MIN_CONFIDENCE:
            STATS["crisis_sandy: low confidence"] += 1
        else:
            rows.append((html.unescape(r["tweet"]), (r["type_of_message"],)))
    return rows


@converters.register("crisis_sandy")
def convert_crisis_sandy(raw_dir, templates, rng):
    yield from labelset_records("crisis_sandy", crisis_rows(raw_dir), templates, rng)


# ---------------------------------------------------------------- dialogue acts and emotions
def with_previous(turns: Sequence[str]) -> List[str]:
    """Each turn below the one before it (the first alone): acts such as 'yes answer' or
    'agreement' depend on what was said before."""
    return [f"{turns[i - 1]}\n{turn}" if i else turn for i, turn in enumerate(turns)]


def swda_rows(raw_dir) -> List[Row]:
    """`dialogue|speaker|utterance|tag` lines of the 450-dialogue training subset (val, test: not
    read); the double spaces left where disfluency marks were removed are collapsed."""
    dialogues: Dict[str, List[Tuple[str, str]]] = defaultdict(list)
    for line in read_train(raw_dir, "swda", "train"):
        parts = line.split("|")
        if len(parts) == 4:
            dialogues[parts[0]].append((" ".join(parts[2].split()), parts[3].strip()))
    rows: List[Row] = []
    for turns in dialogues.values():
        contexts = with_previous([utterance for utterance, _ in turns])
        rows += [(context, (tag,)) for context, (_, tag) in zip(contexts, turns)]
    return rows


def dailydialog_rows(raw_dir, column: int) -> List[Row]:
    """Validation dialogues (test: EVAL) with one code per turn from the act (column 1) or
    emotion (column 2) file; turns detokenized ('sir .' -> 'sir.')."""
    files = [read_lines(p) for p in train_files(raw_dir, "dailydialog", "validation")]
    rows: List[Row] = []
    for dialogue, codes in zip(files[0], files[column]):
        turns = [detok(t) for t in dialogue.split("__eou__") if t.strip()]
        if len(turns) != len(codes.split()):
            STATS["dailydialog: turns and codes differ"] += 1
            continue
        rows += [(context, (code,)) for context, code in zip(with_previous(turns), codes.split())]
    return rows


@converters.register("swda")
def convert_swda(raw_dir, templates, rng):
    yield from labelset_records("swda", swda_rows(raw_dir), templates, rng)


@converters.register("dailydialog_act")
def convert_dailydialog_act(raw_dir, templates, rng):
    yield from labelset_records("dailydialog_act", dailydialog_rows(raw_dir, 1), templates, rng)


@converters.register("dailydialog_emotion")
def convert_dailydialog_emotion(raw_dir, templates, rng):
    yield from labelset_records("dailydialog_emotion", dailydialog_rows(raw_dir, 2), templates, rng)


# ---------------------------------------------------------------- intents
def atis_rows(raw_dir) -> List[Row]:
    """Train `seq.in` utterances with their `label` intents ('atis_flight#atis_airfare': both)."""
    seq_in, _, labels = train_files(raw_dir, "atis", "train")
    return [(text, tuple(label.strip().split("#"))) for text, label in zip(read_lines(seq_in), read_lines(labels))]


@converters.register("atis_intent")
def convert_atis_intent(raw_dir, templates, rng):
    yield from labelset_records("atis_intent", atis_rows(raw_dir), templates, rng)
