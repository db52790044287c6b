"""Evaluation sets of named labels (issue 24's round-3 sets): classification through
cortex_textcat with the set's own prompt template and label names (templates/eval_labels.json
"labels"), the backbone bi-encoder beside it; TweetEval stance, whose prompts name the
target; GoEmotions, single-label rows and multi-label micro-F1."""
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

from ..corpus.registry import STANCE_TARGETS
from .evaluator import EVAL_LABELS_PATH, Evaluator, eval_labels
from .metrics import accuracy, macro_f1, micro_f1, result
from .rows import goemotions_rows, stance_rows

BIENCODER_NOTE = ("biencoder = the untrained backbone all-MiniLM-L6-v2, argmax cosine of the text and the "
                  "label names (null without the train extra)")
STANCE_F1 = ("against", "favor")  # SemEval-2016 / TweetEval: the mean F1 of these two
MULTI_LABEL_THRESHOLD = 0.5  # a GoEmotions label is predicted from this P(yes)


def textcat_cats(ev: Evaluator, texts: Sequence[str], prompts: Dict[str, str], exclusive: bool = True,
                 none_label: Optional[str] = None) -> List[Dict[str, float]]:
    """Doc.cats of cortex_textcat with one prompt per label."""
    config = {"labels": dict(prompts), "exclusive": exclusive, "none_label": none_label}
    return [doc.cats for doc in ev.run_component("cortex_textcat", config, [ev.nlp.make_doc(t) for t in texts])]


def top_label(cats: Dict[str, float]) -> str:
    return max(sorted(cats), key=cats.get)


def biencoder_labels(ev: Evaluator, texts: Sequence[str], names: Dict[str, str]) -> Optional[List[str]]:
    """Per text, the label whose name is the most cosine-similar (None without the bi-encoder)."""
    labels = list(names)
    picked = ev.biencoder_choice(texts, [[names[label] for label in labels]] * len(texts))
    return None if picked is None else [labels[i] for i in picked]


def label_metrics(pred: Sequence[str], picked: Optional[Sequence[str]],
                  gold: Sequence[str]) -> Dict[str, Optional[float]]:
    """Accuracy and macro-F1 over the gold labels, of cortex_textcat and of the bi-encoder."""
    return {"accuracy": accuracy(pred, gold), "macro_f1": macro_f1(pred, gold),
            "biencoder": None if picked is None else accuracy(picked, gold),
            "biencoder_macro_f1": None if picked is None else macro_f1(picked, gold)}


def set_prompts(key: str) -> Dict[str, str]:
    """{label: prompt} of a set: its template with each label's name."""
    spec = eval_labels()["labels"][key]
    return {label: spec["template"].format(label=name) for label, name in spec["labels"].items()}


def check_named(key: str, gold: Sequence[str]) -> None:
    """KeyError for a gold label that has no name in eval_labels.json (it could never be predicted)."""
    missing = sorted(set(gold) - set(eval_labels()["labels"][key]["labels"]))
    if missing:
        raise KeyError(f"No name for {key} labels {missing} in {EVAL_LABELS_PATH}")


def label_set(ev: Evaluator, load: Callable[[Path], list], key: str, default: int, note: str) -> dict:
    """One label per text: argmax of cortex_textcat's exclusive Doc.cats over every label of the set."""
    spec = eval_labels()["labels"][key]
    rows = ev.rows(load(ev.raw), default)
    texts, gold = [t for t, _ in rows], [g for _, g in rows]
    check_named(key, gold)
    pred = [top_label(cats) for cats in textcat_cats(ev, texts, set_prompts(key))]
    return result(label_metrics(pred, biencoder_labels(ev, texts, spec["labels"]), gold), len(rows),
                  f"{note}; cortex_textcat exclusive, prompt {spec['template']!r} per label with its name "
                  f"({len(spec['labels'])} labels), argmax of Doc.cats; macro_f1 over the gold labels of the "
                  f"rows; {BIENCODER_NOTE}", label_names=spec["labels"])


