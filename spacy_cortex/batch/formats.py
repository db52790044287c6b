"""Output formats: a writer per format (one shard file, written atomically) and how the
shards of one format become one file.

- jsonl: one output record per line (UTF-8).
- spacy: a DocBin of the annotated docs; the passthrough fields are in `doc.user_data`.
- parquet: the output records as columns (needs pyarrow, installed with the `ray` extra);
  nested values (ents, cats, answers) become list and struct columns.
"""
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, List, Optional, Sequence

from spacy.tokens import Doc, DocBin

from .files import atomic_path, concat_files
from .records import json_line

Add = Callable[[dict, Optional[Doc]], None]  # add(record, doc)
SUFFIXES = {"jsonl": ".jsonl", "spacy": ".spacy", "parquet": ".parquet"}


@contextmanager
def jsonl_writer(path: Path) -> Iterator[Add]:
    """Streams records to a JSONL file that appears at `path` when the block ends."""
    with atomic_path(path) as partial, partial.open("w", encoding="utf8") as f:
        yield lambda record, doc=None: f.write(json_line(record))


@contextmanager
def docbin_writer(path: Path) -> Iterator[Add]:
    """Collects the docs (user data included) into a DocBin written when the block ends."""
    docbin = DocBin(store_user_data=True)
    with atomic_path(path) as partial:
        yield lambda record, doc: docbin.add(doc)
        docbin.to_disk(partial)


@contextmanager
def parquet_writer(path: Path) -> Iterator[Add]:
    """Collects the records into a Parquet file written when the block ends; the columns
    are the union of the records' keys (missing values are null)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    records: List[dict] = []
    with atomic_path(path) as partial:
        yield lambda record, doc=None: records.append(record)
        table = pa.Table.from_struct_array(pa.array(records)) if records else pa.table({})
        pq.write_table(table, partial)


WRITERS = {"jsonl": jsonl_writer, "spacy": docbin_writer, "parquet": parquet_writer}


def merge_docbins(parts: Sequence[Path], path: Path) -> None:
    """`path` (atomically) = one DocBin of the parts' docs, in order (held in memory)."""
    merged = DocBin(store_user_data=True)
    for part in parts:
        merged.merge(DocBin(store_user_data=True).from_disk(part))
    with atomic_path(path) as partial:
        merged.to_disk(partial)


MERGERS = {"jsonl": concat_files, "spacy": merge_docbins}  # formats an output file can have
