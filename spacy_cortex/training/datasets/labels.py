"""Label converters: sentiment (SST-2, Rotten Tomatoes, tweets, Financial PhraseBank),
emotion, question types (TREC), intents (BANKING77, CLINC150, HWU64, SNIPS) and topics
(DBpedia, Reuters R8). A text gets its gold label as a positive example and sampled wrong
labels as negatives, one group. TRAINING splits only, through the corpus registry."""
import re
from functools import lru_cache
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from ...corpus.readers import read_json, read_lines
from ...corpus.registry import read_train, train_files
from ...templates import TEMPLATES_DIR
from ..records import NEG, POS, STATS, converters, fill, label_prompts, record

TASK_LABELS_PATH = TEMPLATES_DIR / "task_labels.json"
OOS_NEGATIVES = 3  # an out-of-scope CLINC text gets as many (all negative) intents as an in-scope one


def norm(text: str) -> str:
    """Loose key for duplicate detection across differently tokenized copies."""
    text = re.sub(r"-[lr][rsc]b-", "", text.lower())  # SST writes brackets as -lrb- / -rrb-
    return re.sub(r"[^a-z0-9]", "", text)


# ---------------------------------------------------------------- sentiment
def sentiment_examples(task, text, polarity, templates, rng) -> Iterator[dict]:
    """Polarity question (cls = polarity) + one label-style variant ("Is this text {label}?")."""
    yield record(task, rng.choice(templates["sentiment"]), text, polarity)
    names = templates["sentiment_labels"]
    label = polarity if rng.random() < 0.5 else rng.choice([l for l in names if l != polarity])
    prompt = fill(rng, templates["sentiment_label"], label=rng.choice(names[label]))
    yield record(task, prompt, text, POS if label == polarity else NEG)


def sst2_rows(raw_dir: Path, split: str) -> Iterator[tuple]:
    for line in read_train(raw_dir, "sst2", split):
        if line.strip():
            label, text = line.split(" ", 1)
            yield text.strip(), POS if label == "1" else NEG


@converters.register("sst2")
def convert_sst2(raw_dir, templates, rng):
    for text, pol in sst2_rows(raw_dir, "train"):
        yield from sentiment_examples("sst2", text, pol, templates, rng)


@converters.register("rotten_tomatoes")
def convert_rotten_tomatoes(raw_dir, templates, rng):
    # SST was built from the same reviews: drop MR sentences that appear in SST-2 dev/test.
    # (Reading SST-2 dev/test text only to EXCLUDE it is the point of this filter.)
    held_out = {norm(t) for split in ("dev", "test") for t, _ in sst2_rows(raw_dir, split)}
    long_held_out = [h for h in held_out if len(h) >= 15]
    for split, pol in (("pos", POS), ("neg", NEG)):
        for text in read_train(raw_dir, "rotten_tomatoes_mr", split):
            if not text.strip():
                continue
            key = norm(text)
            # SST split some MR snippets into sentences, so also drop MR lines CONTAINING a held-out sentence
            if key in held_out or any(h in key for h in long_held_out):
                STATS["rotten_tomatoes: overlaps sst2 dev/test"] += 1
                continue
            yield from sentiment_examples("rotten_tomatoes", text.strip(), pol, templates, rng)


@converters.register("tweet_sentiment")
def convert_tweet_sentiment(raw_dir, templates, rng):
    for r in read_train(raw_dir, "tweet_sentiment_extraction", "train"):
        if r["text"].strip():
            yield from sentiment_examples("tweet_sentiment", r["text"].strip(), r["sentiment"], templates, rng)


def phrasebank_lines(raw_dir: Path) -> List[str]:
    """The 66%-agreement sentences (`text@label` lines, Latin-1)."""
    return read_train(raw_dir, "financial_phrasebank", "agree66", encoding="latin-1")


@converters.register("financial_phrasebank")
def convert_financial_phrasebank(raw_dir, templates, rng):
    for line in phrasebank_lines(raw_dir):
        if "@" in line:
            text, label = line.rsplit("@", 1)
            yield from sentiment_examples("financial_phrasebank", text.strip(), label.strip(), templates, rng)


# ---------------------------------------------------------------- emotion
def emotion_rows(raw_dir: Path) -> List[tuple]:
    lines = read_train(raw_dir, "emotion", "train")[1:]  # skip header
    return [tuple(s.strip() for s in l.rsplit(";", 1)) for l in lines if ";" in l]


@converters.register("emotion")
def convert_emotion(raw_dir, templates, rng):
    rows = emotion_rows(raw_dir)
    labels = sorted({l for _, l in rows})
    for text, label in rows:
        yield from label_prompts("emotion", text, label, labels, templates["emotion_labels"], templates["emotion"], rng)


def tweeteval_emotion_rows(raw_dir: Path) -> Iterator[Tuple[str, str]]:
    """(text line, label id line) of the train split, as written."""
    return zip(*(read_lines(path) for path in train_files(raw_dir, "tweeteval_emotion", "train")))


