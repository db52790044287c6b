"""Readers of the raw corpus formats (corpus/raw), one copy each, shared by the converters
(training/) and the evaluation. Every file is opened through `open_text`.

Errors: a malformed line of a format these readers parse (JSON lines, JSON, tagged tokens)
raises FormatError (a ValueError) naming `file:line`.
"""
import csv
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Pattern, Sequence, Tuple

Spans = Dict[str, List[List[int]]]  # {entity type: [[start_char, end_char], ...]}
Sentence = Tuple[str, Spans, int]  # text, its spans, number of tokens
DOCSTART = re.compile(r"\s*-DOCSTART-(\s|$)")


class FormatError(ValueError):
    """A raw file that does not parse as its format; the message starts with file:line."""


def open_text(path: Path, encoding: str = "utf-8"):
    """The one way a raw file is opened: text, line endings untranslated (newline=""), so
    that CSV fields keep the line breaks they quote."""
    return open(path, encoding=encoding, newline="")


def read_lines(path: Path, encoding: str = "utf-8") -> List[str]:
    """Lines without their line breaks (blank lines kept)."""
    with open_text(path, encoding) as f:
        return f.read().splitlines()


def read_jsonl(path: Path, limit: Optional[int] = None) -> List[dict]:
    """One JSON value per line, blank lines skipped; the first `limit` values (all: None)."""
    rows: List[dict] = []
    with open_text(path) as f:
        for number, line in enumerate(f, 1):
            if limit is not None and len(rows) >= limit:
                break
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except ValueError as err:
                    raise FormatError(f"{path}:{number}: not one JSON value per line ({err})") from None
    return rows


def read_json(path: Path, encoding: str = "utf-8"):
    """A whole-file JSON document (SQuAD, CLINC, SNIPS ...)."""
    with open_text(path, encoding) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as err:
            raise FormatError(f"{path}:{err.lineno}: not JSON ({err.msg})") from None


def read_tsv(path: Path, encoding: str = "utf-8") -> List[List[str]]:
    """Non-blank lines split at every TAB: several sets hold unbalanced '"', so no CSV quoting."""
    return [line.split("\t") for line in read_lines(path, encoding) if line.strip()]


def read_csv(path: Path, encoding: str = "utf-8") -> List[dict]:
    """CSV with a header row: one {column: value} per row."""
    with open_text(path, encoding) as f:
        return list(csv.DictReader(f))


OBQA_CHOICE = re.compile(r"\(([A-D])\)\s*")


def read_openbookqa(path: Path) -> List[Optional[dict]]:
    """{id, question_stem, choices: {text, label}, answerKey} per row of an OpenBookQA TSV
    (a header, then `ID  Question Stem  Choices  Answer Key ...`, the choices written
    "(A) ... (B) ... (C) ... (D) ..."); None for a row whose choices or answer key do not parse."""
    rows = read_tsv(path)
    head = [h.strip() for h in rows[0]]
    out: List[Optional[dict]] = []
    for row in rows[1:]:
        r = dict(zip(head, row))
        parts = OBQA_CHOICE.split(r.get("Choices", ""))[1:]
        labels, texts = parts[0::2], [t.strip() for t in parts[1::2]]
        if labels != ["A", "B", "C", "D"] or r.get("Answer Key", "").strip() not in labels:
            out.append(None)
            continue
        out.append({"id": r["ID"], "question_stem": r["Question Stem"].strip(),
                    "choices": {"text": texts, "label": labels}, "answerKey": r["Answer Key"].strip()})
    return out


def mention_sentence(row: dict) -> Tuple[str, int, int]:
    """(sentence, mention start, mention end) of a UFET row (`left_context_token`,
    `mention_span`, `right_context_token`): the tokens joined by single spaces, one way for
    the converter and the leakage guard."""
    left = " ".join(row["left_context_token"])
    start = len(left) + (1 if left else 0)
    end = start + len(row["mention_span"])
    text = " ".join(t for t in (left, row["mention_span"], " ".join(row["right_context_token"])) if t)
    return text, start, end


# ---------------------------------------------------------------- tagged tokens (CoNLL / BIO)
def read_columns(path: Path, sep: Optional[str] = None, comment: Optional[Pattern] = None,
                 min_columns: int = 2) -> Iterator[List[List[str]]]:
    """Sentences of a one-token-per-line file: each line split at `sep` (None: any whitespace),
    a blank line ends a sentence, lines `comment` matches are skipped. A token line with fewer
    than `min_columns` columns raises FormatError."""
    rows: List[List[str]] = []
    for number, line in enumerate(read_lines(path) + [""], 1):
        if comment is not None and comment.match(line):
            continue
        if not line.strip():
            if rows:
                yield rows
                rows = []
            continue
        columns = line.split(sep)
        if len(columns) < min_columns:
            raise FormatError(f"{path}:{number}: expected a token and its tag, got {line!r}")
        rows.append(columns)


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
    """(words, IOB2 tags) per sentence of a `token<whitespace>...<whitespace>tag` file (the tag
    in the last column); -DOCSTART- lines are skipped and entity types renamed through tag_map."""
    tag_map = tag_map or {}
    sentences = []
    for rows in read_columns(path, comment=DOCSTART):
        tags = [row[-1] if row[-1] == "O" else row[-1][:2] + tag_map.get(row[-1][2:], row[-1][2:]) for row in rows]
        sentences.append(([row[0] for row in rows], iob2(tags)))
    return sentences


def read_tagged(path: Path, sep: Optional[str] = None, tag_col: int = -1, offsets: bool = False,
                comment: Optional[Pattern] = None) -> Iterator[Sentence]:
    """(text, spans, number of tokens) per sentence of a CoNLL variant: columns split at `sep`
    (tab files: `token<TAB>tag...`, tag_col=1; MultiCoNER `token _ _ TAG`, HarveyNER `token TAG`),
    comment lines skipped, and tokens joined by single spaces or, with `offsets` (AnEM `token
    start end TAG`), spaced as the document had them. IOB2 tags; an I- tag after O or another
    type starts a new entity (robust to IOB1 slips)."""
    for rows in read_columns(path, sep, comment, min_columns=4 if offsets else max(2, tag_col + 1)):
        yield _assemble(rows, tag_col, offsets)


def _assemble(rows: List[List[str]], tag_col: int, offsets: bool) -> Sentence:
    text, spans, cur, prev_end = "", defaultdict(list), None, 0
    for cols in rows:
        tok, tag = cols[0], cols[tag_col].strip()
        if text and (not offsets or int(cols[1]) > prev_end):
            text += " "
        start = len(text)
        text += tok
        prev_end = int(cols[2]) if offsets else 0
        kind = tag[2:] if tag != "O" else None
        if tag.startswith("B-") or (tag.startswith("I-") and cur != kind):
            spans[kind].append([start, len(text)])
        elif tag.startswith("I-"):
            spans[kind][-1][1] = len(text)
        cur = kind
    return text, dict(spans), len(rows)
