"""Shards: the unit of work that is written whole and resumed.

Shard rule (both engines): each input is cut into blocks of `shard_size` records (lines),
numbered 0, 1, 2, ... over the inputs in order. A shard's files are written under
temporary names and renamed when the shard is complete; then the manifest lists it.

Targets (where a job writes):
- `StdoutTarget`: JSONL on stdout, rejects on stderr; cannot be resumed.
- `FolderTarget`: part-00000.jsonl (and/or .spacy, .parquet) ... in a folder, with
  manifest.json, and rejects.jsonl once the job is complete.
- `FileTarget`: one file; its shards wait in `<file>.parts/` and are merged when the job
  is complete, so an existing file is replaced only by a complete one.
"""
import shutil
import sys
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc
from spacy.vocab import Vocab
from tqdm import tqdm

from .files import concat_files
from .formats import MERGERS, SUFFIXES, WRITERS, Add, jsonl_writer
from .manifest import Manifest, ShardEntry
from .readers import Item, Source, read_source, scan_lines
from .records import json_line
from .rejects import Reject, RejectedRecord

REJECTS = "rejects.jsonl"


def iter_shards(sources: Sequence[Source], shard_size: int, text_field: str,
                vocab: Vocab) -> Iterator[Tuple[int, str, Iterator[Union[Item, Reject]]]]:
    """(index, file, records) of every shard, read lazily in one pass (stdin too); a
    shard's records must be consumed before the next shard is asked for."""
    index = 0
    for source in sources:
        records = read_source(source, text_field, vocab=vocab)
        for _, block in groupby(records, key=lambda r: (r.line - 1) // shard_size):
            yield index, source.name, block
            index += 1


@dataclass(frozen=True)
class ShardPlan:
    """Where a shard is, so that any process can read it alone: `lines` records from
    `first_line` of `path`, which starts `offset` bytes into the file."""

    index: int
    file: str
    path: str
    kind: str
    first_line: int
    lines: int
    offset: int


def plan_shards(sources: Sequence[Source], shard_size: int) -> List[ShardPlan]:
    """The shards of text and JSONL files (one pass over their lines), numbered as
    iter_shards numbers them."""
    plans = []
    for source in sources:
        count, offsets = scan_lines(source.path, shard_size)
        for block, offset in enumerate(offsets):
            first = block * shard_size + 1
            plans.append(ShardPlan(len(plans), source.name, str(source.path.resolve()), source.kind,
                                   first, min(shard_size, count - first + 1), offset))
    return plans


class ShardOutput:
    """What one shard receives: output records (with their docs) and rejects; counts
    them and their line range. With strict, a reject raises RejectedRecord."""

    def __init__(self, index: int, file: str, write: Add, write_reject: Callable[[Reject], None], strict: bool):
        self.entry = ShardEntry(index, file, first_line=0, last_line=0)
        self._write = write
        self._write_reject = write_reject
        self._strict = strict

    def add(self, line: int, record: dict, doc: Optional[Doc] = None) -> None:
        self._saw(line)
        self.entry.docs += 1
        self._write(record, doc)

    def reject(self, reject: Reject) -> None:
        if self._strict:
            raise RejectedRecord(reject)
        self._saw(reject.line)
        self.entry.rejects += 1
        self._write_reject(reject)

    def _saw(self, line: int) -> None:
        self.entry.first_line = min(self.entry.first_line or line, line)
        self.entry.last_line = max(self.entry.last_line, line)


class StdoutTarget:
    def __init__(self, strict: bool):
        self.strict = strict
        self._entries: List[ShardEntry] = []

    def is_finished(self, index: int) -> bool:
        return False

    def entries(self) -> List[ShardEntry]:
        return self._entries

    @contextmanager
    def shard(self, index: int, file: str) -> Iterator[ShardOutput]:
        out = ShardOutput(index, file, lambda record, doc: sys.stdout.write(json_line(record)),
                          lambda r: tqdm.write(f"rejected {r.where}: {r.reason}", file=sys.stderr), self.strict)
        yield out
        self._entries.append(out.entry)

    def finish(self) -> Tuple[List[Path], Optional[Path]]:
        sys.stdout.flush()
        return [], None


class FolderTarget:
    def __init__(self, folder: Path, formats: Sequence[str], job: dict, resume: bool, strict: bool):
        self.folder = folder
        self.formats = tuple(formats)
        self.strict = strict
        self.manifest = Manifest.open(folder, job, resume)

    def is_finished(self, index: int) -> bool:
        return index in self.manifest.shards

    def entries(self) -> List[ShardEntry]:
        return self.manifest.finished()

    def path(self, index: int, fmt: str) -> Path:
        return self.folder / f"part-{index:05d}{SUFFIXES[fmt]}"

    def rejects_path(self, index: int) -> Path:
        return self.folder / f"part-{index:05d}.{REJECTS}"

    @contextmanager
    def shard(self, index: int, file: str) -> Iterator[ShardOutput]:
        """A shard's files appear (renamed into place) when the block ends without an
        error, and then the manifest lists the shard; on an error none appears."""
        with ExitStack() as stack:
            adds = [stack.enter_context(WRITERS[fmt](self.path(index, fmt))) for fmt in self.formats]
            out = ShardOutput(index, file, lambda record, doc: [add(record, doc) for add in adds],
                              self._rejects_writer(stack, index), self.strict)
            yield out
        self.manifest.add(out.entry)

    def _rejects_writer(self, stack: ExitStack, index: int) -> Callable[[Reject], None]:
        """Writes the shard's rejects file on the first reject (most shards have none)."""
        add = None

        def write(reject: Reject) -> None:
            nonlocal add
            if add is None:
                add = stack.enter_context(jsonl_writer(self.rejects_path(index)))
            add(reject.as_record(), None)

        return write

    def _rejects_parts(self) -> List[Path]:
        return [self.rejects_path(e.index) for e in self.entries() if e.rejects]

    def _remove_rejects_parts(self) -> None:
        for part in self.folder.glob(f"part-*.{REJECTS}"):  # also those of shards redone
            part.unlink()

    def finish(self) -> Tuple[List[Path], Optional[Path]]:
        """Gathers the shards' rejects into rejects.jsonl and marks the job complete;
        returns (output files, rejects file)."""
        rejects = self.folder / REJECTS
        if not self.manifest.complete:
            concat_files(self._rejects_parts(), rejects)
            self.manifest.mark_complete()
        self._remove_rejects_parts()
        return [self.path(e.index, fmt) for e in self.entries() for fmt in self.formats], rejects


class FileTarget(FolderTarget):
    """One output file, .spacy (a DocBin) or else JSONL; rejects in `<stem>.rejects.jsonl`."""

    def __init__(self, path: Path, job: dict, resume: bool, strict: bool):
        self.file = path
        super().__init__(path.with_name(path.name + ".parts"), [file_format(path)], job, resume, strict)

    def finish(self) -> Tuple[List[Path], Optional[Path]]:
        fmt = self.formats[0]
        MERGERS[fmt]([self.path(e.index, fmt) for e in self.entries()], self.file)
        rejects = self.file.with_name(f"{self.file.stem}.{REJECTS}")
        concat_files(self._rejects_parts(), rejects)
        shutil.rmtree(self.folder)
        return [self.file], rejects


def file_format(path: Path) -> str:
    """The format of an output file: spacy for .spacy, else jsonl."""
    return "spacy" if path.suffix == ".spacy" else "jsonl"


Target = Union[StdoutTarget, FolderTarget]
