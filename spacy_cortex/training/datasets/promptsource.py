"""PromptSource converter: each template with answer_choices, rendered on rows of its dataset's
TRAINING split held in the raw folder, gives scoring pairs (tasks.choice_records): the
rendered instruction with the target answer positive and up to MAX_CANDIDATES - 1 other
answer choices negative.
"""
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Tuple

from ...corpus.registry import read_train
from ..leakage import is_eval_text
from ..records import POS, STATS, converters, detok
from .labels import banking_rows, emotion_rows, hwu64_rows, phrasebank_lines, sst2_rows, tweeteval_emotion_rows
from .pairs import ANLI_LABELS, anli_dev_rows, mrpc_rows, sick_rows, snli_columns
from .tasks import choice_records, commonsenseqa_rows, openbookqa_rows, winogrande_rows

MAX_CANDIDATES = 5  # scoring pairs per PromptSource instance: the gold answer + up to 4 wrong ones
PS_ROWS_PER_TEMPLATE = 300  # instances per PromptSource template, so that no dataset dominates

# Dataset rows in the Hugging Face schema the templates were written for, built from the
# TRAINING splits held in the raw folder. Datasets with templates that are NOT instantiated:
# ag_news, yahoo_answers_topics, tweet_eval/sentiment, xnli, wiki_qa, glue/mnli_(mis)matched,
# glue/qnli (EVAL or built from EVAL); dbpedia_14 (our rows have no title and are
# preprocessed); rotten_tomatoes (its SST-2 dev/test overlap filter lives in labels.py);
# cos_e, esnli (explanations not held); imdb, piqa, copa, ... (not held).
NLI3 = ["entailment", "neutral", "contradiction"]
EMOTION6 = ["sadness", "joy", "love", "anger", "fear", "surprise"]
TREC_COARSE = ["ABBR", "ENTY", "DESC", "HUM", "LOC", "NUM"]
TREC_FINE = ("ABBR:abb ABBR:exp ENTY:animal ENTY:body ENTY:color ENTY:cremat ENTY:currency ENTY:dismed "
             "ENTY:event ENTY:food ENTY:instru ENTY:lang ENTY:letter ENTY:other ENTY:plant ENTY:product "
             "ENTY:religion ENTY:sport ENTY:substance ENTY:symbol ENTY:techmeth ENTY:termeq ENTY:veh ENTY:word "
             "DESC:def DESC:desc DESC:manner DESC:reason HUM:gr HUM:ind HUM:title HUM:desc LOC:city "
             "LOC:country LOC:mount LOC:other LOC:state NUM:code NUM:count NUM:date NUM:dist NUM:money "
             "NUM:ord NUM:other NUM:period NUM:perc NUM:speed NUM:temp NUM:volsize NUM:weight").split()
NLU_EXTRA = ["audio_volume_other", "cooking_query", "general_greet", "music_dislikeness"]  # 68 - hwu64's 64
SICK_AB = {"entailment": "A_entails_B", "neutral": "A_neutral_B", "contradiction": "A_contradicts_B"}
# templates whose target contradicts their instruction: "B entails A?" answered with the A->B label
PS_SKIP_TEMPLATES = {("sick", "B entails A?"), ("sick", "B entails_netural_contradict A?")}


def _ps_nli(premise, hypothesis, label, labels=NLI3, **extra) -> dict:
    return {"premise": premise, "hypothesis": hypothesis, "label": labels.index(label), **extra}


def _ps_anli(raw):
    return [_ps_nli(r["context"], r["statement"], ANLI_LABELS[r["gold_label"]], uid=r["uid"], reason=r["reason"])
            for r in anli_dev_rows(raw)]


def _ps_mnli(raw):
    return [_ps_nli(r["premise"], r["hypothesis"], r["label"]) for r in read_train(raw, "mnli_train_subset", "train")]


def _ps_rte(raw):  # glue/rte (sentence1/2) and super_glue/rte (premise/hypothesis): 0 entailment
    return [_ps_nli(r["premise"], r["hypothesis"], r["label"], ["entailment", "not_entailment"],
                    sentence1=r["premise"], sentence2=r["hypothesis"], idx=r.get("idx", 0))
            for r in read_train(raw, "rte", "train")]


