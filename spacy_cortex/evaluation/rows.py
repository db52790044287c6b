"""The rows of the evaluation sets, read from the raw folder through the corpus registry:
SQuAD (context, question, answers), NLI (premise, hypothesis, label), topics and the
round-3 label sets (text, label), stance (target, text, stance), GoEmotions (text, labels)
and multiple choice (instruction, candidates, index of the gold one)."""
import html
import re
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..corpus.readers import iob2, read_columns, read_lines, read_tsv
from ..corpus.registry import STANCE_TARGETS, eval_files, read_eval
from ..training.datasets.labelsets import with_previous
from ..training.datasets.tasks import WINOGRANDE_QUESTIONS
from ..training.records import detok

NLI_LABELS = ("entailment", "neutral", "contradiction")


def squad_rows(raw: Path) -> List[Tuple[str, str, List[str]]]:
    data = read_eval(raw, "squad_v1.1", "dev")["data"]
    return [(p["context"], q["question"].strip(), [a["text"] for a in q["answers"]])
            for art in data for p in art["paragraphs"] for q in p["qas"]]


def nli_rows(raw: Path, name: str, split: str, tag: Optional[str] = None) -> List[Tuple[str, str, str]]:
    """(premise, hypothesis, label) of a JSON-lines NLI split; `tag`: only its rows of that tag (ANLI rounds)."""
    return [(r["premise"], r["hypothesis"], r["label"]) for r in read_eval(raw, name, split)
            if tag is None or r.get("tag") == tag]


def xnli_rows(raw: Path) -> List[Tuple[str, str, str]]:
    rows = read_eval(raw, "xnli_en", "test")[1:]
    return [(r[1], r[2], NLI_LABELS[int(r[3])]) for r in rows]


def without_symbol_entities(words: List[str], tags: List[str]) -> List[str]:
    """IOB2 tags with every entity of symbols only (no letter or digit) set to O."""
    out, i = list(tags), 0
    while i < len(tags):
        end = i + 1
        if tags[i].startswith("B-"):
            while end < len(tags) and tags[end] == f"I-{tags[i][2:]}":
                end += 1
            if not any(c.isalnum() for word in words[i:end] for c in word):
                out[i:end] = ["O"] * (end - i)
        i = end
    return out


def btc_sentences(path: Path) -> List[Tuple[List[str], List[str]]]:
    """(words, IOB2 tags) per tweet of the Broad Twitter Corpus token<TAB>tag file, whose
    tokens may end in a space or be blank (read_bio refuses them): tokens stripped, blank ones
    left out (all tagged O). BTC tags the '@' of '@ name' B-PER and the name B-PER again: as
    training reads BTC, the name alone is the person (entities of symbols only become O)."""
    sentences = []
    for rows in read_columns(path, sep="\t"):
        kept = [(row[0].strip(), row[-1].strip()) for row in rows if row[0].strip()]
        words = [word for word, _ in kept]
        if words:
            sentences.append((words, without_symbol_entities(words, iob2([tag for _, tag in kept]))))
    return sentences


def ag_news_rows(raw: Path) -> List[Tuple[str, str]]:
    classes = ["World", "Sports", "Business", "Sci-Tech"]
    def clean(text):  # AG's escapes: "#39;" for "&#39;", "\\" for line breaks
        return html.unescape(re.sub(r"(?<!&)(#\d+|quot|amp|lt|gt);", r"&\1;", text)).replace("\\", " ")
    return [(clean(f"{r['Title']}. {r['Description']}"), classes[int(r["Class Index"]) - 1])
            for r in read_eval(raw, "ag_news", "test")]


def dbpedia_rows(raw: Path) -> List[Tuple[str, str]]:
    classes = [c.strip() for c in read_eval(raw, "dbpedia14_subset", "classes") if c.strip()]
    by_name = {re.sub(r"(?<!^)([A-Z])", r" \1", c).lower(): c for c in classes}
    rows = [(text, classes[int(label) - 1]) for text, label in read_eval(raw, "dbpedia14_subset", "test")[1:]]
    rows += [(f"{r['title']} {r['content'].strip()}", by_name[r["label"]])
             for r in read_eval(raw, "dbpedia14_subset", "test_sample")]
    return rows


def yahoo_rows(raw: Path) -> List[Tuple[str, str]]:
    return [(f"{r['title']} {r['content']}".strip(), r["label"])
            for r in read_eval(raw, "yahoo_answers_topics_subset", "test_sample")]


Choice = Tuple[str, List[str], int]  # (instruction, candidate responses, index of the gold one)


def commonsenseqa_rows(raw: Path) -> List[Choice]:
    rows = read_eval(raw, "commonsenseqa", "dev")
    return [(r["question"]["stem"].strip(), [c["text"] for c in r["question"]["choices"]],
             [c["label"] for c in r["question"]["choices"]].index(r["answerKey"])) for r in rows]


