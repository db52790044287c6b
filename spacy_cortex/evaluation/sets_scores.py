"""Evaluation sets of scores: NLI and boolean QA, sentiment from [CLS], topics through
cortex_textcat (beside a bi-encoder baseline), multiple choice through api.select, similarity
(Spearman) and ranking (WikiQA answer sentences, SciFact retrieval after BM25)."""
from collections import defaultdict
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .. import api
from ..core.encoding import NEGATIVE, NEUTRAL, POSITIVE
from ..corpus.readers import read_lines
from ..corpus.registry import eval_files, read_eval
from ..templates import task_template
from .evaluator import Evaluator, eval_labels
from .metrics import BM25, accuracy, average_precision, ndcg_at_k, reciprocal_rank, result, spearman
from .rows import NLI_LABELS, Choice, nli_rows

# Sentiment prompts, both used in training (templates/training_prompts.json "sentiment").
SST2_PROMPT = "Is the sentiment of this text positive?"
TWEET_PROMPT = "What is the sentiment of this text: positive, negative or neutral?"
SCIFACT_CHARS = 1200  # training saw SciFact abstracts cut to this length


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
        rows = ev.rows(nli_rows(ev.raw, "anli", "test", f"r{r}_test"), 400)
        pred, gold = eval_nli(ev, rows)
        metrics[f"r{r}"] = accuracy(pred, gold)
        preds += pred
        golds += gold
    metrics = {"accuracy": accuracy(preds, golds), **metrics}
    return result(metrics, len(golds), "ANLI v0.1 test R1+R2+R3 (same N per round); api.entail argmax; "
                  "accuracy = all rounds pooled")


def eval_boolq(ev: Evaluator) -> dict:
    rows = ev.rows(read_eval(ev.raw, "boolq", "dev"), 1000)
    docs = []
    for r in rows:
        q = r["question"].strip()
        doc = ev.nlp.make_doc(r["passage"])
        # as in training (datasets.pairs.convert_boolq): capitalized, with a question mark
        doc._.cortex_questions = [{"question": q[0].upper() + q[1:] + ("" if q.endswith("?") else "?"),
                                   "type": "boolean"}]
        docs.append(doc)
    preds = ev.run_component("cortex_qa", {}, docs)
    pred = [d._.cortex_answers[0]["text"] == "yes" for d in preds]
    return result({"accuracy": accuracy(pred, [r["answer"] for r in rows])}, len(rows),
                  "BoolQ dev; cortex_qa boolean question (capitalized + '?') over the passage; "
                  "yes iff P(yes) >= 0.5")


def eval_sst2(ev: Evaluator) -> dict:
    rows = [line.split(" ", 1) for line in read_eval(ev.raw, "sst2", "dev") if line.strip()]
    rows = ev.rows(rows, 872)
    probs = ev.cls_probs(SST2_PROMPT, [t.strip() for _, t in rows])
    pred = np.where(probs[:, POSITIVE] > probs[:, NEGATIVE], "1", "0")
    return result({"accuracy": accuracy(pred, [l for l, _ in rows])}, len(rows),
                  f"SST-2 dev; [CLS] of {SST2_PROMPT!r}: positive iff P(positive) > P(negative)")


def eval_tweeteval(ev: Evaluator) -> dict:
    texts, labels = (read_lines(path) for path in eval_files(ev.raw, "tweeteval_sentiment", "test"))
    rows = ev.rows(list(zip(texts, labels)), 1000)
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
    rows = ev.rows([(float(r[4]), r[5], r[6]) for r in read_eval(ev.raw, "stsb", "test")], 1379)
    sims = api.similarity([a for _, a, _ in rows], [b for _, _, b in rows], model=ev.model)
    return result({"spearman": spearman(sims, [g for g, _, _ in rows])}, len(rows),
                  "STS-B test; api.similarity (both directions averaged); Spearman vs gold 0-5 scores")


def eval_wikiqa(ev: Evaluator) -> dict:
    questions: Dict[str, list] = defaultdict(list)
    for r in read_eval(ev.raw, "wikiqa", "test")[1:]:
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
    corpus = read_eval(ev.raw, "beir_scifact", "corpus")
    ids = [str(r["_id"]) for r in corpus]
    bm25 = BM25([f"{r['title']} {r['text']}" for r in corpus])
    passages = [(r["title"].strip().rstrip(".") + ". " + r["text"])[:SCIFACT_CHARS] for r in corpus]
    queries = {str(r["_id"]): r["text"] for r in read_eval(ev.raw, "beir_scifact", "queries")}
    qrels: Dict[str, Dict[str, float]] = defaultdict(dict)
    for qid, did, score in read_eval(ev.raw, "beir_scifact", "test")[1:]:
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
