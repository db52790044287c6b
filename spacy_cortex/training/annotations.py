"""Annotated data as annotation tools export it, read into spaCy Docs for `adapt`, and the
span format that `annotate --spans` writes (pre-annotations to correct and feed back).

Formats, chosen by the file's suffix:

- .spacy: a DocBin with gold `Doc.ents` (ner) or `Doc.cats` (textcat).
- .jsonl, one JSON object per line (blank lines are not records):
  ner: {"text": ..., "spans": [{"start": 0, "end": 5, "label": "PERSON"}, ...]} (Prodigy; other
  keys such as token_start, text or score are ignored; a span may also be [start, end, label])
  or doccano's {"text": ..., "label": [[0, 5, "PERSON"], ...]}. Offsets are characters, end
  exclusive; whitespace at a span's edges is trimmed. A text without entities has "spans": [].
  textcat: {"text", "cats": {label: 0/1}} (a value is "yes" at 0.5 or above, so a probability
  works too), {"text", "label": "X"}, or {"text", "labels" / "accept" / "label": [labels]}
  (doccano, Prodigy choice); the categories not named are 0.
  Prodigy's "answer": "ignore" records are left out, as are "reject" records, except that a
  rejected single "label" (textcat) is a "no" for that label; `Annotations.skipped` counts them.
- .conll, .bio, .txt (ner only): token ... tag per line (the tag in the last column), a blank
  line between sentences, -DOCSTART- lines skipped; IOB2 (B-, I-, O) or BIOES / BILUO tags.

Every problem is an `AnnotationError` naming file:line (for .spacy, file:N for the N-th doc):
bad JSON, offsets off the text, overlapping spans, labels not declared, an I- tag that
continues no entity, an empty file. Nothing is skipped silently.

The tokens of a doc are spaCy's, split further where a span starts or ends inside a token,
so every gold span is kept exactly (cortex trains on character offsets).
"""
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Collection, Dict, Iterator, List, Optional, Sequence, Tuple

from spacy.language import Language
from spacy.tokens import Doc, DocBin, Span

TASKS = ("ner", "textcat")
TAG_SUFFIXES = (".conll", ".bio", ".txt")
SUFFIXES = (".spacy", ".jsonl") + TAG_SUFFIXES
BEGIN, INSIDE, END, SINGLE = {"B"}, {"I"}, {"E", "L"}, {"S", "U"}
YES = 0.5  # a category value at or above this is "yes"

CharSpan = Tuple[int, int, str]


class AnnotationError(ValueError):
    """Bad annotated data; the message starts with file:line."""


@dataclass
class Annotations:
    """The gold docs of one file and the records left out, by reason
    ({"answer reject": 2, "answer ignore": 1})."""

    docs: List[Doc]
    skipped: Dict[str, int] = field(default_factory=dict)


def read_annotations(path: Path, task: str, labels: Collection[str], nlp: Language,
                     exclusive: bool = True) -> Annotations:
    """The gold docs of a .spacy, .jsonl, .conll, .bio or .txt file (module docstring),
    tokenized by `nlp`. task: "ner" or "textcat"; labels: the declared labels; exclusive
    (textcat): at most one category per text. Raises AnnotationError (file:line) for bad
    data, an empty file or a suffix it cannot read, FileNotFoundError for no file."""
    path = Path(path)
    if task not in TASKS:
        raise ValueError(f"task {task!r}: use one of {', '.join(TASKS)}")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".spacy":
        found = read_docbin(path, task, labels, nlp, exclusive)
    elif suffix == ".jsonl":
        found = read_jsonl(path, task, labels, nlp, exclusive)
    elif suffix in TAG_SUFFIXES and task == "ner":
        found = Annotations(read_tags(path, labels, nlp))
    else:
        takes = SUFFIXES if task == "ner" else (".spacy", ".jsonl")
        raise AnnotationError(f"{path}: {task} reads {', '.join(takes)} files, not {suffix or 'no suffix'}")
    if not found.docs:
        why = f"every record was left out: {found.skipped}" if found.skipped else "the file is empty"
        raise AnnotationError(f"{path}:1: no annotated records ({why})")
    return found


# ---------------------------------------------------------------- .spacy

