"""Converters of the newer task sets (issue 11): intents and topics, extractive QA, multiple
choice, PromptSource scoring pairs and ANLI dev, cast to the unified CORTEX records of
`spacy_cortex.training.convert` (same contract: TRAINING splits only, every raw file read through
`convert._open`, one catalogue entry per set in `convert.converters`).

Multiple-choice and PromptSource examples are scoring pairs in the format `api.score` reads:
prompt = the `score` template of templates/tasks.json filled with a candidate response,
context = the instruction; the gold candidate is positive, the others negative.
"""
import json
import random
import re
from functools import lru_cache
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from .. import convert as C
from ..convert import (NEG, POS, STATS, converters, detok, label_prompts, locate, nli_record,
                       qa_prompt, read_csv, read_jsonl, read_lines, read_tsv, record)
from ...templates import TEMPLATES_DIR, task_template

TASK_LABELS_PATH = TEMPLATES_DIR / "task_labels.json"
OOS_NEGATIVES = 3  # an out-of-scope CLINC text gets as many (all negative) intents as an in-scope one
MAX_CANDIDATES = 5  # scoring pairs per PromptSource instance: the gold answer + up to 4 wrong ones
PS_ROWS_PER_TEMPLATE = 300  # instances per PromptSource template, so that no dataset dominates
WINOGRANDE_QUESTIONS = ["Which option fills the blank?", "Which option does the _ stand for?",
                        "Who or what fills the blank (_)?", "Fill in the blank: which option fits?"]


@lru_cache(maxsize=1)
def task_labels() -> Dict[str, Dict[str, List[str]]]:
    """{set: {raw label: [name, paraphrase, ...]}} (templates/task_labels.json)."""
    with C._open(TASK_LABELS_PATH) as f:
        return json.load(f)


def _read_json(path: Path, encoding: str = "utf-8"):
    with C._open(path, encoding) as f:
        return json.load(f)


def score_prompt(candidate: str) -> str:
    """The prompt `api.score` runs for a candidate response."""
    return task_template("score").format(response=candidate)


def choice_records(task: str, instruction: str, candidates: Sequence[str], gold: int) -> Iterator[dict]:
    """One scoring pair per distinct candidate: the gold one positive, the others negative;
    one group."""
    answer = candidates[gold].strip()
    seen = set()
    group = C.group_id(task, instruction)
    for i, cand in enumerate(candidates):
        cand = cand.strip()
        if not cand or cand in seen or (i != gold and cand == answer):
            continue
        seen.add(cand)
        yield {**record(task, score_prompt(cand), instruction, POS if i == gold else NEG), "group": group}


def _label_set(task, rows, set_name, tpl, rng, none_label=None) -> Iterator[dict]:
    """label_prompts over (text, raw label) rows; `none_label` rows get OOS_NEGATIVES wrong labels."""
    names = task_labels()[set_name]
    labels = sorted(names)
    for text, label in rows:
        if not text.strip():
            continue
        if label == none_label:
            for wrong in rng.sample(labels, OOS_NEGATIVES):
                yield record(task, C.fill(rng, tpl, label=rng.choice(names[wrong])), text.strip(), NEG)
        else:
            yield from label_prompts(task, text.strip(), label, labels, names, tpl, rng)


