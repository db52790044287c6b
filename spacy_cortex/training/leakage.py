"""The leakage guard of the converters: no training record may repeat an EVAL text.

The EVAL splits are the registry's (corpus/registry.py); each has a reader of its texts here
(`TEXTS`), which only this guard calls, to compare. convert.run drops every record whose
context or prompt repeats one of them (compared by `eval_key`: lowercased, whitespace
collapsed, blind to spaces around punctuation and to a final . ? !), and `is_eval_text`
lets a converter that embeds raw texts in free-form instructions (PromptSource) check them.
"""
import json
import re
import string
from pathlib import Path
from typing import Callable, Dict, Iterator

from ..corpus import registry
from ..corpus.readers import (mention_sentence, read_bio, read_csv, read_json, read_jsonl, read_lines, read_tagged,
                              read_tsv)
from ..templates import TEMPLATES_DIR


# ---------------------------------------------------------------- the texts of each EVAL split
def _bio_texts(path: Path) -> Iterator[str]:
    """Sentences (tokens joined by spaces) of a token ... tag file."""
    return (" ".join(words) for words, _ in read_bio(path))


def _json_fields(*fields: str, join: str = "") -> Callable[[Path], Iterator[str]]:
    """Reader of a JSON-lines file: the given (dotted) fields, and all of them joined by `join`."""
    def read(path: Path) -> Iterator[str]:
        for row in read_jsonl(path):
            values = []
            for field in fields:
                value = row
                for part in field.split("."):
                    value = value.get(part) if isinstance(value, dict) else None
                if isinstance(value, str):
                    values.append(value)
            yield from values
            if join and len(values) > 1:
                yield join.join(values)
    return read


def _columns(*columns: str, join: str = "") -> Callable[[Path], Iterator[str]]:
    """Reader of a TSV (plain tab split) or CSV file with a header: the named columns."""
    def read(path: Path) -> Iterator[str]:
        if path.suffix == ".csv":
            rows = [[r.get(c) or "" for c in columns] for r in read_csv(path)]
        else:
            lines = read_tsv(path)
            head = lines[0] if lines else []
            if not set(columns) <= set(head):
                return
            idx = [head.index(c) for c in columns]
            rows = [[r[i] if i < len(r) else "" for i in idx] for r in lines[1:]]
        for values in rows:
            yield from values
            if join:
                yield join.join(values)
    return read


def _stsb(path: Path) -> Iterator[str]:
    for r in read_tsv(path):
        yield from r[5:7] if len(r) >= 7 else ()


def _squad(path: Path) -> Iterator[str]:
    for art in read_json(path)["data"]:
        for para in art["paragraphs"]:
            yield para["context"]
            yield from (qa["question"] for qa in para["qas"])


def _text_lines(path: Path) -> Iterator[str]:
    """TweetEval: the lines of the *_text.txt file of a split (its *_labels.txt holds none)."""
    return iter(read_lines(path) if path.name.endswith("_text.txt") else [])


def _scifact_queries(path: Path) -> Iterator[str]:
    """Claims of the test queries (qrels/test.tsv) of beir_scifact."""
    ids = {l.split("\t")[0] for l in read_lines(path)[1:] if l.strip()}
    for line in read_lines(path.parent.parent / "queries.jsonl"):
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if str(row.get("_id")) in ids:
            yield row["text"]



def _token_sentences(path: Path) -> Iterator[str]:
    """Sentences (tokens joined by spaces) of a JSON relation set: a list of {tokens} (ADE)
    or {relation: [{tokens}]} (FewRel)."""
    data = read_json(path)
    return (" ".join(r["tokens"]) for r in ([r for rs in data.values() for r in rs] if isinstance(data, dict) else data))


def _tab_tagged(path: Path) -> Iterator[str]:
    """Sentences of a token<TAB>tag file as the converters read it (read_tagged): the Broad
    Twitter Corpus has tokens with a line break inside, which read_bio refuses."""
    return (text for text, _, _ in read_tagged(path, sep="\t", tag_col=1))