def read_docbin(path: Path, task: str, labels: Collection[str], nlp: Language, exclusive: bool) -> Annotations:
    """The docs of a DocBin, their Doc.ents (ner) or Doc.cats (textcat) checked against `labels`."""
    try:
        docs = list(DocBin().from_disk(path).get_docs(nlp.vocab))
    except (ValueError, KeyError, OSError) as err:
        raise AnnotationError(f"{path}:1: not a spaCy DocBin ({err})") from None
    for number, doc in enumerate(docs, 1):
        where = f"{path}:{number} (doc {number})"
        if task == "ner":
            for ent in doc.ents:
                check_label(ent.label_, labels, where)
        else:
            doc.cats = complete_cats({k: category_value(v, k, where) for k, v in doc.cats.items()}, labels,
                                     exclusive, where)
    return Annotations(docs)


# ---------------------------------------------------------------- .jsonl

def read_jsonl(path: Path, task: str, labels: Collection[str], nlp: Language, exclusive: bool) -> Annotations:
    """One doc per record (module docstring); Prodigy answers that leave a record out are counted."""
    docs, skipped = [], Counter()
    for number, record in jsonl_records(path):
        where = f"{path}:{number}"
        text = record.get("text")
        if not isinstance(text, str):
            raise AnnotationError(f"{where}: 'text' must be a string, got {json.dumps(text)[:40]}")
        if not text.strip():
            raise AnnotationError(f"{where}: the text is empty (or whitespace only): nothing to learn from")
        answer = record.get("answer", "accept")
        if answer not in ("accept", "reject", "ignore"):
            raise AnnotationError(f"{where}: 'answer' {answer!r}: Prodigy answers are accept, reject or ignore")
        if answer == "ignore" or (answer == "reject" and not (task == "textcat" and isinstance(record.get("label"), str))):
            skipped[f"answer {answer}"] += 1
            continue
        if task == "ner":
            docs.append(ner_doc(nlp, text, record_spans(record, where), labels, where))
        else:
            doc = nlp.make_doc(text)
            doc.cats = record_cats(record, labels, exclusive, where)
            docs.append(doc)
    return Annotations(docs, dict(skipped))


def numbered_lines(path: Path) -> Iterator[Tuple[int, str]]:
    """(line number, line) of a UTF-8 file (a byte-order mark dropped). Raises
    AnnotationError (file:line) for bytes that are not UTF-8."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            try:
                yield number, raw.decode("utf-8").lstrip("\ufeff")
            except UnicodeDecodeError as err:
                raise AnnotationError(f"{path}:{number}: not UTF-8 (byte {err.start + 1} of the line)") from None


def jsonl_records(path: Path) -> Iterator[Tuple[int, dict]]:
    """(line number, object) per non-blank line. Raises AnnotationError for bytes that are
    not UTF-8, malformed JSON or a line that is not an object."""
    for number, line in numbered_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise AnnotationError(f"{path}:{number}: malformed JSON: {err}") from None
        if not isinstance(record, dict):
            raise AnnotationError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def record_spans(record: dict, where: str) -> List[CharSpan]:
    """(start, end, label) of a record's "spans" (Prodigy: objects, or [start, end, label]
    lists) or doccano's "label" list."""
    items = record.get("spans", record.get("label"))
    if not isinstance(items, list):
        raise AnnotationError(f"{where}: no 'spans' list (doccano: 'label'); a text without entities has \"spans\": []")
    spans = []
    for item in items:
        if isinstance(item, dict):
            item = [item.get("start"), item.get("end"), item.get("label")]
        if not (isinstance(item, list) and len(item) == 3 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                 for v in item[:2]) and isinstance(item[2], str)):
            raise AnnotationError(f"{where}: a span must have integer 'start' and 'end' and a string 'label', "
                                  f"got {json.dumps(item)[:80]}")
        spans.append((item[0], item[1], item[2]))
    return spans