def _ps_cb(raw):
    return [_ps_nli(r["premise"], r["hypothesis"], r["label"], ["entailment", "contradiction", "neutral"])
            for r in read_train(raw, "cb", "train")]


def _ps_snli(raw):
    rows = []
    for split in ("dev", "test"):  # our SNLI training data (pairs.convert_snli)
        rows += [_ps_nli(detok(p), detok(h), label.strip())
                 for p, h, label in snli_columns(raw, split) if label.strip() in NLI3]
    return rows


def _ps_sick(raw):  # sick and sem_eval_2014_task_1 (the same SICK pairs), TRAIN + TRIAL
    out = []
    for r in sick_rows(raw):
        label = r["entailment_label"].lower()
        if label in NLI3:
            out.append(_ps_nli(r["sentence_A"], r["sentence_B"], label, sentence_A=r["sentence_A"],
                               sentence_B=r["sentence_B"], entailment_AB=r["entailment_AB"],
                               entailment_BA=r["entailment_BA"], relatedness_score=float(r["relatedness_score"]),
                               entailment_judgment=["neutral", "entailment", "contradiction"].index(label)))
    return out


def _ps_boolq(raw):
    return [{"question": r["question"], "passage": r["passage"], "label": int(bool(r["answer"])), "idx": i}
            for i, r in enumerate(read_train(raw, "boolq_train_subset", "train"))]


def _ps_mrpc(raw):
    return [{"sentence1": s1, "sentence2": s2, "label": int(q), "idx": i}
            for i, (q, _, _, s1, s2) in enumerate(r for r in mrpc_rows(raw) if len(r) == 5)]


def _ps_sst2(raw):
    return [{"sentence": t, "label": int(p == POS), "idx": i} for i, (t, p) in enumerate(sst2_rows(raw, "train"))]


def _ps_emotion(raw):
    return [{"text": t, "label": EMOTION6.index(l)} for t, l in emotion_rows(raw) if l in EMOTION6]


def _ps_tweeteval_emotion(raw):
    return [{"text": t.strip(), "label": int(l)} for t, l in tweeteval_emotion_rows(raw) if l.strip()]


def _ps_financial_phrasebank(raw):  # the 66%-agreement sentences we train on (a superset of AllAgree)
    rows = []
    for line in phrasebank_lines(raw):
        text, _, label = line.rpartition("@")
        if label.strip() in ("negative", "neutral", "positive") and text.strip():
            rows.append({"sentence": text.strip(), "label": ["negative", "neutral", "positive"].index(label.strip())})
    return rows


def _ps_banking77(raw):
    rows = banking_rows(raw)
    names = sorted({l for _, l in rows}, key=str.lower)  # the Hugging Face label order
    return [{"text": t, "label": names.index(l)} for t, l in rows]


def _ps_hwu64(raw):  # nlu_evaluation_data: 68 intents, of which hwu64 holds 64
    rows = hwu64_rows(raw)
    names = sorted({c for _, c in rows} | set(NLU_EXTRA))
    return [{"text": t, "scenario": c.split("_")[0], "label": names.index(c)} for t, c in rows]


def _ps_trec(raw):
    rows = []
    for line in read_train(raw, "trec", "train"):
        label, _, text = line.partition(" ")
        if label in TREC_FINE and text.strip():
            rows.append({"text": text.strip(), "coarse_label": TREC_COARSE.index(label.split(":")[0]),
                         "fine_label": TREC_FINE.index(label)})
    return rows


def _ps_commonsenseqa(raw):
    return [{"id": r["id"], "question": r["question"]["stem"], "question_concept": r["question"].get("question_concept", ""),
             "choices": {"label": [c["label"] for c in r["question"]["choices"]],
                         "text": [c["text"] for c in r["question"]["choices"]]},
             "answerKey": r["answerKey"]} for r in commonsenseqa_rows(raw)]


def _ps_openbookqa(raw):
    return list(openbookqa_rows(raw, "promptsource"))


def _ps_winogrande(raw):
    return [{"sentence": r["sentence"], "option1": r["option1"], "option2": r["option2"], "answer": r["answer"]}
            for r in winogrande_rows(raw)]


