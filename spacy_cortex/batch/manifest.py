"""The manifest of a job: what it is and which shards are finished.

`manifest.json` in the shard folder:
{"job": {inputs, text_field, shard_size, formats, pipeline}, "complete": bool,
 "shards": [{"index", "file", "first_line", "last_line", "docs", "rejects"}, ...]}.
A shard is finished once it is listed; its files were renamed into place before, so a
listed shard is always whole. The file is replaced atomically after each shard.
"""
import json
import textwrap
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List

from .files import write_atomic_text

MANIFEST = "manifest.json"


@dataclass
class ShardEntry:
    """One finished shard: input lines first_line..last_line of `file` (as named in the
    job), giving `docs` output records and `rejects` rejected records."""

    index: int
    file: str
    first_line: int
    last_line: int
    docs: int = 0
    rejects: int = 0


def short(value, width: int = 80) -> str:
    """A job setting as JSON, shortened to `width` characters at a word, for messages."""
    return textwrap.shorten(json.dumps(value), width, placeholder=" …")


class Manifest:
    def __init__(self, path: Path, job: dict, shards: Dict[int, ShardEntry], complete: bool):
        self.path = path
        self.job = job
        self.shards = shards
        self.complete = complete

    @classmethod
    def open(cls, folder: Path, job: dict, resume: bool) -> "Manifest":
        """The manifest of `folder`: the job found there when resuming (it must be the
        same job), else a new one. Raises ValueError for a folder that holds a job
        without resume, another job, or other files (nothing is changed then)."""
        path = folder / MANIFEST
        job = json.loads(json.dumps(job))  # as read back: tuples are lists
        if path.exists():
            data = json.loads(path.read_text(encoding="utf8"))
            if not resume:
                raise ValueError(f"{folder} holds a job (its {MANIFEST}): give --resume to finish it, "
                                 f"another output, or delete {folder} to start over")
            changed = [f"{key} {short(data['job'].get(key))} (now {short(job[key])})"
                       for key in job if data["job"].get(key) != job[key]]
            if changed:
                raise ValueError(f"--resume: the job in {folder} was started with {'; '.join(changed)}: "
                                 f"give the same, or delete {folder} to start over")
            shards = {s["index"]: ShardEntry(**s) for s in data["shards"]}
            return cls(path, job, shards, data["complete"])
        if folder.exists() and any(folder.iterdir()):
            raise ValueError(f"{folder} is not empty and holds no job: give a new or empty folder")
        folder.mkdir(parents=True, exist_ok=True)
        manifest = cls(path, job, {}, False)
        manifest.save()
        return manifest

    def add(self, entry: ShardEntry) -> None:
        self.shards[entry.index] = entry
        self.save()

    def mark_complete(self) -> None:
        self.complete = True
        self.save()

    def finished(self) -> List[ShardEntry]:
        return [self.shards[i] for i in sorted(self.shards)]

    def save(self) -> None:
        data = {"job": self.job, "complete": self.complete, "shards": [asdict(s) for s in self.finished()]}
        write_atomic_text(self.path, json.dumps(data, ensure_ascii=False, indent=1))
