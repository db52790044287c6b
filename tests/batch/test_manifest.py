"""The manifest: a new job, the same job resumed, and what may not be resumed."""
import json

import pytest

from spacy_cortex.batch.manifest import Manifest, ShardEntry

JOB = {"inputs": [{"file": "a.txt", "size": 3}], "shard_size": 2, "formats": ("jsonl",)}


def test_finished_shards_survive_a_reopen(tmp_path):
    manifest = Manifest.open(tmp_path / "out", JOB, resume=False)
    manifest.add(ShardEntry(1, "a.txt", 3, 4, docs=1, rejects=1))
    manifest.add(ShardEntry(0, "a.txt", 1, 2, docs=2))
    again = Manifest.open(tmp_path / "out", JOB, resume=True)
    assert again.finished() == [ShardEntry(0, "a.txt", 1, 2, 2, 0), ShardEntry(1, "a.txt", 3, 4, 1, 1)]
    assert not again.complete
    again.mark_complete()
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["complete"] is True


def test_resume_without_a_manifest_starts_the_job(tmp_path):
    assert Manifest.open(tmp_path / "new", JOB, resume=True).finished() == []


def test_a_job_is_not_overwritten_or_mixed(tmp_path):
    Manifest.open(tmp_path / "out", JOB, resume=False)
    with pytest.raises(ValueError, match="holds a job .* give --resume .* or delete .* to start over"):
        Manifest.open(tmp_path / "out", JOB, resume=False)
    # the message says which settings differ, with both values, and how to start over
    with pytest.raises(ValueError, match=r'started with inputs \[\{"file": "a.txt", "size": 3\}\] \(now \[\]\); shard_size 2 \(now 3\): '
                                         r"give the same, or delete .* to start over"):
        Manifest.open(tmp_path / "out", {**JOB, "inputs": [], "shard_size": 3}, resume=True)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "data.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        Manifest.open(tmp_path / "other", JOB, resume=True)
    assert [p.name for p in (tmp_path / "other").iterdir()] == ["data.txt"]
