"""Text-pair converters: NLI (MNLI, RTE, CB, SNLI, SICK, ANLI dev), yes/no questions over a
passage (BoolQ), paraphrase (MRPC), similarity (STS-B) and claim retrieval (SciFact).
TRAINING splits only, through the corpus registry."""
import re
from collections import Counter, defaultdict
from pathlib import Path
from typing import Iterator

from ...corpus.readers import read_csv, read_lines
from ...corpus.registry import read_train, train_files
from ...templates import strip_end
from ..records import NEG, NEU, NLI_CLS, POS, converters, detok, fill, nli_record, record


# ---------------------------------------------------------------- NLI
def _jsonl_nli(task, raw_dir, name, templates, rng):
    for r in read_train(raw_dir, name, "train"):
        yield nli_record(task, r["premise"], r["hypothesis"], r["label"], templates, rng)


@converters.register("mnli")
def convert_mnli(raw_dir, templates, rng):
    yield from _jsonl_nli("mnli", raw_dir, "mnli_train_subset", templates, rng)


@converters.register("rte")
def convert_rte(raw_dir, templates, rng):
    yield from _jsonl_nli("rte", raw_dir, "rte", templates, rng)


@converters.register("cb")
def convert_cb(raw_dir, templates, rng):
    yield from _jsonl_nli("cb", raw_dir, "cb", templates, rng)


def snli_columns(raw_dir: Path, split: str) -> Iterator[tuple]:
    """(premise, hypothesis, label) lines of an SNLI split's three column files, as written."""
    return zip(*(read_lines(path) for path in train_files(raw_dir, "snli", split)))


@converters.register("snli")
def convert_snli(raw_dir, templates, rng):
    for split in ("dev", "test"):  # SNLI train is not available; dev/test are our SNLI training data
        for p, h, label in snli_columns(raw_dir, split):
            if label.strip() in NLI_CLS:
                yield nli_record("snli", detok(p), detok(h), label.strip(), templates, rng)


def sick_rows(raw_dir: Path) -> Iterator[dict]:
    """{column: value} of the TRAIN and TRIAL rows of SICK.txt (its TEST rows are held out)."""
    rows = read_train(raw_dir, "sick", "all")
    for r in (dict(zip(rows[0], r)) for r in rows[1:]):
        if r["SemEval_set"] in ("TRAIN", "TRIAL"):
            yield r


@converters.register("sick")
def convert_sick(raw_dir, templates, rng):
    for r in sick_rows(raw_dir):
        yield nli_record("sick", r["sentence_A"], r["sentence_B"], r["entailment_label"].lower(), templates, rng)


ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def anli_dev_rows(raw_dir: Path) -> Iterator[dict]:
    # R1-R3 DEV (analysis release); the ANLI test rounds (anli/) are EVAL and never read
    for path in train_files(raw_dir, "anli_dev", "dev"):
        for r in read_csv(path):
            if r["gold_label"] in ANLI_LABELS and r["context"].strip() and r["statement"].strip():
                yield r


@converters.register("anli_dev")
def convert_anli_dev(raw_dir, templates, rng):
    for r in anli_dev_rows(raw_dir):
        yield nli_record("anli_dev", r["context"], r["statement"], ANLI_LABELS[r["gold_label"]], templates, rng)


# ---------------------------------------------------------------- yes/no questions
@converters.register("boolq")
def convert_boolq(raw_dir, templates, rng):
    for r in read_train(raw_dir, "boolq_train_subset", "train"):
        q = r["question"].strip()
        q = q[0].upper() + q[1:] + ("" if q.endswith("?") else "?")
        yield record("boolq", fill(rng, templates["boolq"], question=q), r["passage"], POS if r["answer"] else NEG)


# ---------------------------------------------------------------- paraphrase / similarity / retrieval
def mrpc_rows(raw_dir: Path) -> list:
    """(quality, id1, id2, sentence1, sentence2) rows of the MRPC train file (header dropped)."""
    return read_train(raw_dir, "mrpc", "train", encoding="utf-8-sig")[1:]


@converters.register("mrpc")
def convert_mrpc(raw_dir, templates, rng):
    for q, _, _, s1, s2 in mrpc_rows(raw_dir):
        yield record("mrpc", fill(rng, templates["paraphrase"], sentence=strip_end(s1)), s2, POS if q == "1" else NEG)


@converters.register("stsb")
def convert_stsb(raw_dir, templates, rng):
    for r in read_train(raw_dir, "stsb", "train"):
        score, s1, s2 = float(r[4]), r[5], r[6]
        cls = POS if score >= 3.8 else NEG if score <= 1.8 else NEU
        yield record("stsb", fill(rng, templates["similarity"], sentence=strip_end(s1)), s2, cls)


WORD = re.compile(r"[a-z0-9]{4,}")


@converters.register("scifact")
def convert_scifact(raw_dir, templates, rng):
    docs = {r["_id"]: (r["title"].strip().rstrip(".") + ". " + r["text"])[:1200]
            for r in read_train(raw_dir, "beir_scifact", "corpus")}
    claims = {r["_id"]: r["text"] for r in read_train(raw_dir, "beir_scifact", "queries")}
    rel = defaultdict(set)
    for qid, did, *_ in read_train(raw_dir, "beir_scifact", "train")[1:]:  # TRAIN qrels only; test.tsv is EVAL
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