def record_cats(record: dict, labels: Collection[str], exclusive: bool, where: str) -> Dict[str, float]:
    """A textcat record's categories as {label: 0.0 or 1.0} (module docstring)."""
    label = record.get("label")
    named = [k for k in ("label", "labels", "accept") if k in record]
    if isinstance(record.get("cats"), dict) and named:
        raise AnnotationError(f"{where}: both 'cats' and {named[0]!r} give the categories: keep one (a corrected "
                              f"'{named[0]}' beside the 'cats' that annotate --spans predicted: delete 'cats')")
    if isinstance(record.get("cats"), dict):
        given = {k: category_value(v, k, where) for k, v in record["cats"].items()}
    elif isinstance(label, str):
        given = {label: 0.0 if record.get("answer") == "reject" else 1.0}
        if record.get("answer") == "reject":
            check_label(label, labels, where)
            return given  # only this label is known
    else:
        named = next((record[k] for k in ("labels", "accept", "label") if isinstance(record.get(k), list)), None)
        if named is None or not all(isinstance(n, str) for n in named):
            raise AnnotationError(f"{where}: no categories: give 'cats' {{label: 0/1}}, 'label' or a list "
                                  "'labels' / 'accept' of label strings")
        given = {n: 1.0 for n in named}
    return complete_cats(given, labels, exclusive, where)


def category_value(value, label: str, where: str) -> float:
    """A category's value as 1.0 (at or above 0.5) or 0.0. Raises AnnotationError for a
    value that is not a number (or bool) in [0, 1]."""
    if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise AnnotationError(f"{where}: category {label!r} has value {json.dumps(value)[:40]}; use 0 or 1")
    return 1.0 if value >= YES else 0.0


def complete_cats(given: Dict[str, float], labels: Collection[str], exclusive: bool, where: str) -> Dict[str, float]:
    """Every declared label, 0.0 where not given. Raises AnnotationError for an undeclared
    label, or several "yes" where the categories are exclusive."""
    for label in given:
        check_label(label, labels, where)
    yes = sorted(label for label, value in given.items() if value)
    if exclusive and len(yes) > 1:
        raise AnnotationError(f"{where}: {len(yes)} categories apply ({', '.join(yes)}) but the categories are "
                              "exclusive (one per text): give --multi-label")
    return {label: given.get(label, 0.0) for label in sorted(labels)}


# ---------------------------------------------------------------- spans onto tokens

def ner_doc(nlp: Language, text: str, spans: Sequence[CharSpan], labels: Collection[str], where: str) -> Doc:
    """A doc of `text` whose Doc.ents are `spans` (characters, end exclusive; edges trimmed
    of whitespace). Raises AnnotationError for a span off the text, empty, overlapping
    another or with an undeclared label."""
    checked = sorted(checked_span(text, span, labels, where) for span in spans)
    for (s1, e1, l1), (s2, e2, l2) in zip(checked, checked[1:]):
        if s2 < e1:
            raise AnnotationError(f"{where}: overlapping spans {text[s1:e1]!r} [{s1}, {e1}) {l1} and "
                                  f"{text[s2:e2]!r} [{s2}, {e2}) {l2}: an entity cannot overlap another")
    doc = aligned_doc(nlp, text, [offset for s, e, _ in checked for offset in (s, e)])
    doc.ents = [doc.char_span(s, e, label=label) for s, e, label in checked]
    return doc


def checked_span(text: str, span: CharSpan, labels: Collection[str], where: str) -> CharSpan:
    """The span trimmed of whitespace at its edges, checked."""
    start, end, label = span
    if not start < end:
        raise AnnotationError(f"{where}: span [{start}, {end}) {label} is empty or reversed: its end must come "
                              "after its start (offsets are characters, end exclusive)")
    if not 0 <= start < end <= len(text):
        raise AnnotationError(f"{where}: span [{start}, {end}) {label} is off the text ({len(text)} characters; "
                              "offsets are characters, end exclusive)")
    check_label(label, labels, where)
    piece = text[start:end]
    if not piece.strip():
        raise AnnotationError(f"{where}: span [{start}, {end}) {label} holds only whitespace")
    start += len(piece) - len(piece.lstrip())
    end -= len(piece) - len(piece.rstrip())
    return start, end, label


def check_label(label: str, labels: Collection[str], where: str) -> None:
    if label not in labels:
        raise AnnotationError(f"{where}: label {label!r} is not declared (declared: {', '.join(sorted(labels))}; "
                              "adapt: add it with --label; evaluate: the pipeline has no such label)")


