"""spacy_cortex.evaluation.metrics: accuracy-free helpers (ranks, Spearman, ranking metrics, BM25)."""
import math

import pytest

from spacy_cortex.evaluation import metrics as M


def test_rankdata_averages_ties():
    assert M.rankdata([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]


def test_spearman():
    assert M.spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert M.spearman([1, 2, 3, 4], [9, 7, 3, 1]) == pytest.approx(-1.0)
    # monotone but non-linear: Spearman 1, Pearson < 1
    assert M.spearman([1, 2, 3, 4], [1, 8, 27, 1000]) == pytest.approx(1.0)
    # with ties: scipy.stats.spearmanr([1, 2, 2, 3], [1, 3, 2, 4]) = 0.9486832980505138
    assert M.spearman([1, 2, 2, 3], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138)
    assert math.isnan(M.spearman([1, 1, 1], [1, 2, 3]))
    assert M.result({"spearman": float("nan")}, 3, "p")["metrics"]["spearman"] is None  # JSON null


def test_reciprocal_rank_and_average_precision():
    assert M.reciprocal_rank([0, 0, 1, 1]) == pytest.approx(1 / 3)
    assert M.reciprocal_rank([1, 0]) == 1.0
    assert M.reciprocal_rank([0, 0]) == 0.0
    assert M.average_precision([0, 1, 0, 1]) == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_ndcg_at_k():
    gains = {"a": 1.0, "b": 1.0}
    assert M.ndcg_at_k(["a", "b", "c"], gains) == pytest.approx(1.0)
    assert M.ndcg_at_k(["c", "d"], gains) == 0.0
    expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert M.ndcg_at_k(["c", "a", "x"], gains) == pytest.approx(expected)
    # a relevant document below the cut-off does not count; the ideal still holds it
    assert M.ndcg_at_k(["x", "a", "b"], gains, k=1) == 0.0
    assert M.ndcg_at_k(["a", "x", "b"], gains, k=2) == pytest.approx(1 / (1 + 1 / math.log2(3)))


def test_bm25_ordering():
    docs = [
        "cats purr and sleep all day",
        "the stock market fell sharply",
        "dogs bark; cats purr; cats climb trees",
        "the the the the the",
    ]
    bm25 = M.BM25(docs)
    assert bm25.top("cats purr", 2) == [2, 0]  # more matching terms in 2, short doc 0 next
    assert bm25.top("stock market", 1) == [1]
    scores = bm25.scores("unknownword")
    assert not scores.any()
    # a rare word outweighs a common one
    assert bm25.scores("market")[1] > bm25.scores("the")[1]
    # ties broken by document order
    assert bm25.top("unknownword", 4) == [0, 1, 2, 3]