def eval_stance(ev: Evaluator, default: int = 500) -> dict:
    """TweetEval stance test, target by target: cortex_textcat asks whether the author is
    against / in favor of the target (none_label 'none': neither applies); the bi-encoder
    picks among the three stance phrases with the target."""
    spec = eval_labels()["stance"]
    rows = ev.rows(stance_rows(ev.raw), default)
    pred: List[str] = []
    gold: List[str] = []
    picked: Optional[List[str]] = []
    per_target = {}
    for target in STANCE_TARGETS:
        part = [(text, label) for t, text, label in rows if t == target]
        if not part:
            continue
        name = spec["targets"][target]
        phrases = {stance: phrase.format(target=name) for stance, phrase in spec["stances"].items()}
        prompts = {stance: spec["template"].format(stance=phrase) for stance, phrase in phrases.items()}
        texts = [text for text, _ in part]
        found = [top_label(cats) for cats in textcat_cats(ev, texts, prompts, none_label="none")]
        chosen = biencoder_labels(ev, texts, {**phrases, "none": spec["none"].format(target=name)})
        picked = None if chosen is None or picked is None else picked + chosen
        pred, gold = pred + found, gold + [label for _, label in part]
        per_target[target] = {"n": len(part), "accuracy": accuracy(found, [label for _, label in part])}
    metrics = {**label_metrics(pred, picked, gold), "f1_against_favor": macro_f1(pred, gold, STANCE_F1),
               "biencoder_f1_against_favor": None if picked is None else macro_f1(picked, gold, STANCE_F1)}
    return result(metrics, len(rows),
                  f"TweetEval stance test (5 targets, zero-shot: the whole set is EVAL); per target cortex_textcat "
                  f"exclusive with prompts {spec['template']!r} for {list(spec['stances'].values())} and "
                  "none_label 'none' (neither applies), argmax of Doc.cats; f1_against_favor = the mean F1 of "
                  "against and favor (SemEval-2016 / TweetEval); macro_f1 over all three; biencoder = "
                  "all-MiniLM-L6-v2, argmax cosine of the tweet and the three stance phrases with the target "
                  f"(none: {spec['none']!r}; null without the train extra)",
                  targets=spec["targets"], per_target=per_target)


def eval_goemotions(ev: Evaluator, default: int = 350) -> dict:
    """GoEmotions test: every label's P(yes) from one non-exclusive cortex_textcat run;
    single-label rows by argmax, all rows multi-label at MULTI_LABEL_THRESHOLD."""
    spec = eval_labels()["labels"]["goemotions"]
    rows = ev.rows(goemotions_rows(ev.raw), default)
    check_named("goemotions", [label for _, labels in rows for label in labels])
    cats = textcat_cats(ev, [text for text, _ in rows], set_prompts("goemotions"), exclusive=False)
    single = [i for i, (_, labels) in enumerate(rows) if len(labels) == 1]
    gold = [rows[i][1][0] for i in single]
    picked = biencoder_labels(ev, [rows[i][0] for i in single], spec["labels"])
    metrics = label_metrics([top_label(cats[i]) for i in single], picked, gold)
    metrics["micro_f1"] = micro_f1([{label for label, p in c.items() if p >= MULTI_LABEL_THRESHOLD} for c in cats],
                                   [set(labels) for _, labels in rows])
    return result(metrics, len(rows),
                  f"GoEmotions test (28 labels; not zero-shot for a model trained on its train split); "
                  f"cortex_textcat non-exclusive, prompt {spec['template']!r} per label with its name; "
                  f"accuracy, macro_f1 and the bi-encoder on the {len(single)} single-label rows of the n "
                  f"(argmax; the same as exclusive); micro_f1 on all n rows, multi-label: every label with "
                  f"P(yes) >= {MULTI_LABEL_THRESHOLD}; {BIENCODER_NOTE}",
                  single_label_n=len(single), label_names=spec["labels"])