@converters.register("tweeteval_emotion")
def convert_tweeteval_emotion(raw_dir, templates, rng):
    lines = read_train(raw_dir, "tweeteval_emotion", "mapping")
    mapping = dict(l.split("\t") for l in lines if l.strip())
    labels = sorted(mapping.values())
    for text, lid in tweeteval_emotion_rows(raw_dir):
        yield from label_prompts("tweeteval_emotion", text.strip(), mapping[lid.strip()], labels,
                                 templates["emotion_labels"], templates["emotion"], rng)


# ---------------------------------------------------------------- question types, intents, topics
def trec_rows(raw_dir: Path) -> List[tuple]:
    rows = []
    for line in read_train(raw_dir, "trec", "train"):
        if line.strip():
            label, text = line.split(" ", 1)
            rows.append((text.strip(), label.split(":")[0]))
    return rows


def banking_rows(raw_dir: Path) -> List[tuple]:
    return [(r["text"].strip(), r["category"].replace("_", " ")) for r in read_train(raw_dir, "banking77", "train")]


@converters.register("trec")
def convert_trec(raw_dir, templates, rng):
    names = templates["trec_labels"]
    for text, label in trec_rows(raw_dir):
        yield from label_prompts("trec", text, label, list(names), names, templates["question_type"], rng)


@converters.register("banking77")
def convert_banking77(raw_dir, templates, rng):
    rows = banking_rows(raw_dir)
    labels = sorted({l for _, l in rows})
    names = {l: [l] for l in labels}
    for text, label in rows:
        yield from label_prompts("banking77", text, label, labels, names, templates["intent"], rng)


@converters.register("dbpedia")
def convert_dbpedia(raw_dir, templates, rng):
    classes = [c.strip() for c in read_train(raw_dir, "dbpedia14_subset", "classes") if c.strip()]
    names = templates["dbpedia_labels"]
    for text, idx in read_train(raw_dir, "dbpedia14_subset", "dev")[1:]:  # dev.tsv ONLY; test.tsv is EVAL
        yield from label_prompts("dbpedia", text, classes[int(idx) - 1], classes, names, templates["topic"], rng)


@lru_cache(maxsize=1)
def task_labels() -> Dict[str, Dict[str, List[str]]]:
    """{set: {raw label: [name, paraphrase, ...]}} (templates/task_labels.json)."""
    return read_json(TASK_LABELS_PATH)


def _label_set(task, rows, set_name, tpl, rng, none_label=None) -> Iterator[dict]:
    """label_prompts over (text, raw label) rows; `none_label` rows get OOS_NEGATIVES wrong labels."""
    names = task_labels()[set_name]
    labels = sorted(names)
    for text, label in rows:
        if not text.strip():
            continue
        if label == none_label:
            for wrong in rng.sample(labels, OOS_NEGATIVES):
                yield record(task, fill(rng, tpl, label=rng.choice(names[wrong])), text.strip(), NEG)
        else:
            yield from label_prompts(task, text.strip(), label, labels, names, tpl, rng)


@converters.register("clinc150")
def convert_clinc150(raw_dir: Path, templates: dict, rng) -> Iterator[dict]:
    data = read_train(raw_dir, "clinc150", "all")
    rows = data["train"] + data["oos_train"]  # val / test / oos_val / oos_test are not used
    yield from _label_set("clinc150", rows, "clinc150", templates["intent"], rng, none_label="oos")


def hwu64_rows(raw_dir: Path) -> List[Tuple[str, str]]:
    return [(r["text"], r["category"]) for r in read_train(raw_dir, "hwu64", "train")]


@converters.register("hwu64")
def convert_hwu64(raw_dir, templates, rng):
    yield from _label_set("hwu64", hwu64_rows(raw_dir), "hwu64", templates["intent"], rng)


def snips_utterances(raw_dir: Path) -> List[Tuple[str, str]]:
    """(utterance, intent) from the train_<Intent>_full.json files; the slot annotations are ignored."""
    rows = []
    for path in train_files(raw_dir, "snips_nlu", "train"):
        try:
            data = read_json(path)
        except UnicodeDecodeError:  # train_PlayMusic_full.json is Latin-1 (SOURCE.md)
            data = read_json(path, "latin-1")
        for intent, examples in data.items():
            rows += [("".join(piece["text"] for piece in ex["data"]), intent) for ex in examples]
    return rows


@converters.register("snips_intents")
def convert_snips_intents(raw_dir, templates, rng):
    yield from _label_set("snips_intents", snips_utterances(raw_dir), "snips_nlu", templates["intent"], rng)


@converters.register("reuters_r8")
def convert_reuters_r8(raw_dir, templates, rng):
    rows = [(r[1], r[0]) for r in read_train(raw_dir, "reuters_r8", "train") if len(r) == 2]
    yield from _label_set("reuters_r8", rows, "reuters_r8", templates["topic"], rng)