def aligned_doc(nlp: Language, text: str, cuts: Sequence[int]) -> Doc:
    """nlp's tokens of `text`, split further at the character offsets `cuts` that fall
    inside a token (a span boundary), so that every span is whole tokens; the text is unchanged."""
    doc = nlp.make_doc(text)
    bounds = {t.idx for t in doc} | {t.idx + len(t) for t in doc}
    inside = sorted(set(cuts) - bounds)
    if not inside:
        return doc
    words, spaces = [], []
    for token in doc:
        start, end = token.idx, token.idx + len(token)
        points = [start] + [c for c in inside if start < c < end] + [end]
        words += [text[a:b] for a, b in zip(points, points[1:])]
        spaces += [False] * (len(points) - 2) + [bool(token.whitespace_)]
    return Doc(doc.vocab, words=words, spaces=spaces)


# ---------------------------------------------------------------- CoNLL / BIO

def read_tags(path: Path, labels: Collection[str], nlp: Language) -> List[Doc]:
    """One doc per sentence of a token/tag file, its words joined by single spaces."""
    docs = []
    for rows in tag_sentences(path):
        words = [word for _, word, _ in rows]
        doc = Doc(nlp.vocab, words=words, spaces=[True] * (len(words) - 1) + [False])
        doc.ents = [Span(doc, start, end, label) for start, end, label in tag_spans(path, rows, labels)]
        docs.append(doc)
    return docs


def tag_sentences(path: Path) -> Iterator[List[Tuple[int, str, str]]]:
    """(line number, token, tag) rows of each sentence. Raises AnnotationError for a line
    with fewer than two columns or bytes that are not UTF-8."""
    rows: List[Tuple[int, str, str]] = []
    for number, line in numbered_lines(path):
        columns = line.split()
        if not columns or columns[0] == "-DOCSTART-":
            if rows:
                yield rows
            rows = []
            continue
        if len(columns) < 2:
            raise AnnotationError(f"{path}:{number}: expected a token and its tag, got {line.strip()!r}")
        rows.append((number, columns[0], columns[-1]))
    if rows:
        yield rows


def tag_spans(path: Path, rows: Sequence[Tuple[int, str, str]], labels: Collection[str]) -> List[Tuple[int, int, str]]:
    """(first token, end token, label) of the entities of one sentence's tags. Raises
    AnnotationError (file:line) for a malformed tag, an undeclared label, or a tag that
    continues no entity (I-, E- or L- after O or after another type: IOB1 files are not read)."""
    spans: List[List] = []
    open_label: Optional[str] = None
    for i, (number, _, tag) in enumerate(rows):
        where = f"{path}:{number}"
        if tag == "O":
            open_label = None
            continue
        prefix, sep, label = tag.partition("-")
        if not sep or not label or prefix not in BEGIN | INSIDE | END | SINGLE:
            raise AnnotationError(f"{where}: tag {tag!r}: use O or B-, I- (IOB2), E-/L-, S-/U- (BIOES) with a label "
                                  "(.conll, .bio and .txt files are read as token and tag per line; plain text "
                                  "goes through `annotate --spans` first)")
        check_label(label, labels, where)
        if prefix in INSIDE | END:
            if open_label != label:
                before = rows[i - 1][2] if i else "the sentence start"
                raise AnnotationError(f"{where}: bad BIO sequence: {tag} after {before} (an I- tag must continue "
                                      f"a B-{label} or I-{label}; convert IOB1 files to IOB2)")
            spans[-1][1] = i + 1
        else:
            spans.append([i, i + 1, label])
        open_label = label if prefix in BEGIN | INSIDE else None
    return [tuple(span) for span in spans]


# ---------------------------------------------------------------- writing

def span_record(text: str, fields: dict, annotations: dict) -> dict:
    """The span format of annotation tools for one annotated document: the input record's
    other `fields`, "text", "spans": [{"start", "end", "label", "score"}] from the
    annotations' "ents" (batch.records.doc_annotations), then the other annotations that are
    not None (cats: {label: probability}, answers, relations). read_annotations reads it back."""
    spans = [{"start": e["start_char"], "end": e["end_char"], "label": e["label"], "score": e["score"]}
             for e in annotations.get("ents") or []]
    record = {**fields, "text": text, "spans": spans}
    record.update((k, v) for k, v in annotations.items() if k != "ents" and v is not None)
    return record