def openbookqa_rows(raw: Path) -> List[Choice]:
    return [(r["question_stem"], r["choices"]["text"], r["choices"]["label"].index(r["answerKey"]))
            for r in read_eval(raw, "openbookqa", "test") if r is not None]


def winogrande_rows(raw: Path) -> List[Choice]:
    # the first of the question wordings training used, fixed so that runs compare
    return [(f"{r['sentence'].strip()}\n{WINOGRANDE_QUESTIONS[0]}", [r["option1"], r["option2"]], int(r["answer"]) - 1)
            for r in read_eval(raw, "winogrande", "dev")]


Labelled = Tuple[str, str]  # (text, its one gold label, raw as the set writes it)


def bbc_news_rows(raw: Path) -> List[Labelled]:
    return [(r["text"], r["category"]) for r in read_eval(raw, "bbc_news", "test")]


def symptom2disease_rows(raw: Path) -> List[Labelled]:
    return [(r["text"], r["label"]) for r in read_eval(raw, "symptom2disease", "all")]


def id_names(raw: Path, name: str) -> Dict[str, str]:
    """A TweetEval mapping.txt: label id -> label name ("0\tnone")."""
    return dict(line.strip().split("\t") for line in read_eval(raw, name, "mapping") if line.strip())


def stance_rows(raw: Path) -> List[Tuple[str, str, str]]:
    """(target folder, tweet, none / against / favor) of the five targets' test files."""
    names, files = id_names(raw, "tweeteval_stance"), eval_files(raw, "tweeteval_stance", "test")
    return [(target, text.strip(), names[label.strip()])
            for target, texts, labels in zip(STANCE_TARGETS, files[::2], files[1::2])
            for text, label in zip(read_lines(texts), read_lines(labels))]


def irony_rows(raw: Path) -> List[Labelled]:
    names = id_names(raw, "tweeteval_irony")
    texts, labels = (read_lines(path) for path in eval_files(raw, "tweeteval_irony", "test"))
    return [(text.strip(), names[label.strip()]) for text, label in zip(texts, labels)]


def goemotions_rows(raw: Path) -> List[Tuple[str, Tuple[str, ...]]]:
    """(comment, its gold emotions): test.tsv's comma-separated indices into labels.txt."""
    names = [line.strip() for line in read_eval(raw, "goemotions", "labels") if line.strip()]
    return [(r[0], tuple(names[int(i)] for i in r[1].split(","))) for r in read_eval(raw, "goemotions", "test")]


def olid_rows(raw: Path) -> List[Labelled]:
    """Level A (NOT / OFF): the test tweets (id, tweet) with the label file's id,label lines."""
    tweets, labels = eval_files(raw, "olid", "test_a")
    gold = dict(line.strip().split(",") for line in read_lines(labels) if line.strip())
    return [(tweet, gold[tweet_id]) for tweet_id, tweet in read_tsv(tweets)[1:]]


def atis_rows(raw: Path) -> List[Labelled]:
    """Test utterances with one intent; multi-intent rows ('atis_flight#atis_airfare') are left out."""
    seq_in, _, labels = eval_files(raw, "atis", "test")
    return [(text.strip(), label.strip()) for text, label in zip(read_lines(seq_in), read_lines(labels))
            if "#" not in label]


SWDA_OTHER = 'fo_o_fw_"_by_bc'  # SwDA's catch-all 'Other' tag: no act to name


def swda_rows(raw: Path) -> List[Labelled]:
    """Each test turn below the turn before it (`dialogue|speaker|utterance|tag` lines,
    spaces collapsed); turns tagged 'Other' are left out, though they stay as context."""
    dialogues: Dict[str, List[Tuple[str, str]]] = {}
    for parts in (line.split("|") for line in read_eval(raw, "swda", "test")):
        if len(parts) == 4:
            dialogues.setdefault(parts[0], []).append((" ".join(parts[2].split()), parts[3].strip()))
    return [(context, tag) for turns in dialogues.values()
            for context, (_, tag) in zip(with_previous([u for u, _ in turns]), turns) if tag != SWDA_OTHER]


def dailydialog_rows(raw: Path, column: int) -> List[Labelled]:
    """Each test turn (detokenized) below the turn before it, with its code from the act
    (column 1) or emotion (column 2) file; a dialogue whose codes do not match its turns is left out."""
    files = [read_lines(path) for path in eval_files(raw, "dailydialog", "test")]
    rows: List[Labelled] = []
    for dialogue, codes in zip(files[0], files[column]):
        turns = [detok(t) for t in dialogue.split("__eou__") if t.strip()]
        if len(turns) == len(codes.split()):
            rows += zip(with_previous(turns), codes.split())
    return rows
