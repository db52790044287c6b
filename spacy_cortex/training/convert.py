"""Convert public raw datasets into the unified CORTEX JSONL training format.

Record: {"task", "prompt", "context", "cls": positive|negative|neutral|None, "spans": [[s, e], ...] | None}
spans=None -> classification example (loss on [CLS] only); spans=list -> extraction example.
Records that answer one question together (a multiple-choice question's candidates, a
text's gold and sampled wrong labels) share a "group" number and stay next to each other in
the shuffled file, so that the trainer's listwise term (train.py --rank-weight) sees them.

Only TRAINING splits are read; every file access goes through `_open` so tests can
verify that no evaluation file (see corpus/raw/INDEX.md) is ever touched.

Usage: python -m spacy_cortex.training.convert RAW_DIR OUT_DIR [--tasks a,b] [--seed 0]
"""
import argparse
import csv
import hashlib
import itertools
import json
import random
import re
import string
from collections import Counter, defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Sequence

import catalogue

from ..templates import TEMPLATES_DIR, strip_end

converters = catalogue.create("spacy_cortex", "converters", entry_points=True)
TEMPLATES_PATH = TEMPLATES_DIR / "training_prompts.json"
POS, NEG, NEU = "positive", "negative", "neutral"
NLI_CLS = {"entailment": POS, "contradiction": NEG, "neutral": NEU, "not_entailment": NEG}
STATS: Counter = Counter()  # skipped-example counters, printed by the CLI


# ---------------------------------------------------------------- helpers
def _open(path: Path, encoding: str = "utf-8"):
    return open(path, encoding=encoding, newline="")


def read_lines(path: Path, encoding: str = "utf-8") -> List[str]:
    with _open(path, encoding) as f:
        return f.read().splitlines()


def read_jsonl(path: Path) -> Iterator[dict]:
    return (json.loads(line) for line in read_lines(path) if line.strip())


def read_tsv(path: Path, encoding: str = "utf-8") -> List[List[str]]:
    # plain split: several sets contain unbalanced '"', so no CSV quoting
    return [line.split("\t") for line in read_lines(path, encoding) if line.strip()]


def read_csv(path: Path) -> List[dict]:
    with _open(path) as f:
        return list(csv.DictReader(f))


def load_templates(path: Path = TEMPLATES_PATH) -> dict:
    with _open(path) as f:
        return json.load(f)


def record(task: str, prompt: str, context: str, cls: Optional[str] = None, spans=None) -> dict:
    if spans is not None:
        cls = POS if spans else NEG
    return {"task": task, "prompt": prompt, "context": context, "cls": cls, "spans": spans}


def fill(rng: random.Random, templates: Sequence[str], **kw) -> str:
    return rng.choice(templates).format(**kw)


def locate(context: str, answer: str, start: Optional[int] = None) -> Optional[List[int]]:
    """Char span of `answer` in `context` (trimmed); trusts `start` if it matches, else first occurrence."""
    answer = answer.strip()
    if not answer:
        return None
    if start is not None:
        # answer_start may point at leading whitespace of the raw answer text
        for s in (start, start + 1, start - 1):
            if 0 <= s and context[s:s + len(answer)] == answer:
                return [s, s + len(answer)]
    s = context.find(answer)
    return [s, s + len(answer)] if s >= 0 else None


def detok(text: str) -> str:
    """Undo PTB-style tokenization (SNLI): 'a , b .' -> 'a, b.'"""
    text = re.sub(r" ([.,!?;:%)])", r"\1", text.strip())
    text = re.sub(r" (n't|'s|'re|'ve|'ll|'d|'m)\b", r"\1", text)
    return re.sub(r"([($]) ", r"\1", text)


def norm(text: str) -> str:
    """Loose key for duplicate detection across differently tokenized copies."""
    text = re.sub(r"-[lr][rsc]b-", "", text.lower())  # SST writes brackets as -lrb- / -rrb-
    return re.sub(r"[^a-z0-9]", "", text)


def group_id(task: str, text: str) -> int:
    """A record group's number: 48 bits of a hash of its task and shared text, the same on
    every run (records of one group are also kept adjacent, so a rare collision between two
    groups only matters if the shuffle puts them side by side)."""
    return int.from_bytes(hashlib.blake2b(f"{task}\n{text}".encode(), digest_size=6).digest(), "big")