def _mention_sentences(path: Path) -> Iterator[str]:
    """UFET: each row's sentence, built as the converter builds it."""
    return (mention_sentence(row)[0] for row in read_jsonl(path))


def _no_texts(path: Path) -> Iterator[str]:
    """SGD's dev / test schemas: descriptions of label names, no texts (the dialogues they
    belong to are not in the snapshot); they are EVAL so that no converter reads them."""
    return iter(())


def _field_lines(name: str, sep: str = "", index: int = 0) -> Callable[[Path], Iterator[str]]:
    """Reader of the split's file called `name` (its other files hold labels: no texts): each
    line, or its `index`-th field when split at `sep` (shorter lines: none)."""
    def read(path: Path) -> Iterator[str]:
        if path.name != name:
            return
        for line in read_lines(path):
            fields = line.split(sep) if sep else [line]
            if len(fields) > index:
                yield fields[index]
    return read


def _dialogue_turns(path: Path) -> Iterator[str]:
    """DailyDialog: the utterances of dialogues.txt (one dialogue a line, ` __eou__ ` between turns)."""
    if path.name == "dialogues.txt":
        for line in read_lines(path):
            yield from (turn for turn in line.split("__eou__") if turn.strip())


_NLI = _json_fields("premise", "hypothesis")
_TITLE_CONTENT = _json_fields("title", "content", join=" ")
# EVAL set (or (set, split)) -> reader of its texts; every EVAL split of the registry needs one
TEXTS: Dict[object, Callable[[Path], Iterator[str]]] = {
    "squad_v1.1": _squad, "conll2003": _bio_texts, "crossner": _bio_texts, "mit_movie": _bio_texts,
    "mit_restaurant": _bio_texts, "wikigold": _bio_texts, "mnli": _NLI, "mnli_mismatched_sample": _NLI,
    "anli": _NLI, "xnli_en": _columns("premise", "hypothesis"), "boolq": _json_fields("question", "passage"),
    "tweeteval_sentiment": _text_lines, "ag_news": _columns("Title", "Description", join=". "),
    ("dbpedia14_subset", "test"): _columns("text"), ("dbpedia14_subset", "test_sample"): _TITLE_CONTENT,
    "yahoo_answers_topics_subset": _TITLE_CONTENT, "stsb": _stsb, "wikiqa": _columns("Question", "Sentence"),
    "beir_scifact": _scifact_queries, "commonsenseqa": _json_fields("question.stem"),
    "openbookqa": _columns("Question Stem"), "winogrande": _json_fields("sentence"),
    "fewrel": _token_sentences, "ade_re": _token_sentences,
    "broad_twitter_corpus": _tab_tagged, "ufet_crowd": _mention_sentences,
    "smart_answer_types": _json_fields("question"), "sgd_schema_guided": _no_texts,
}
TEXTS.update({  # round-3 label sets (training/datasets/labelsets.py) and the whole-set EVAL ones
    "goemotions": _field_lines("test.tsv", "\t"), "olid": _columns("tweet"), "tweeteval_irony": _text_lines,
    "swda": _field_lines("test.txt", "|", 2), "dailydialog": _dialogue_turns, "atis": _field_lines("seq.in"),
    "bbc_news": _columns("text"), "tweeteval_stance": _text_lines, "symptom2disease": _columns("text"),
})


def texts_reader(name: str, split: str) -> Callable[[Path], Iterator[str]]:
    """The reader of an EVAL split's texts. KeyError if the guard has none: an EVAL split
    added to the registry must say here which of its fields are texts."""
    read = TEXTS.get((name, split)) or TEXTS.get(name)
    if read is None:
        raise KeyError(f"EVAL split {name} {split} has no text reader in training/leakage.py TEXTS")
    return read


