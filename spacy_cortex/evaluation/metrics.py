"""Metrics of the evaluation: accuracy, F1 of labels (macro, multi-label micro), Spearman,
ranking (reciprocal rank, average precision, nDCG@k), the BM25 first stage of retrieval,
and a set's report entry.
Inputs are plain sequences; nothing here runs the model."""
import math
import re
from collections import Counter, defaultdict
from typing import AbstractSet, Dict, List, Optional, Sequence, Tuple

import numpy as np


def accuracy(pred: Sequence, gold: Sequence) -> float:
    return float(np.mean([p == g for p, g in zip(pred, gold)])) if len(gold) else float("nan")


def macro_f1(pred: Sequence, gold: Sequence, labels: Optional[Sequence] = None) -> float:
    """Unweighted mean of the per-label F1 over `labels` (default: the labels of `gold`);
    a label neither predicted nor gold counts 0."""
    labels = sorted(set(gold)) if labels is None else labels
    f1 = []
    for label in labels:
        tp = sum(p == g == label for p, g in zip(pred, gold))
        wrong = sum((p == label) != (g == label) for p, g in zip(pred, gold))  # false positives + negatives
        f1.append(2 * tp / (2 * tp + wrong) if tp + wrong else 0.0)
    return float(np.mean(f1)) if f1 else float("nan")


def micro_f1(pred: Sequence[AbstractSet], gold: Sequence[AbstractSet]) -> float:
    """F1 of (row, label) pairs pooled over all rows: multi-label predictions against gold sets."""
    tp = sum(len(p & g) for p, g in zip(pred, gold))
    wrong = sum(len(p ^ g) for p, g in zip(pred, gold))
    return 2 * tp / (2 * tp + wrong) if tp + wrong else float("nan")


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