def label_prompts(task, text, gold, labels, names, tpl, rng, n_neg=2) -> Iterator[dict]:
    """Gold label -> positive example, `n_neg` sampled wrong labels -> negative examples,
    one group."""
    wrong = rng.sample([l for l in labels if l != gold], min(n_neg, len(labels) - 1))
    group = group_id(task, text)
    for label, cls in [(gold, POS)] + [(w, NEG) for w in wrong]:
        yield {**record(task, fill(rng, tpl, label=rng.choice(names[label])), text, cls), "group": group}


def sentiment_examples(task, text, polarity, templates, rng) -> Iterator[dict]:
    """Polarity question (cls = polarity) + one label-style variant ("Is this text {label}?")."""
    yield record(task, rng.choice(templates["sentiment"]), text, polarity)
    names = templates["sentiment_labels"]
    label = polarity if rng.random() < 0.5 else rng.choice([l for l in names if l != polarity])
    prompt = fill(rng, templates["sentiment_label"], label=rng.choice(names[label]))
    yield record(task, prompt, text, POS if label == polarity else NEG)


def nli_record(task, premise, hypothesis, label, templates, rng) -> dict:
    hyp = hypothesis.strip()
    prompt = fill(rng, templates["nli"], hypothesis=hyp, h=strip_end(hyp))
    return record(task, prompt, premise.strip(), NLI_CLS[label])


def read_bio(path: Path) -> Iterator[tuple]:
    """Yield (text, {type: [[s, e], ...]}) per sentence of a token<TAB>IOB2-tag file."""
    tokens: List[tuple] = []
    for line in read_lines(path) + [""]:
        if line.strip():
            tok, tag = line.split("\t")[:2]
            tokens.append((tok, tag.strip()))
            continue
        if not tokens:
            continue
        text, spans, cur, pos = "", defaultdict(list), None, 0
        for tok, tag in tokens:
            start = pos
            text += tok + " "
            pos += len(tok) + 1
            kind = tag[2:] if tag != "O" else None
            # I- after O or another type is treated as a new entity (robust to IOB1 slips)
            if tag.startswith("B-") or (tag.startswith("I-") and cur != kind):
                spans[kind].append([start, start + len(tok)])
            elif tag.startswith("I-"):
                spans[kind][-1][1] = start + len(tok)
            cur = kind
        yield text[:-1], dict(spans)
        tokens = []


def ner_examples(task, path, label_set, templates, rng) -> Iterator[dict]:
    """One example per entity type per sentence, absent types included (empty spans -> negative)."""
    names = templates["ner_labels"][label_set]
    for text, spans in read_bio(path):
        for kind, descs in names.items():
            prompt = fill(rng, templates["ner"], label=rng.choice(descs))
            yield record(task, prompt, text, spans=spans.get(kind, []))


# ---------------------------------------------------------------- SQuAD
def squad_questions(raw_dir: Path) -> Iterator[tuple]:
    """(article_idx, context, question, answer_text, answer_start) from the reconstructed TRAIN file."""
    with _open(raw_dir / "squad_v1.1" / "train-v1.1.reconstructed.json") as f:
        data = json.load(f)["data"]
    for ai, art in enumerate(data):
        for para in art["paragraphs"]:
            for qa in para["qas"]:
                for ans in qa["answers"][:1]:
                    yield ai, para["context"], qa["question"].strip(), ans["text"], ans.get("answer_start")


def qa_prompt(question, templates, rng) -> str:
    return question if rng.random() < templates["qa_raw_rate"] else fill(rng, templates["qa"], question=question)


