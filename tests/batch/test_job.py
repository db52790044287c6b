"""Jobs end to end in this process on a tiny model: shards, formats, resume, checks first."""
import json

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_cortex.batch import LocalEngine, PipelineSpec, RejectedRecord, prepare_job


@pytest.fixture
def spec(tiny_checkpoint):
    return PipelineSpec(model=str(tiny_checkpoint), precision="fp32", ner=("PERSON",), cat=("a", "b"))


def write_jsonl(path, n, bad_line=None):
    lines = [json.dumps({"id": i, "text": f"Maria took {i} mg."}) for i in range(n)]
    if bad_line:
        lines[bad_line - 1] = '{"id": "broken"'
    path.write_text("\n".join(lines) + "\n")
    return path


def test_shards_in_two_formats_with_passthrough_fields(spec, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", 5)
    job = prepare_job([str(source)], spec, output_dir=tmp_path / "out", formats=["jsonl", "spacy"], shard_size=2)
    summary = job.run(progress=False)
    assert (summary.docs, summary.rejects, summary.shards) == (5, 0, 3)
    assert [p.name for p in summary.outputs] == [f"part-0000{i}.{f}" for i in range(3) for f in ("jsonl", "spacy")]
    records = [json.loads(line) for p in summary.outputs if p.suffix == ".jsonl" for line in p.read_text().splitlines()]
    assert [r["id"] for r in records] == [0, 1, 2, 3, 4] and set(records[0]["cats"]) == {"a", "b"}
    docs = [d for p in summary.outputs if p.suffix == ".spacy"
            for d in DocBin(store_user_data=True).from_disk(p).get_docs(spacy.blank("en").vocab)]
    assert [(d.user_data["id"], d.text) for d in docs] == [(r["id"], r["text"]) for r in records]
    assert set(docs[0].cats) == {"a", "b"}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["complete"] and [(s["first_line"], s["last_line"], s["docs"]) for s in manifest["shards"]] == [
        (1, 2, 2), (3, 4, 2), (5, 5, 1)]


def test_resume_skips_finished_shards_and_outputs_each_doc_once(spec, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", 7, bad_line=6)
    common = dict(output_dir=tmp_path / "out", shard_size=2)
    with pytest.raises(RejectedRecord, match="in.jsonl:6: malformed JSON"):
        prepare_job([str(source)], spec, strict=True, **common).run(progress=False)
    finished = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("part-*")}
    assert sorted(finished) == ["part-00000.jsonl", "part-00001.jsonl"]
    summary = prepare_job([str(source)], spec, resume=True, **common).run(progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in summary.outputs if p.name in finished} == finished
    ids = [json.loads(line)["id"] for p in summary.outputs for line in p.read_text().splitlines()]
    assert ids == [0, 1, 2, 3, 4, 6] and (summary.docs, summary.rejects) == (6, 1)
    again = prepare_job([str(source)], spec, resume=True, **common).run(progress=False)  # complete: nothing to do
    assert (again.docs, again.rejects, again.shards) == (6, 1, 4)


def test_a_spacy_file_in_and_out(spec, tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=[nlp("Maria took it."), nlp("")]).to_disk(tmp_path / "in.spacy")
    summary = prepare_job([str(tmp_path / "in.spacy")], spec, output=tmp_path / "out.spacy").run(progress=False)
    docs = list(DocBin().from_disk(tmp_path / "out.spacy").get_docs(nlp.vocab))
    assert summary.docs == 2 and [d.text for d in docs] == ["Maria took it.", ""]
    assert all(set(d.cats) == {"a", "b"} for d in docs)


@pytest.mark.parametrize("kwargs,match", [
    (dict(output_dir="out", formats=["parquet"]), "local engine writes jsonl, spacy, not parquet"),
    (dict(output_dir="out", formats=["csv"]), "--format 'csv'"),
    (dict(output="out.jsonl", output_dir="out"), "not both"),
    (dict(output="out", shard_size=0), "shard_size"),
    (dict(output="out", text_field=""), "text_field"),
])
def test_bad_settings_are_errors_before_anything_is_written(spec, tmp_path, kwargs, match):
    source = write_jsonl(tmp_path / "in.jsonl", 1)
    kwargs = {k: tmp_path / v if k.startswith("output") else v for k, v in kwargs.items()}
    with pytest.raises(ValueError, match=match):
        prepare_job([str(source)], spec, **kwargs)
    assert [p.name for p in tmp_path.iterdir()] == ["in.jsonl"]


def test_a_pipeline_that_cannot_be_built_creates_no_output(tiny_checkpoint, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", 1)
    with pytest.raises(ValueError, match="threshold"):
        prepare_job([str(source)], PipelineSpec(model=str(tiny_checkpoint), ner=("X",), threshold=2.0),
                    output_dir=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_batch_size_must_be_positive():
    with pytest.raises(ValueError, match="batch_size must be at least 1, got 0"):
        LocalEngine(batch_size=0)
