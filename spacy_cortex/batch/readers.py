"""Inputs of a batch job, read lazily one record at a time.

- text (any suffix but .jsonl / .spacy, and stdin): one document per line. Only "\\n" ends
  a line (a lone "\\r" is text; "\\r\\n" counts as "\\n"); an empty line is an empty document.
- text and .jsonl lines lose every byte-order mark (U+FEFF): the one opening a file is an
  encoding artifact, and one further on comes from files joined together (`cat a.txt b.txt
  | ... -`), where it would otherwise stick to the next word and end up inside an entity
  ("\\ufeffEmma Watson"). Its other use, a zero-width no-break space, is deprecated (U+2060).
- .jsonl: one JSON object per line; `text_field` is the text, every other field is passed
  through to the output record.
- .spacy: a DocBin; its docs are annotated as they are.

Every line gives exactly one `Item` or one `Reject` (undecodable bytes, malformed JSON, a
missing, null or non-string text, a blank line in JSONL), numbered from 1.
"""
import glob
import json
import sys
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, ContextManager, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc, DocBin
from spacy.vocab import Vocab

from .rejects import Reject

STDIN = "-"
BOM = "\ufeff"
KINDS = {".jsonl": "jsonl", ".spacy": "spacy"}  # any other suffix: text
FOLDER_SUFFIXES = (".txt", ".jsonl", ".spacy")


@dataclass(frozen=True)
class Source:
    """One input: a file (path) or stdin (path None), read as `kind` (text, jsonl, spacy)."""

    path: Optional[Path]
    kind: str

    @property
    def name(self) -> str:
        return "<stdin>" if self.path is None else str(self.path)


@dataclass
class Item:
    """One document: `text` (a Doc for .spacy input) and the other `fields` of its record."""

    file: str
    line: int
    text: Union[str, Doc]
    fields: Dict[str, object] = field(default_factory=dict)


class BadRecord(ValueError):
    """Why one line is not a document (becomes a Reject)."""


def resolve_inputs(patterns: Sequence[str]) -> List[Source]:
    """Files, folders (their .txt, .jsonl and .spacy files, sorted), glob patterns (sorted,
    ** for subfolders) or "-" (stdin, alone), in the order given; a file named twice is
    read once. Raises ValueError for no input or one that names nothing."""
    if not patterns:
        raise ValueError("Give at least one input: a file, folder, glob pattern or - (stdin)")
    if STDIN in patterns:
        if len(patterns) > 1:
            raise ValueError("- (stdin) cannot be combined with other inputs")
        return [Source(None, "text")]
    paths: Dict[Path, Path] = {}
    for pattern in patterns:
        for path in _expand(pattern):
            paths.setdefault(path.resolve(), path)
    return [Source(p, KINDS.get(p.suffix, "text")) for p in paths.values()]


def _expand(pattern: str) -> List[Path]:
    path = Path(pattern)
    if path.is_file():
        return [path]
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and p.suffix in FOLDER_SUFFIXES)
        if not files:
            raise ValueError(f"input folder {pattern!r} holds no {', '.join(FOLDER_SUFFIXES)} file")
        return files
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise ValueError(f"input {pattern!r}: no such file or folder, and no file matches it")
    return files


def read_source(source: Source, text_field: str = "text", *, vocab: Optional[Vocab] = None,
                offset: int = 0, first_line: int = 1) -> Iterator[Union[Item, Reject]]:
    """The records of one input, lazily. offset (bytes) and first_line start a text or
    JSONL file inside it (see scan_lines); vocab is needed for .spacy input."""
    if source.kind == "spacy":
        docs = DocBin().from_disk(source.path).get_docs(vocab)
        yield from (Item(source.name, n, doc) for n, doc in enumerate(docs, 1))
        return
    with _open_binary(source, offset) as f:
        for number, raw in enumerate(f, first_line):
            try:
                text, fields = _parse(_decode(raw), source.kind, text_field)
            except BadRecord as err:
                yield Reject(source.name, number, str(err))
            else:
                yield Item(source.name, number, text, fields)


def scan_lines(path: Path, every: int) -> Tuple[int, List[int]]:
    """(number of lines as read_source counts them, byte offsets of lines 1, every + 1,
    2 * every + 1, ...): where each shard of `every` lines starts."""
    count, offset, offsets = 0, 0, []
    with path.open("rb") as f:
        for raw in f:
            if count % every == 0:
                offsets.append(offset)
            count += 1
            offset += len(raw)
    return count, offsets


def count_records(sources: Sequence[Source]) -> Optional[int]:
    """Records in all sources (a cheap pass over the lines; a .spacy file is loaded);
    None for stdin, which cannot be read twice."""
    if any(s.path is None for s in sources):
        return None
    return sum(len(DocBin().from_disk(s.path)) if s.kind == "spacy" else scan_lines(s.path, sys.maxsize)[0]
               for s in sources)


def _open_binary(source: Source, offset: int) -> ContextManager[BinaryIO]:
    if source.path is None:
        return nullcontext(sys.stdin.buffer)  # not ours to close
    f = source.path.open("rb")
    f.seek(offset)
    return f


def _decode(raw: bytes) -> str:
    """The line as text, byte-order marks removed. Raises BadRecord for bytes that are not UTF-8."""
    raw = raw.removesuffix(b"\n").removesuffix(b"\r")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise BadRecord(f"not UTF-8: byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line") from None
    return text.replace(BOM, "")


def _parse(text: str, kind: str, text_field: str) -> Tuple[str, dict]:
    if kind == "text":
        return text, {}
    if not text.strip():
        raise BadRecord("blank line (a JSONL line must be a JSON object)")
    try:
        record = json.loads(text)
    except json.JSONDecodeError as err:
        raise BadRecord(f"malformed JSON: {err}") from None
    if not isinstance(record, dict):
        raise BadRecord(f"not a JSON object but {type(record).__name__}")
    if text_field not in record:
        raise BadRecord(f"no {text_field!r} field")
    value = record.pop(text_field)
    if not isinstance(value, str):
        raise BadRecord(f"{text_field!r} is {json.dumps(value)[:40]}, not a string")
    return value, record