@converters.register("squad")
def convert_squad(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    for _, context, q, answer, start in squad_questions(raw_dir):
        span = locate(context, answer, start)
        if span is None:
            STATS["squad: answer not found"] += 1
            continue
        yield record("squad", qa_prompt(q, templates, rng), context, spans=[span])


@converters.register("squad_noanswer")
def convert_squad_noanswer(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """~1 in 3 questions paired with a paragraph from ANOTHER article -> no answer."""
    rows = list(squad_questions(raw_dir))
    paras = sorted({(ai, c) for ai, c, *_ in rows})
    for ai, _, q, *_ in rows:
        if rng.random() >= 1 / 3:
            continue
        other_ai, other = rng.choice(paras)
        while other_ai == ai:
            other_ai, other = rng.choice(paras)
        yield record("squad_noanswer", qa_prompt(q, templates, rng), other, spans=[])


# ---------------------------------------------------------------- NER
@converters.register("conll")
def convert_conll(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    for split in ("train.txt", "dev.txt"):  # dev is allowed for training; test is not read
        yield from ner_examples("conll", raw_dir / "conll2003" / split, "conll", templates, rng)


@converters.register("wnut")
def convert_wnut(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    yield from ner_examples("wnut", raw_dir / "wnut17" / "train.conll", "wnut", templates, rng)


# ---------------------------------------------------------------- NLI / QA
def _jsonl_nli(task, path, templates, rng):
    for r in read_jsonl(path):
        yield nli_record(task, r["premise"], r["hypothesis"], r["label"], templates, rng)


@converters.register("mnli")
def convert_mnli(raw_dir, templates, rng):
    yield from _jsonl_nli("mnli", raw_dir / "mnli_train_subset" / "train_subset.jsonl", templates, rng)


@converters.register("rte")
def convert_rte(raw_dir, templates, rng):
    yield from _jsonl_nli("rte", raw_dir / "rte" / "train.jsonl", templates, rng)


@converters.register("cb")
def convert_cb(raw_dir, templates, rng):
    yield from _jsonl_nli("cb", raw_dir / "cb" / "train.jsonl", templates, rng)


@converters.register("snli")
def convert_snli(raw_dir, templates, rng):
    d = raw_dir / "snli"
    for split in ("dev", "test"):  # SNLI train is not available; dev/test are our SNLI training data
        cols = [read_lines(d / f"{n}.{split}") for n in ("s1", "s2", "labels")]
        for p, h, label in zip(*cols):
            if label.strip() in NLI_CLS:
                yield nli_record("snli", detok(p), detok(h), label.strip(), templates, rng)


@converters.register("sick")
def convert_sick(raw_dir, templates, rng):
    rows = read_tsv(raw_dir / "sick" / "SICK.txt")
    head = rows[0]
    for r in rows[1:]:
        r = dict(zip(head, r))
        if r["SemEval_set"] in ("TRAIN", "TRIAL"):  # TEST is held out
            yield nli_record("sick", r["sentence_A"], r["sentence_B"], r["entailment_label"].lower(), templates, rng)


@converters.register("boolq")
def convert_boolq(raw_dir, templates, rng):
    for r in read_jsonl(raw_dir / "boolq_train_subset" / "train_subset.jsonl"):
        q = r["question"].strip()
        q = q[0].upper() + q[1:] + ("" if q.endswith("?") else "?")
        yield record("boolq", fill(rng, templates["boolq"], question=q), r["passage"], POS if r["answer"] else NEG)


# ---------------------------------------------------------------- sentiment / emotion
def sst2_rows(raw_dir: Path, split: str) -> Iterator[tuple]:
    for line in read_lines(raw_dir / "sst2" / f"stsa.binary.{split}"):
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
    for fname, pol in (("rt-polarity.pos", POS), ("rt-polarity.neg", NEG)):
        for text in read_lines(raw_dir / "rotten_tomatoes_mr" / fname):
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
    for r in read_csv(raw_dir / "tweet_sentiment_extraction" / "train.csv"):
        if r["text"].strip():
            yield from sentiment_examples("tweet_sentiment", r["text"].strip(), r["sentiment"], templates, rng)


@converters.register("financial_phrasebank")
def convert_financial_phrasebank(raw_dir, templates, rng):
    for line in read_lines(raw_dir / "financial_phrasebank" / "Sentences_66Agree.txt", "latin-1"):
        if "@" in line:
            text, label = line.rsplit("@", 1)
            yield from sentiment_examples("financial_phrasebank", text.strip(), label.strip(), templates, rng)


def emotion_rows(raw_dir: Path) -> List[tuple]:
    lines = read_lines(raw_dir / "emotion" / "train.txt")[1:]  # skip header
    return [tuple(s.strip() for s in l.rsplit(";", 1)) for l in lines if ";" in l]


@converters.register("emotion")
def convert_emotion(raw_dir, templates, rng):
    rows = emotion_rows(raw_dir)
    labels = sorted({l for _, l in rows})
    for text, label in rows:
        yield from label_prompts("emotion", text, label, labels, templates["emotion_labels"], templates["emotion"], rng)


@converters.register("tweeteval_emotion")
def convert_tweeteval_emotion(raw_dir, templates, rng):
    d = raw_dir / "tweeteval_emotion"
    mapping = dict(l.split("\t") for l in read_lines(d / "mapping.txt") if l.strip())
    labels = sorted(mapping.values())
    for text, lid in zip(read_lines(d / "train_text.txt"), read_lines(d / "train_labels.txt")):
        yield from label_prompts("tweeteval_emotion", text.strip(), mapping[lid.strip()], labels,
                                 templates["emotion_labels"], templates["emotion"], rng)


# ---------------------------------------------------------------- label classification
def trec_rows(raw_dir: Path) -> List[tuple]:
    rows = []
    for line in read_lines(raw_dir / "trec" / "train.txt"):
        if line.strip():
            label, text = line.split(" ", 1)
            rows.append((text.strip(), label.split(":")[0]))
    return rows


def banking_rows(raw_dir: Path) -> List[tuple]:
    return [(r["text"].strip(), r["category"].replace("_", " ")) for r in read_csv(raw_dir / "banking77" / "train.csv")]


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
    d = raw_dir / "dbpedia14_subset"
    classes = [c.strip() for c in read_lines(d / "classes.txt") if c.strip()]
    names = templates["dbpedia_labels"]
    for text, idx in read_tsv(d / "dev.tsv")[1:]:  # dev.tsv ONLY; test.tsv is EVAL
        yield from label_prompts("dbpedia", text, classes[int(idx) - 1], classes, names, templates["topic"], rng)


# ---------------------------------------------------------------- paraphrase / similarity / retrieval
@converters.register("mrpc")
def convert_mrpc(raw_dir, templates, rng):
    with _open(raw_dir / "mrpc" / "msr_paraphrase_train.txt", "utf-8-sig") as f:
        rows = [l.rstrip("\r\n").split("\t") for l in f if l.strip()][1:]
    for q, _, _, s1, s2 in rows:
        yield record("mrpc", fill(rng, templates["paraphrase"], sentence=strip_end(s1)), s2, POS if q == "1" else NEG)


@converters.register("stsb")
def convert_stsb(raw_dir, templates, rng):
    for r in read_tsv(raw_dir / "stsb" / "sts-train.tsv"):
        score, s1, s2 = float(r[4]), r[5], r[6]
        cls = POS if score >= 3.8 else NEG if score <= 1.8 else NEU
        yield record("stsb", fill(rng, templates["similarity"], sentence=strip_end(s1)), s2, cls)


WORD = re.compile(r"[a-z0-9]{4,}")


@converters.register("scifact")
def convert_scifact(raw_dir, templates, rng):
    d = raw_dir / "beir_scifact"
    docs = {r["_id"]: (r["title"].strip().rstrip(".") + ". " + r["text"])[:1200] for r in read_jsonl(d / "corpus.jsonl")}
    claims = {r["_id"]: r["text"] for r in read_jsonl(d / "queries.jsonl")}
    rel = defaultdict(set)
    for qid, did, *_ in read_tsv(d / "qrels" / "train.tsv")[1:]:  # TRAIN qrels only; test.tsv is EVAL
        rel[qid].add(did)
    # inverted index for a "hard" negative: the non-relevant doc sharing most words with the claim
    index = defaultdict(set)
    for did, text in docs.items():
        for w in set(WORD.findall(text.lower())):
            index[w].add(did)
    ids = sorted(docs)
    for qid in sorted(rel, key=int):
        claim, relevant = claims[qid], rel[qid]
        prompt = lambda: fill(rng, templates["retrieval"], claim=strip_end(claim))  # noqa: E731
        for did in sorted(relevant):
            yield record("scifact", prompt(), docs[did], POS)
        overlap = Counter(x for w in set(WORD.findall(claim.lower())) for x in index.get(w, ()) if x not in relevant)
        hard = [x for x, _ in overlap.most_common(1)]
        rand = rng.choice([x for x in ids if x not in relevant and x not in hard])
        for did in hard + [rand]:
            yield record("scifact", prompt(), docs[did], NEG)


# ---------------------------------------------------------------- Cappy-style correctness pairs
CAPPY_PER_SOURCE = 1700  # 6 sources x 1700 instructions x 2 responses ~ 20k records


def _cappy_pair(instr_key, fields, gold, wrong, templates, rng) -> Iterator[dict]:
    context = fill(rng, templates["cappy_instructions"][instr_key], **fields)
    for resp, cls in ((gold, POS), (wrong, NEG)):
        yield record("cappy", fill(rng, templates["cappy"], response=resp), context, cls)


@converters.register("cappy")
def convert_cappy(raw_dir, templates, rng):
    def sample(rows):
        return rng.sample(rows, min(CAPPY_PER_SOURCE, len(rows)))

    squad = list(squad_questions(raw_dir))
    answers = [a.strip() for *_, a, _ in squad]
    for _, ctx, q, ans, _ in sample(squad):
        ans = ans.strip()
        # wrong answer: a capitalized phrase from the same passage (plausible distractor) or another question's answer
        cands = [m for m in re.findall(r"[A-Z][\w-]+(?: [A-Z][\w-]+)*", ctx) if m not in ans and ans not in m]
        wrong = rng.choice(cands) if cands and rng.random() < 0.7 else rng.choice(answers)
        if wrong == ans:
            continue
        yield from _cappy_pair("squad", {"question": q, "passage": ctx}, ans, wrong, templates, rng)
    for r in sample(list(read_jsonl(raw_dir / "boolq_train_subset" / "train_subset.jsonl"))):
        gold, wrong = ("yes", "no") if r["answer"] else ("no", "yes")
        yield from _cappy_pair("boolq", {"question": r["question"], "passage": r["passage"]}, gold, wrong, templates, rng)
    nli = list(read_jsonl(raw_dir / "mnli_train_subset" / "train_subset.jsonl"))
    for r in sample(nli):
        wrong = rng.choice([l for l in ("entailment", "neutral", "contradiction") if l != r["label"]])
        yield from _cappy_pair("nli", {"premise": r["premise"], "hypothesis": r["hypothesis"]}, r["label"], wrong, templates, rng)
    trec_names = {k: v[0] for k, v in templates["trec_labels"].items()}
    for key, rows, to_name in (("trec", trec_rows(raw_dir), trec_names.get),
                               ("banking77", banking_rows(raw_dir), str),
                               ("emotion", emotion_rows(raw_dir), str)):
        labels = sorted({l for _, l in rows})
        for text, label in sample(rows):
            wrong = rng.choice([l for l in labels if l != label])
            yield from _cappy_pair(key, {"text": text}, to_name(label), to_name(wrong), templates, rng)


# ---------------------------------------------------------------- leakage guard
# Texts of the EVAL splits (corpus/raw/INDEX.md; plus conll2003 test, boolq dev and stsb test, held-out
# splits evaluate.py reports on): run() drops every training record that repeats one of them.
# Read through `_open_eval`, only to compare; never through `_open`. (SST-2 dev, which evaluate.py
# also reports on, is not EVAL in INDEX.md: convert_rotten_tomatoes reads it to drop its overlap.)
def _open_eval(path: Path):
    return open(path, encoding="utf-8", newline="")


def _eval_lines(path: Path) -> List[str]:
    with _open_eval(path) as f:
        return f.read().splitlines()


def _eval_bio(path: Path) -> Iterator[str]:
    """Sentences (tokens joined by spaces) of a token<TAB or space>tag file."""
    words: List[str] = []
    for line in _eval_lines(path) + [""]:
        parts = line.split()
        if parts and parts[0] != "-DOCSTART-":
            words.append(parts[0])
        elif not parts and words:
            yield " ".join(words)
            words = []


def _eval_json_fields(*fields: str, join: str = ""):
    """Reader of a JSON-lines file: the given (dotted) fields, and all of them joined by `join`."""
    def read(path: Path) -> Iterator[str]:
        for line in _eval_lines(path):
            try:
                row = json.loads(line)
            except ValueError:
                continue
            values = []
            for field in fields:
                value = row
                for part in field.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if isinstance(value, str):
                    values.append(value)
            yield from values
            if join and len(values) > 1:
                yield join.join(values)
    return read


def _eval_columns(*columns: str, join: str = ""):
    """Reader of a TSV (plain tab split) or CSV file with a header: the named columns."""
    def read(path: Path) -> Iterator[str]:
        if path.suffix == ".csv":
            with _open_eval(path) as f:
                rows = [[r.get(c) or "" for c in columns] for r in csv.DictReader(f)]
        else:
            lines = [l.split("\t") for l in _eval_lines(path)]
            head = lines[0] if lines else []
            if not set(columns) <= set(head):
                return
            idx = [head.index(c) for c in columns]
            rows = [[r[i] if i < len(r) else "" for i in idx] for r in lines[1:]]
        for values in rows:
            yield from values
            if join:
                yield join.join(values)
    return read


def _eval_stsb(path: Path) -> Iterator[str]:
    for r in (l.split("\t") for l in _eval_lines(path)):
        yield from r[5:7] if len(r) >= 7 else ()


def _eval_squad(path: Path) -> Iterator[str]:
    with _open_eval(path) as f:
        data = json.load(f)["data"]
    for art in data:
        for para in art["paragraphs"]:
            yield para["context"]
            yield from (qa["question"] for qa in para["qas"])


def _eval_scifact_queries(path: Path) -> Iterator[str]:
    """Claims of the test queries (qrels/test.tsv) of beir_scifact."""
    ids = {l.split("\t")[0] for l in _eval_lines(path)[1:] if l.strip()}
    for line in _eval_lines(path.parent.parent / "queries.jsonl"):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if str(row.get("_id")) in ids:
            yield row["text"]


EVAL_SOURCES = [  # (glob under raw_dir, reader of its texts)
    ("conll2003/test.txt", _eval_bio),
    ("crossner/*/test.txt", _eval_bio),
    ("mit_movie/test.txt", _eval_bio),
    ("mit_restaurant/test.txt", _eval_bio),
    ("wikigold/wikigold.conll.txt", _eval_bio),
    ("mnli/dev_matched.jsonl", _eval_json_fields("premise", "hypothesis")),
    ("mnli_mismatched_sample/dev_mismatched_sample.jsonl", _eval_json_fields("premise", "hypothesis")),
    ("anli/test_r1r2r3.jsonl", _eval_json_fields("premise", "hypothesis")),
    ("xnli_en/*.tsv", _eval_columns("premise", "hypothesis")),
    ("boolq/dev.jsonl", _eval_json_fields("question", "passage")),
    ("ag_news/test.csv", _eval_columns("Title", "Description", join=". ")),
    ("dbpedia14_subset/test.tsv", _eval_columns("text")),
    ("dbpedia14_subset/hf_test_sample100.jsonl", _eval_json_fields("title", "content", join=" ")),
    ("yahoo_answers_topics_subset/hf_test_sample100.jsonl", _eval_json_fields("title", "content", join=" ")),
    ("tweeteval_sentiment/*_text.txt", _eval_lines),
    ("wikiqa/WikiQA-test.tsv", _eval_columns("Question", "Sentence")),
    ("beir_scifact/qrels/test.tsv", _eval_scifact_queries),
    ("squad_v1.1/dev-v1.1.json", _eval_squad),
    ("commonsenseqa/dev_rand_split.jsonl", _eval_json_fields("question.stem")),
    ("openbookqa/test.tsv", _eval_columns("Question Stem")),
    ("winogrande/dev.jsonl", _eval_json_fields("sentence")),
    ("stsb/sts-test.tsv", _eval_stsb),
]
EVAL_KEYS: set = set()  # eval_key of every EVAL text; filled by run() while it converts
_PUNCT_SPACE = re.compile(r" ?([^\w ]) ?")
# template fields that hold a raw text (not a label name or a candidate response)
TEXT_FIELDS = {"question", "hypothesis", "h", "premise", "sentence", "claim", "passage", "text"}
MIN_PART_WORDS = 3  # a line or filled-in part of a text is compared only from this length ("1", ")" are not leaks)


def eval_key(text: str) -> str:
    """INDEX.md's comparison key: lowercased, whitespace collapsed; also blind to spaces around
    punctuation and to final . ? ! (tokenized and detokenized copies compare equal)."""
    return _PUNCT_SPACE.sub(r"\1", " ".join(text.lower().split())).rstrip(".?! ")


def eval_texts(raw_dir: Path) -> set:
    """eval_key of every text of the EVAL_SOURCES found under raw_dir."""
    keys = set()
    for pattern, read in EVAL_SOURCES:
        for path in sorted(Path(raw_dir).glob(pattern)):
            try:
                keys.update(eval_key(t) for t in read(path) if isinstance(t, str))
            except (ValueError, KeyError, TypeError):  # not in the documented layout (or a placeholder)
                continue
    keys.discard("")
    return keys


def is_eval_text(*texts: str) -> bool:
    """Whether one of `texts` (of MIN_PART_WORDS words or more) is an EVAL text; always False
    outside run(). For converters that embed raw texts in free-form instructions, which the
    record check cannot take apart."""
    return bool(EVAL_KEYS) and any(len(t.split()) >= MIN_PART_WORDS and eval_key(t) in EVAL_KEYS for t in texts)


def _slot_pattern(templates: dict) -> "re.Pattern":
    """One regex matching any prompt template (training_prompts.json, tasks.json) that has
    literal text; its named groups `<field>__<n>` capture the filled-in values."""
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, (list, dict)):
            for v in value.values() if isinstance(value, dict) else value:
                yield from strings(v)
    with _open(TEMPLATES_DIR / "tasks.json") as f:
        task_templates = json.load(f)
    alternatives, n = [], 0
    for tpl in sorted(set(strings(templates)) | set(strings(task_templates))):
        try:
            parsed = list(string.Formatter().parse(tpl))
        except ValueError:
            continue
        if not any(field for _, field, _, _ in parsed) or not any(lit.strip() for lit, *_ in parsed):
            continue
        parts = []
        for literal, field, _, _ in parsed:
            parts.append(re.escape(literal))
            if field is not None:
                n += 1
                parts.append(f"(?P<{field if field.isidentifier() else 'x'}__{n}>.+?)")
        alternatives.append("".join(parts))
    return re.compile("(?:" + "|".join(alternatives) + r")\Z", re.DOTALL)


class LeakGuard:
    """Drops records whose context or prompt repeats an EVAL text: the whole text, any of its
    lines, or a raw text filled into a prompt template (hypothesis, question, sentence ...)."""

    def __init__(self, keys: set, templates: dict):
        self.keys = keys
        self.slots = _slot_pattern(templates)
        self.cache: Dict[str, bool] = {}

    def units(self, text: str) -> Iterator[str]:
        yield text
        parts = text.split("\n") if "\n" in text else []
        m = self.slots.match(text)
        if m:
            parts += [v for k, v in m.groupdict().items() if v and k.split("__")[0] in TEXT_FIELDS]
        yield from (p for p in parts if len(p.split()) >= MIN_PART_WORDS)

    def text_leaks(self, text: str) -> bool:
        if text not in self.cache:
            if len(self.cache) > 200_000:
                self.cache.clear()
            self.cache[text] = any(eval_key(u) in self.keys for u in self.units(text))
        return self.cache[text]

    def leaks(self, r: dict) -> bool:
        return bool(self.keys) and (self.text_leaks(r["context"]) or self.text_leaks(r["prompt"]))


# ---------------------------------------------------------------- CLI
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
    # `python -m`: run the package module, whose STATS and EVAL_KEYS the converters in datasets/ share
    from spacy_cortex.training.convert import main as package_main
    package_main()


from . import datasets  # noqa: E402,F401  registers the newer sets' converters