# ---------------------------------------------------------------- intents / topics
@converters.register("clinc150")
def convert_clinc150(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    data = _read_json(raw_dir / "clinc150" / "data_full.json")
    rows = data["train"] + data["oos_train"]  # val / test / oos_val / oos_test are not used
    yield from _label_set("clinc150", rows, "clinc150", templates["intent"], rng, none_label="oos")


@converters.register("hwu64")
def convert_hwu64(raw_dir, templates, rng):
    rows = [(r["text"], r["category"]) for r in read_csv(raw_dir / "hwu64" / "train.csv")]
    yield from _label_set("hwu64", rows, "hwu64", templates["intent"], rng)


def snips_utterances(raw_dir: Path) -> List[Tuple[str, str]]:
    """(utterance, intent) from the train_<Intent>_full.json files; the slot annotations are ignored."""
    rows = []
    for path in sorted((raw_dir / "snips_nlu").glob("train_*_full.json")):
        try:
            data = _read_json(path)
        except UnicodeDecodeError:  # train_PlayMusic_full.json is Latin-1 (SOURCE.md)
            data = _read_json(path, "latin-1")
        for intent, examples in data.items():
            rows += [("".join(piece["text"] for piece in ex["data"]), intent) for ex in examples]
    return rows


@converters.register("snips_intents")
def convert_snips_intents(raw_dir, templates, rng):
    yield from _label_set("snips_intents", snips_utterances(raw_dir), "snips_nlu", templates["intent"], rng)


@converters.register("reuters_r8")
def convert_reuters_r8(raw_dir, templates, rng):
    rows = [(r[1], r[0]) for r in read_tsv(raw_dir / "reuters_r8" / "train.txt") if len(r) == 2]
    yield from _label_set("reuters_r8", rows, "reuters_r8", templates["topic"], rng)


# ---------------------------------------------------------------- extractive QA
def add_span(spans: List[List[int]], span: Optional[List[int]]) -> None:
    """Keep `span` unless it overlaps one already kept (annotators' alternatives of one answer)."""
    if span and not any(span[0] < e and s < span[1] for s, e in spans):
        spans.append(span)


def squad_format(task, path, templates, rng, all_answers=False) -> Iterator[dict]:
    """SQuAD v1.1-format file: the first answer (all_answers: every answer that does not overlap
    an earlier one: separate evidence spans) located in the paragraph."""
    for art in _read_json(path)["data"]:
        for para in art["paragraphs"]:
            context = para["context"]
            for qa in para["qas"]:
                question = qa["question"].strip()
                spans: List[List[int]] = []
                for ans in qa["answers"] if all_answers else qa["answers"][:1]:
                    add_span(spans, locate(context, ans["text"], ans.get("answer_start")))
                if not question or not spans:
                    STATS[f"{task}: answer not found"] += 1
                    continue
                yield record(task, qa_prompt(question, templates, rng), context, spans=sorted(spans))


@converters.register("squadshifts")
def convert_squadshifts(raw_dir, templates, rng):
    # SQuAD-shifts' "test" files are TRAINING material here (squadshifts/SOURCE.md; not this corpus's EVAL)
    for name in ("new_wiki", "amazon_reviews", "reddit"):
        yield from squad_format("squadshifts", raw_dir / "squadshifts" / f"{name}_v1.0.json", templates, rng)


@converters.register("policyqa")
def convert_policyqa(raw_dir, templates, rng):
    # dev only (there is no train file); test.json is never read
    yield from squad_format("policyqa", raw_dir / "policyqa" / "dev.json", templates, rng, all_answers=True)


SUBJQA_NONE = "ANSWERNOTFOUND"


def subjqa_pairs(raw_dir: Path) -> Iterator[Tuple[str, str, List[List[int]]]]:
    """(question, review, spans) per question-review pair of the train splits. The annotators'
    rows of a pair are merged: answerable if any of them marked a span (non-overlapping spans
    kept); spans=[] only when every annotator said ANSWERNOTFOUND."""
    for path in sorted((raw_dir / "subjqa").glob("*/train.csv")):
        pairs: Dict[Tuple[str, str], List[List[int]]] = {}
        for r in read_csv(path):
            question, review = r["question"].strip(), r["review"]
            context = review[:review.rindex(SUBJQA_NONE)].rstrip() if SUBJQA_NONE in review else review.rstrip()
            spans = pairs.setdefault((question, context), [])
            if r["human_ans_spans"].strip() == SUBJQA_NONE:
                continue
            s, e = (int(x) for x in re.findall(r"\d+", r["human_ans_indices"])[:2])
            e = min(e, len(context))  # a few spans run into the ANSWERNOTFOUND token
            while s < e and context[s].isspace():
                s += 1
            while e > s and context[e - 1].isspace():
                e -= 1
            if s < e:
                add_span(spans, [s, e])
            else:
                STATS["subjqa: empty answer span"] += 1
        for (question, context), spans in pairs.items():
            if question and context:
                yield question, context, sorted(spans)


@converters.register("subjqa")
def convert_subjqa(raw_dir, templates, rng):
    for question, context, spans in subjqa_pairs(raw_dir):
        yield record("subjqa", qa_prompt(question, templates, rng), context, spans=spans)


NO_SPACE_BEFORE = {".", ",", ";", ":", "!", "?", "%", ")", "]", "}", "'s", "n't", "'re", "'ve", "'ll", "'d", "'m"}
NO_SPACE_AFTER = {"(", "[", "{", "$"}


def join_tokens(tokens: Sequence[str]) -> Tuple[str, List[int]]:
    """Text of whitespace tokens with PTB spacing undone (as convert.detok), and each token's start."""
    text, starts = "", []
    for i, tok in enumerate(tokens):
        if i and tok not in NO_SPACE_BEFORE and tokens[i - 1] not in NO_SPACE_AFTER:
            text += " "
        starts.append(len(text))
        text += tok
    return text, starts


def bio_spans(labels: Sequence[str], starts: Sequence[int], tokens: Sequence[str]) -> List[List[int]]:
    spans: List[List[int]] = []
    inside = False
    for tag, start, tok in zip(labels, starts, tokens):
        if tag == "B" or (tag == "I" and not inside):
            spans.append([start, start + len(tok)])
        elif tag == "I":
            spans[-1][1] = start + len(tok)
        inside = tag in ("B", "I")
    return spans


@converters.register("multispanqa")
def convert_multispanqa(raw_dir, templates, rng):
    # valid.json is the only labelled split held (train is absent); every question has 2+ spans
    for r in _read_json(raw_dir / "multispanqa" / "valid.json")["data"]:
        context, starts = join_tokens(r["context"])
        spans = bio_spans(r["label"], starts, r["context"])
        question = detok(" ".join(r["question"]))
        question = question[:1].upper() + question[1:] + ("" if question.endswith("?") else "?")
        if not spans:
            STATS["multispanqa: no span"] += 1
            continue
        yield record("multispanqa", qa_prompt(question, templates, rng), context, spans=spans)


# ---------------------------------------------------------------- multiple choice
def commonsenseqa_rows(raw_dir: Path) -> List[dict]:
    return list(read_jsonl(raw_dir / "commonsenseqa" / "train_rand_split.jsonl"))  # dev is EVAL


@converters.register("commonsenseqa")
def convert_commonsenseqa(raw_dir, templates, rng):
    for r in commonsenseqa_rows(raw_dir):
        choices = r["question"]["choices"]
        keys = [c["label"] for c in choices]
        if r["answerKey"] not in keys:
            STATS["commonsenseqa: no answer key"] += 1
            continue
        yield from choice_records("commonsenseqa", r["question"]["stem"].strip(), [c["text"] for c in choices],
                                  keys.index(r["answerKey"]))


OBQA_CHOICE = re.compile(r"\(([A-D])\)\s*")


def parse_openbookqa(rows: List[List[str]]) -> Iterator[Optional[dict]]:
    """{id, question_stem, choices: {text, label}, answerKey} per row of an OpenBookQA tsv
    (header first); None for a row whose "(A) … (D) …" choices or answer key do not parse.
    Shared with evaluate.py, which reads the test split."""
    head = [h.strip() for h in rows[0]]
    for row in rows[1:]:
        r = dict(zip(head, row))
        parts = OBQA_CHOICE.split(r.get("Choices", ""))[1:]
        labels, texts = parts[0::2], [t.strip() for t in parts[1::2]]
        if labels != ["A", "B", "C", "D"] or r.get("Answer Key", "").strip() not in labels:
            yield None
            continue
        yield {"id": r["ID"], "question_stem": r["Question Stem"].strip(),
               "choices": {"text": texts, "label": labels}, "answerKey": r["Answer Key"].strip()}


def openbookqa_rows(raw_dir: Path, task: str = "openbookqa") -> Iterator[dict]:
    """Parsed rows of train + dev (test is EVAL)."""
    for split in ("train", "dev"):
        for r in parse_openbookqa(read_tsv(raw_dir / "openbookqa" / f"{split}.tsv")):
            if r is None:
                STATS[f"{task}: openbookqa row with unparsed choices"] += 1
            else:
                yield r


@converters.register("openbookqa")
def convert_openbookqa(raw_dir, templates, rng):
    for r in openbookqa_rows(raw_dir):
        yield from choice_records("openbookqa", r["question_stem"], r["choices"]["text"],
                                  r["choices"]["label"].index(r["answerKey"]))


def winogrande_rows(raw_dir: Path) -> List[dict]:
    return list(read_jsonl(raw_dir / "winogrande" / "train_l.jsonl"))  # dev is EVAL


@converters.register("winogrande")
def convert_winogrande(raw_dir, templates, rng):
    for r in winogrande_rows(raw_dir):
        instruction = f"{r['sentence'].strip()}\n{rng.choice(WINOGRANDE_QUESTIONS)}"
        yield from choice_records("winogrande", instruction, [r["option1"], r["option2"]], int(r["answer"]) - 1)


# ---------------------------------------------------------------- NLI
ANLI_LABELS = {"e": "entailment", "n": "neutral", "c": "contradiction"}


def anli_dev_rows(raw_dir: Path) -> Iterator[dict]:
    # R1-R3 DEV (analysis release); the ANLI test rounds (anli/) are EVAL and never read
    for path in sorted((raw_dir / "anli_dev").glob("ANLI_analysis_r*_dev.csv")):
        for r in read_csv(path):
            if r["gold_label"] in ANLI_LABELS and r["context"].strip() and r["statement"].strip():
                yield r


@converters.register("anli_dev")
def convert_anli_dev(raw_dir, templates, rng):
    for r in anli_dev_rows(raw_dir):
        yield nli_record("anli_dev", r["context"], r["statement"], ANLI_LABELS[r["gold_label"]], templates, rng)


# ---------------------------------------------------------------- PromptSource
# Dataset rows in the Hugging Face schema the templates were written for, built from the
# TRAINING splits held in the raw folder. Datasets with templates that are NOT instantiated:
# ag_news, yahoo_answers_topics, tweet_eval/sentiment, xnli, wiki_qa, glue/mnli_(mis)matched,
# glue/qnli (EVAL or built from EVAL); dbpedia_14 (our rows have no title and are
# preprocessed); rotten_tomatoes (its SST-2 dev/test overlap filter lives in convert.py);
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
    return [_ps_nli(r["premise"], r["hypothesis"], r["label"])
            for r in read_jsonl(raw / "mnli_train_subset" / "train_subset.jsonl")]


def _ps_rte(raw):  # glue/rte (sentence1/2) and super_glue/rte (premise/hypothesis): 0 entailment
    return [_ps_nli(r["premise"], r["hypothesis"], r["label"], ["entailment", "not_entailment"],
                    sentence1=r["premise"], sentence2=r["hypothesis"], idx=r.get("idx", 0))
            for r in read_jsonl(raw / "rte" / "train.jsonl")]


def _ps_cb(raw):
    return [_ps_nli(r["premise"], r["hypothesis"], r["label"], ["entailment", "contradiction", "neutral"])
            for r in read_jsonl(raw / "cb" / "train.jsonl")]


def _ps_snli(raw):
    d, rows = raw / "snli", []
    for split in ("dev", "test"):  # our SNLI training data (convert.convert_snli)
        cols = [read_lines(d / f"{n}.{split}") for n in ("s1", "s2", "labels")]
        rows += [_ps_nli(detok(p), detok(h), label.strip()) for p, h, label in zip(*cols) if label.strip() in NLI3]
    return rows


def _ps_sick(raw):  # sick and sem_eval_2014_task_1 (the same SICK pairs), TRAIN + TRIAL
    rows = read_tsv(raw / "sick" / "SICK.txt")
    out = []
    for r in (dict(zip(rows[0], r)) for r in rows[1:]):
        label = r["entailment_label"].lower()
        if r["SemEval_set"] in ("TRAIN", "TRIAL") and label in NLI3:
            out.append(_ps_nli(r["sentence_A"], r["sentence_B"], label, sentence_A=r["sentence_A"],
                               sentence_B=r["sentence_B"], entailment_AB=r["entailment_AB"],
                               entailment_BA=r["entailment_BA"], relatedness_score=float(r["relatedness_score"]),
                               entailment_judgment=["neutral", "entailment", "contradiction"].index(label)))
    return out


def _ps_boolq(raw):
    return [{"question": r["question"], "passage": r["passage"], "label": int(bool(r["answer"])), "idx": i}
            for i, r in enumerate(read_jsonl(raw / "boolq_train_subset" / "train_subset.jsonl"))]


def _ps_mrpc(raw):
    rows = read_tsv(raw / "mrpc" / "msr_paraphrase_train.txt", "utf-8-sig")[1:]
    return [{"sentence1": s1, "sentence2": s2, "label": int(q), "idx": i}
            for i, (q, _, _, s1, s2) in enumerate(r for r in rows if len(r) == 5)]


def _ps_sst2(raw):
    return [{"sentence": t, "label": int(p == POS), "idx": i} for i, (t, p) in enumerate(C.sst2_rows(raw, "train"))]


def _ps_emotion(raw):
    return [{"text": t, "label": EMOTION6.index(l)} for t, l in C.emotion_rows(raw) if l in EMOTION6]


def _ps_tweeteval_emotion(raw):
    d = raw / "tweeteval_emotion"
    return [{"text": t.strip(), "label": int(l)} for t, l in zip(read_lines(d / "train_text.txt"),
                                                                 read_lines(d / "train_labels.txt")) if l.strip()]


def _ps_financial_phrasebank(raw):  # the 66%-agreement sentences we train on (a superset of AllAgree)
    rows = []
    for line in read_lines(raw / "financial_phrasebank" / "Sentences_66Agree.txt", "latin-1"):
        text, _, label = line.rpartition("@")
        if label.strip() in ("negative", "neutral", "positive") and text.strip():
            rows.append({"sentence": text.strip(), "label": ["negative", "neutral", "positive"].index(label.strip())})
    return rows


def _ps_banking77(raw):
    rows = C.banking_rows(raw)
    names = sorted({l for _, l in rows}, key=str.lower)  # the Hugging Face label order
    return [{"text": t, "label": names.index(l)} for t, l in rows]


def _ps_hwu64(raw):  # nlu_evaluation_data: 68 intents, of which hwu64 holds 64
    rows = [(r["text"], r["category"]) for r in read_csv(raw / "hwu64" / "train.csv")]
    names = sorted({c for _, c in rows} | set(NLU_EXTRA))
    return [{"text": t, "scenario": c.split("_")[0], "label": names.index(c)} for t, c in rows]


def _ps_trec(raw):
    rows = []
    for line in read_lines(raw / "trec" / "train.txt"):
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
    for row in read_jsonl(raw_dir / "promptsource_templates" / "templates.jsonl"):
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
                leaked[build, i] = C.is_eval_text(*_strings(rows[i]))
            if leaked[build, i]:
                STATS["leak:promptsource"] += len(records)
                continue
            yield from records
            done += 1