PS_DATASETS: Dict[str, Callable[[Path], List[dict]]] = {
    "anli": _ps_anli, "glue/mnli": _ps_mnli, "multi_nli": _ps_mnli, "glue/rte": _ps_rte, "super_glue/rte": _ps_rte,
    "super_glue/cb": _ps_cb, "snli": _ps_snli, "sick": _ps_sick, "sem_eval_2014_task_1": _ps_sick,
    "super_glue/boolq": _ps_boolq, "glue/mrpc": _ps_mrpc, "glue/sst2": _ps_sst2, "emotion": _ps_emotion,
    "tweet_eval/emotion": _ps_tweeteval_emotion, "financial_phrasebank/sentences_allagree": _ps_financial_phrasebank,
    "banking77": _ps_banking77, "nlu_evaluation_data": _ps_hwu64, "trec": _ps_trec,
    "commonsense_qa": _ps_commonsenseqa, "openbookqa/main": _ps_openbookqa, "winogrande/winogrande_l": _ps_winogrande,
}


def promptsource_templates(raw_dir: Path) -> Iterator[Tuple[str, dict]]:
    """(dataset key, template) of every template with answer_choices, from the packed YAML rows."""
    import yaml  # a dependency of transformers

    class Loader(yaml.SafeLoader):
        pass

    for tag in ("!Template", "!TemplateMetadata"):
        Loader.add_constructor(tag, lambda loader, node: loader.construct_mapping(node, deep=True))
    for row in read_train(raw_dir, "promptsource_templates", "all"):
        key = "/".join(row["subset_dirs"])
        for _, tpl in sorted(yaml.load(row["yaml"], Loader=Loader)["templates"].items()):
            if tpl.get("answer_choices"):
                yield key, tpl


def _strings(value) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)


@converters.register("promptsource")
def convert_promptsource(raw_dir, templates, rng):
    """Each PromptSource template with answer_choices, on up to PS_ROWS_PER_TEMPLATE rows of its
    dataset's training split: (rendered instruction, answer choice) scoring pairs."""
    from jinja2 import TemplateError
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment()
    env.filters["highlight"] = lambda text: text  # PromptSource's UI filter
    env.filters["choice"] = lambda seq: rng.choice(list(seq))
    env.globals["zip"] = zip
    rows_of: Dict[Callable, List[dict]] = {}
    leaked: Dict[Tuple[Callable, int], bool] = {}
    seen = set()
    for key, tpl in promptsource_templates(raw_dir):
        build = PS_DATASETS.get(key)
        ident = (build, tpl["jinja"], tpl["answer_choices"])
        if build is None or (key, tpl.get("name")) in PS_SKIP_TEMPLATES or ident in seen:
            continue
        seen.add(ident)
        if build not in rows_of:
            rows_of[build] = [r for r in build(raw_dir) if "|||" not in "".join(_strings(r))]
        rows = rows_of[build]
        jinja, choices_tpl = env.from_string(tpl["jinja"]), env.from_string(tpl["answer_choices"])
        done = 0
        for i in rng.sample(range(len(rows)), len(rows)):
            if done == PS_ROWS_PER_TEMPLATE:
                break
            try:
                choices = [c.strip() for c in choices_tpl.render(**rows[i]).split("|||")]
                parts = jinja.render(answer_choices=choices, **rows[i]).split("|||")
            except (TemplateError, LookupError, ValueError, TypeError):
                STATS["promptsource: template does not render"] += 1
                continue
            if len(parts) != 2 or not parts[0].strip() or parts[1].strip() not in choices:
                continue  # e.g. a template for one coarse TREC class on a row of another class
            instruction, target = parts[0].strip(), parts[1].strip()
            wrong = [c for c in dict.fromkeys(choices) if c and c != target]
            candidates = [target] + rng.sample(wrong, min(MAX_CANDIDATES - 1, len(wrong)))
            records = list(choice_records("promptsource", instruction, candidates, 0))
            # the row's texts are embedded in a free-form instruction, which run()'s record check
            # cannot take apart: a row holding an EVAL text is dropped here (no-op outside run())
            if (build, i) not in leaked:
                leaked[build, i] = is_eval_text(*_strings(rows[i]))
            if leaked[build, i]:
                STATS["leak:promptsource"] += len(records)
                continue
            yield from records
            done += 1
