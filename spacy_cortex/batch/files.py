"""Files that appear whole or not at all."""
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Sequence

PARTIAL_SUFFIX = ".partial"


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary name beside `path` to write to; when the block ends without an error the
    file is flushed to disk and renamed to `path` (replacing it), so a crash or power loss
    leaves the old file or the new one, never a part. On an error it is removed."""
    partial = path.with_name(path.name + PARTIAL_SUFFIX)
    try:
        yield partial
        _fsync(partial)
        os.replace(partial, path)
        _fsync(path.parent)  # the rename itself
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def concat_files(parts: Sequence[Path], path: Path) -> None:
    """`path` (atomically) = the parts' bytes one after another."""
    with atomic_path(path) as partial, partial.open("wb") as out:
        for part in parts:
            with part.open("rb") as f:
                shutil.copyfileobj(f, out)


def write_atomic_text(path: Path, text: str) -> None:
    with atomic_path(path) as partial:
        partial.write_text(text, encoding="utf8")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