# ---------------------------------------------------------------- comparing
EVAL_KEYS: set = set()  # eval_key of every EVAL text; filled by run() while it converts
_PUNCT_SPACE = re.compile(r" ?([^\w ]) ?")
# template fields that hold a raw text (not a label name or a candidate response)
TEXT_FIELDS = {"question", "hypothesis", "h", "premise", "sentence", "claim", "passage", "text"}
MIN_PART_WORDS = 3  # a line or filled-in part of a text is compared only from this length ("1", ")" are not leaks)


def eval_key(text: str) -> str:
    """INDEX.md's comparison key: lowercased, whitespace collapsed; also blind to spaces around
    punctuation and to final . ? ! (tokenized and detokenized copies compare equal)."""
    return _PUNCT_SPACE.sub(r"\1", " ".join(text.lower().split())).rstrip(".?! ")


def eval_texts(raw_dir: Path) -> set:
    """eval_key of every text of the registry's EVAL splits found under raw_dir."""
    keys = set()
    for name, split in registry.eval_splits():
        read = texts_reader(name, split)
        for path in registry.eval_files(raw_dir, name, split):
            if not path.is_file():
                continue
            try:
                keys.update(eval_key(t) for t in read(path) if isinstance(t, str))
            except (ValueError, KeyError, TypeError):  # not in the documented layout (or a placeholder)
                continue
    keys.discard("")
    return keys


def is_eval_text(*texts: str) -> bool:
    """Whether one of `texts` (of MIN_PART_WORDS words or more) is an EVAL text; always False
    outside run(). For converters that embed raw texts in free-form instructions, which the
    record check cannot take apart."""
    return bool(EVAL_KEYS) and any(len(t.split()) >= MIN_PART_WORDS and eval_key(t) in EVAL_KEYS for t in texts)


def _slot_pattern(templates: dict) -> "re.Pattern":
    """One regex matching any prompt template (training_prompts.json, tasks.json) that has
    literal text; its named groups `<field>__<n>` capture the filled-in values."""
    def strings(value):
        if isinstance(value, str):
            yield value
        elif isinstance(value, (list, dict)):
            for v in value.values() if isinstance(value, dict) else value:
                yield from strings(v)
    task_templates = read_json(TEMPLATES_DIR / "tasks.json")
    alternatives, n = [], 0
    for tpl in sorted(set(strings(templates)) | set(strings(task_templates))):
        try:
            parsed = list(string.Formatter().parse(tpl))
        except ValueError:
            continue
        if not any(field for _, field, _, _ in parsed) or not any(lit.strip() for lit, *_ in parsed):
            continue
        parts = []
        for literal, field, _, _ in parsed:
            parts.append(re.escape(literal))
            if field is not None:
                n += 1
                parts.append(f"(?P<{field if field.isidentifier() else 'x'}__{n}>.+?)")
        alternatives.append("".join(parts))
    return re.compile("(?:" + "|".join(alternatives) + r")\Z", re.DOTALL)


class LeakGuard:
    """Drops records whose context or prompt repeats an EVAL text: the whole text, any of its
    lines, or a raw text filled into a prompt template (hypothesis, question, sentence ...)."""

    def __init__(self, keys: set, templates: dict):
        self.keys = keys
        self.slots = _slot_pattern(templates)
        self.cache: Dict[str, bool] = {}

    def units(self, text: str) -> Iterator[str]:
        yield text
        parts = text.split("\n") if "\n" in text else []
        m = self.slots.match(text)
        if m:
            parts += [v for k, v in m.groupdict().items() if v and k.split("__")[0] in TEXT_FIELDS]
        yield from (p for p in parts if len(p.split()) >= MIN_PART_WORDS)

    def text_leaks(self, text: str) -> bool:
        if text not in self.cache:
            if len(self.cache) > 200_000:
                self.cache.clear()
            self.cache[text] = any(eval_key(u) in self.keys for u in self.units(text))
        return self.cache[text]

    def leaks(self, r: dict) -> bool:
        return bool(self.keys) and (self.text_leaks(r["context"]) or self.text_leaks(r["prompt"]))
