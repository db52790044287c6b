"""Evaluate a CORTEX checkpoint on held-out (EVAL) sets via the spaCy components and API.

Every set runs through what users call: spacy.blank("en") + the `cortex` component with
cortex_ner / cortex_textcat / cortex_qa, and spacy_cortex.api with the component's model.

Usage: python -m spacy_cortex.evaluation.evaluate RAW_DIR --model CHECKPOINT --output metrics.json
           [--limit-scale 1.0] [--quick] [--sets a,b] [--precision fp32|bf16]

RAW_DIR is the public data folder (corpus/raw, see its INDEX.md). Each set uses a
deterministic subset: a seeded shuffle of the rows, the first N kept (in file order), so a
smaller scale gives a subset of a larger one. Label names used in prompts are data, in
templates/eval_labels.json.

Round-3 label sets (issue 24; sets_labels.py), each with the backbone bi-encoder beside it:
bbc_news (accuracy, biencoder), symptom2disease, olid, tweeteval_irony, atis, swda,
dailydialog_act, dailydialog_emotion (accuracy, macro_f1, biencoder, biencoder_macro_f1),
tweeteval_stance (the same + f1_against_favor, biencoder_f1_against_favor), goemotions (the
same on single-label rows + micro_f1, multi-label on all rows); broad_twitter_corpus (NER:
ents_f, ents_p, ents_r).
"""
import argparse
import json
import time
from functools import partial
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import spacy
from wasabi import msg

from ..corpus.registry import CROSSNER_DOMAINS
from ..training.datasets.tasks import WINOGRANDE_QUESTIONS
from .evaluator import SEED, Evaluator
from .metrics import result
from .rows import (ag_news_rows, atis_rows, bbc_news_rows, btc_sentences, commonsenseqa_rows, dailydialog_rows,
                   dbpedia_rows, irony_rows, nli_rows, olid_rows, openbookqa_rows, swda_rows, symptom2disease_rows,
                   winogrande_rows, xnli_rows, yahoo_rows)
from .sets_scores import (choice_set, eval_anli, eval_boolq, eval_scifact, eval_sst2, eval_stsb, eval_tweeteval,
                          eval_wikiqa, nli_set, topic_set)
from .sets_labels import eval_goemotions, eval_stance, label_set
from .sets_relations import eval_ade, eval_fewrel_pubmed
from .sets_spans import eval_long_text, eval_ner, eval_squad, eval_verify

# round-3 label sets whose train splits configs/train_mix_v4.json trains on (test splits: EVAL)
ROUND3_TRAINED = "not zero-shot for a model trained on the round-3 label sets (its train split)"

ZERO_SHOT_NER = tuple(f"crossner_{d}" for d in CROSSNER_DOMAINS) + ("mit_movie", "mit_restaurant")

SETS: Dict[str, Callable[[Evaluator], dict]] = {
    "squad": eval_squad,
    "conll2003": partial(eval_ner, name="conll2003", split="test", scheme="conll", default=1000),
    "conll2003_joined": partial(eval_ner, name="conll2003", split="test", scheme="conll", default=1200, joined=40),
    "wikigold": partial(eval_ner, name="wikigold", split="all", scheme="conll", default=1000),
    **{f"crossner_{d}": partial(eval_ner, name="crossner", split=f"{d}_test", scheme="crossner", default=200)
       for d in CROSSNER_DOMAINS},
    "mit_movie": partial(eval_ner, name="mit_movie", split="test", scheme="mit_movie", default=200),
    "mit_restaurant": partial(eval_ner, name="mit_restaurant", split="test", scheme="mit_restaurant", default=200),
    "broad_twitter_corpus": partial(eval_ner, name="broad_twitter_corpus", split="test", scheme="btc", default=500,
                                    read=btc_sentences),
    "mnli_m": partial(nli_set, load=lambda raw: nli_rows(raw, "mnli", "dev_matched"),
                      default=1000, name="MNLI dev-matched"),
    "mnli_mm": partial(nli_set, default=1000, name="MNLI dev-mismatched 1,907-pair random sample",
                       load=lambda raw: nli_rows(raw, "mnli_mismatched_sample", "dev_mismatched")),
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
    "bbc_news": partial(topic_set, load=bbc_news_rows, key="bbc_news", default=300,
                        note="BBC News test (5 topics, zero-shot: the whole set is EVAL; articles of ~390 words, "
                             "in windows)"),
    "tweeteval_stance": eval_stance,
    "symptom2disease": partial(label_set, load=symptom2disease_rows, key="symptom2disease", default=300,
                               note="Symptom2Disease, all rows (24 diseases, zero-shot: the whole set is EVAL)"),
    "goemotions": eval_goemotions,
    "olid": partial(label_set, load=olid_rows, key="olid", default=500,
                    note=f"OLID test level A (offensive or not); {ROUND3_TRAINED}"),
    "tweeteval_irony": partial(label_set, load=irony_rows, key="tweeteval_irony", default=500,
                               note=f"TweetEval irony test; {ROUND3_TRAINED}"),
    "atis": partial(label_set, load=atis_rows, key="atis", default=300,
                    note=f"ATIS test intents, single-intent rows ('#' rows left out); {ROUND3_TRAINED}"),
    "swda": partial(label_set, load=swda_rows, key="swda", default=300,
                    note="SwDA test dialogue acts, each turn below the one before it ('Other' turns left out); "
                         f"{ROUND3_TRAINED}"),
    "dailydialog_act": partial(label_set, load=lambda raw: dailydialog_rows(raw, 1), key="dailydialog_act",
                               default=500, note="DailyDialog test dialogue acts, each turn below the one before "
                                                 f"it; {ROUND3_TRAINED} (validation)"),
    "dailydialog_emotion": partial(label_set, load=lambda raw: dailydialog_rows(raw, 2), key="dailydialog_emotion",
                                   default=500, note="DailyDialog test emotions (no emotion: 82%), each turn below "
                                                     f"the one before it; {ROUND3_TRAINED} (validation)"),
    "stsb": eval_stsb,
    "commonsenseqa": partial(choice_set, load=commonsenseqa_rows, default=1221, name="CommonsenseQA dev (5-way)"),
    "openbookqa": partial(choice_set, load=openbookqa_rows, default=500, name="OpenBookQA test (4-way)"),
    "winogrande": partial(choice_set, load=winogrande_rows, default=1267,
                          name=f"WinoGrande dev (2-way), sentence + {WINOGRANDE_QUESTIONS[0]!r} as instruction"),
    "long_text": eval_long_text,
    "verify_wikigold": partial(eval_verify, name="wikigold", split="all", scheme="conll",
                               key="wikigold", default=1000),
    "verify_crossner_politics": partial(eval_verify, name="crossner", split="politics_test", scheme="crossner",
                                        key="crossner_politics", default=200),
    "wikiqa": eval_wikiqa,
    "scifact": eval_scifact,
    "ade_re": eval_ade,
    "fewrel_pubmed": eval_fewrel_pubmed,
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
