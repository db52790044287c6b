"""The Ray engine on a local 2-CPU cluster with the tiny model: an actor killed mid-job,
resume by finished shard, Parquet output. Skipped without Ray (the `ray` extra)."""
import json
import os
import signal
import sys

import pytest

ray = pytest.importorskip("ray")
pytest.importorskip("ray.data")
pq = pytest.importorskip("pyarrow.parquet")

from spacy_cortex.batch import PipelineSpec, prepare_job  # noqa: E402
from spacy_cortex.distributed import CortexAnnotator, RayEngine  # noqa: E402

# the actor subclass below is defined here, and Ray's workers cannot import test modules
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


class KillOnce(CortexAnnotator):
    """Kills its own process (SIGKILL) in its third batch, once per job: the marker file
    tells the restarted actor that it happened."""

    marker = ""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.batches = 0

    def __call__(self, batch):
        self.batches += 1
        if self.batches == 3 and not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return super().__call__(batch)


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


@pytest.fixture
def spec(tiny_checkpoint):
    return PipelineSpec(model=str(tiny_checkpoint), precision="fp32", ner=("PERSON",), cat=("a", "b"))


def write_jsonl(path, n):
    lines = [json.dumps({"id": i, "text": f"Maria took {i} mg."}) for i in range(n)]
    lines[11] = "{broken"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_an_actor_killed_mid_job_loses_and_repeats_nothing(cluster, spec, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", 40)
    KillOnce.marker = str(tmp_path / "killed")
    engine = RayEngine(actors=2, num_cpus=1, batch_size=4, annotator=KillOnce)
    summary = prepare_job([str(source)], spec, output=tmp_path / "out.jsonl", shard_size=5,
                          engine=engine).run(progress=False)
    assert os.path.exists(KillOnce.marker), "no actor was killed"
    records = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [i for i in range(40) if i != 11]
    assert all(set(r["cats"]) == {"a", "b"} and isinstance(r["ents"], list) for r in records)
    assert (summary.docs, summary.rejects) == (39, 1)
    assert json.loads((tmp_path / "out.rejects.jsonl").read_text())["line"] == 12


def test_resume_redoes_only_unfinished_shards_as_parquet(cluster, spec, tmp_path):
    source = write_jsonl(tmp_path / "in.jsonl", 20)
    common = dict(output_dir=tmp_path / "out", formats=["parquet"], shard_size=5,
                  engine=RayEngine(actors=1, num_cpus=1, batch_size=8))
    prepare_job([str(source)], spec, **common).run(progress=False)
    manifest_path = tmp_path / "out" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"], manifest["complete"] = manifest["shards"][:2], False  # as if stopped after 2 shards
    manifest_path.write_text(json.dumps(manifest))
    for index in (2, 3):
        (tmp_path / "out" / f"part-0000{index}.parquet").unlink()
    kept = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out").glob("*.parquet")}
    summary = prepare_job([str(source)], spec, resume=True, **common).run(progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in summary.outputs if p.name in kept} == kept
    rows = [row for p in summary.outputs for row in pq.read_table(p).to_pylist()]
    assert [row["id"] for row in rows] == [i for i in range(20) if i != 11]
    assert set(rows[0]["cats"]) == {"a", "b"} and summary.rejects == 1


def test_inputs_and_formats_the_ray_engine_cannot_take(spec, tmp_path):
    (tmp_path / "in.spacy").write_bytes(b"")
    with pytest.raises(ValueError, match="not -|<stdin>"):
        prepare_job(["-"], spec, output_dir=tmp_path / "a", engine=RayEngine())
    with pytest.raises(ValueError, match="in.spacy"):
        prepare_job([str(tmp_path / "in.spacy")], spec, output_dir=tmp_path / "a", engine=RayEngine())
    with pytest.raises(ValueError, match="ray engine writes jsonl, parquet, not spacy"):
        prepare_job([str(write_jsonl(tmp_path / "in.jsonl", 12))], spec, output=tmp_path / "o.spacy",
                    engine=RayEngine())
    with pytest.raises(ValueError, match="actors must be at least 1"):
        RayEngine(actors=0)
