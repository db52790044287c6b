"""Shards: one numbering for both engines; a shard appears whole, then is listed."""
import json

import pytest
import spacy

from spacy_cortex.batch.readers import resolve_inputs
from spacy_cortex.batch.rejects import Reject, RejectedRecord
from spacy_cortex.batch.shards import FileTarget, FolderTarget, iter_shards, plan_shards

JOB = {"inputs": [], "formats": ["jsonl"]}


def test_streamed_and_planned_shards_are_numbered_alike(tmp_path):
    (tmp_path / "a.txt").write_text("".join(f"a{i}\n" for i in range(5)))
    (tmp_path / "b.jsonl").write_text("".join(json.dumps({"text": f"b{i}"}) + "\n" for i in range(2)))
    (tmp_path / "c.txt").write_text("")
    sources = resolve_inputs([str(tmp_path / n) for n in ("a.txt", "b.jsonl", "c.txt")])
    streamed = [(i, f, [r.line for r in records]) for i, f, records in
                iter_shards(sources, 2, "text", spacy.blank("en").vocab)]
    planned = [(p.index, p.file, list(range(p.first_line, p.first_line + p.lines))) for p in plan_shards(sources, 2)]
    a, b = str(tmp_path / "a.txt"), str(tmp_path / "b.jsonl")
    assert streamed == planned == [(0, a, [1, 2]), (1, a, [3, 4]), (2, a, [5]), (3, b, [1, 2])]
    assert [p.offset for p in plan_shards(sources, 2)] == [0, 6, 12, 0]


def test_a_failed_shard_leaves_no_file_and_no_entry(tmp_path):
    target = FolderTarget(tmp_path / "out", ["jsonl", "spacy"], JOB, resume=False, strict=False)
    nlp = spacy.blank("en")
    with pytest.raises(RuntimeError):
        with target.shard(0, "a.txt") as out:
            out.add(1, {"text": "x"}, nlp("x"))
            out.reject(Reject("a.txt", 2, "bad"))
            raise RuntimeError("killed")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.json"]
    assert not target.is_finished(0)


def test_rejects_of_listed_shards_are_gathered_once(tmp_path):
    target = FolderTarget(tmp_path / "out", ["jsonl"], JOB, resume=False, strict=False)
    target.rejects_path(1).write_text('{"stale": "from an attempt that was redone"}\n')
    for index in (0, 1):
        with target.shard(index, "a.txt") as out:
            out.add(2 * index + 1, {"text": "ok"})
            if index == 0:
                out.reject(Reject("a.txt", 2, "bad"))
    outputs, rejects = target.finish()
    assert [p.name for p in outputs] == ["part-00000.jsonl", "part-00001.jsonl"]
    assert [json.loads(line) for line in rejects.read_text().splitlines()] == [
        {"file": "a.txt", "line": 2, "reason": "bad"}]
    assert not list((tmp_path / "out").glob("part-*.rejects.jsonl"))
    assert [(e.first_line, e.last_line, e.docs, e.rejects) for e in target.entries()] == [(1, 2, 1, 1), (3, 3, 1, 0)]


def test_strict_makes_a_reject_an_error(tmp_path):
    target = FolderTarget(tmp_path / "out", ["jsonl"], JOB, resume=False, strict=True)
    with pytest.raises(RejectedRecord, match="a.txt:7: bad"):
        with target.shard(0, "a.txt") as out:
            out.reject(Reject("a.txt", 7, "bad"))


@pytest.mark.parametrize("name", ["out.jsonl", "out.spacy"])
def test_a_file_target_replaces_the_file_when_complete(tmp_path, name):
    path = tmp_path / name
    path.write_text("old")
    nlp = spacy.blank("en")
    target = FileTarget(path, JOB, resume=False, strict=False)
    for index, text in enumerate(["one", "two"]):
        with target.shard(index, "a.txt") as out:
            out.add(index + 1, {"text": text}, nlp(text))
    assert path.read_text() == "old"
    outputs, rejects = target.finish()
    assert outputs == [path] and rejects == tmp_path / "out.rejects.jsonl"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "out.rejects.jsonl"])
    if name.endswith(".jsonl"):
        assert path.read_text() == '{"text": "one"}\n{"text": "two"}\n'
    else:
        from spacy.tokens import DocBin
        assert [d.text for d in DocBin().from_disk(path).get_docs(nlp.vocab)] == ["one", "two"]
