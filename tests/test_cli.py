"""The command line: `annotate` end to end on a tiny model, its usage errors, and fault
tests in subprocesses (kill -9 and --resume, a failed start, peak memory)."""
import json
import random
import signal
import subprocess
import sys
import time

import pytest
import spacy
from typer.testing import CliRunner

from spacy_cortex.batch import JobSummary, PipelineSpec
from spacy_cortex.cli import app, gpu_device, summary_line


def invoke(*args, input=None):
    return CliRunner().invoke(app, ["annotate", *map(str, args)], input=input)


def test_prefer_specific_can_be_turned_off(tiny_checkpoint, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("Charles Dickens wrote it.\n", encoding="utf8")
    result = invoke(source, "--model", tiny_checkpoint, "--precision", "fp32", "--ner", "PERSON",
                    "--ner", "WRITER", "--no-prefer-specific")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["text"] == "Charles Dickens wrote it."


def test_annotate_writes_one_line_per_input_line(tiny_checkpoint, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("Maria took aspirin.\n\n🙂 fine\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    result = invoke(source, "-o", out, "--model", tiny_checkpoint, "--precision", "fp32", "--ner", "PERSON",
                    "--cat", "health", "--cat", "sports", "-q", "Who took it?")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    assert [r["text"] for r in records] == ["Maria took aspirin.", "", "🙂 fine"]
    assert all(set(r["cats"]) == {"health", "sports"} and len(r["answers"]) == 1 for r in records)
    assert "🙂" in out.read_text(encoding="utf8")  # UTF-8 as it is, not \u-escaped
    assert not (tmp_path / "out.jsonl.parts").exists()
    assert (tmp_path / "out.rejects.jsonl").read_text() == ""
    assert "Annotated 3 documents" in result.stderr
    assert summary_line(JobSummary(1, 1, 1, [], None)) == "Annotated 1 document; 1 bad record rejected"


def test_stdin_to_stdout_with_progress_on_stderr(tiny_checkpoint):
    result = invoke("-", "--model", tiny_checkpoint, "--ner", "PERSON", input="one\r\ntwo\rhalf\n\nfour")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["text"] for line in result.stdout.splitlines()] == ["one", "two\rhalf", "", "four"]
    assert "doc/s" in result.stderr and "Annotated 4 documents" in result.stderr


def test_a_byte_order_mark_on_stdin_stays_out_of_entities(positive_checkpoint):
    """Issue 25 item 10: files joined on stdin gave the entity '\ufeffEmma Watson'."""
    stream = "\ufeffTom Hanks\n\ufeffEmma Watson\nmet Ada\ufeffLovelace\n"
    result = invoke("-", "--model", positive_checkpoint, "--precision", "fp32", "--ner", "PERSON", input=stream)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["text"] for r in records] == ["Tom Hanks", "Emma Watson", "met AdaLovelace"]
    ents = [e for r in records for e in r["ents"]]
    assert [e["text"] for e in ents[:2]] == ["Tom Hanks", "Emma Watson"]
    assert not any("\ufeff" in e["text"] for e in ents)


def test_one_cat_is_yes_no_and_none_label(negative_checkpoint, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("please refund me\n", encoding="utf8")
    common = [source, "--model", negative_checkpoint, "--precision", "fp32"]
    one = invoke(*common, "--cat", "refund")
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout.splitlines()[0])["cats"]["refund"] < 0.01  # was always 1.0
    none = invoke(*common, "--cat", "refund", "--cat", "billing", "--none-label", "none")
    assert none.exit_code == 0, none.output
    assert json.loads(none.stdout.splitlines()[0])["cats"]["none"] > 0.99


@pytest.mark.parametrize("options,match", [
    (["--cat", ""], "--cat '': the label is empty"), (["--cat", "a", "--cat", "b", "--none-label", "a"], "--none-label: "),
    (["--ner", "X", "--threshold", "1.5"], "--threshold / --extend-threshold / --ner-window: threshold"),
    (["--ner", "X", "--threshold", "0"], "--threshold"),
    (["--ner", "X", "--extend-threshold", "1.5"], "--ner-window: extend_threshold must be between 0 and 1"),
    (["--ner", "X", "--ner-window", "8"], "'--ner-window'"),
    (["--ner", "X="], "--ner 'X=': the prompt after '=' is empty"), (["--cat", "a=", "--cat", "b"], "--cat 'a='"),
    (["-q", " "], "--question: Empty question"), (["--ner", "X", "--precision", "fp16"], "precision 'fp16'"),
    (["--ner", "X", "--batch-size", "-5"], "'--batch-size'"), (["--ner", "X", "--shard-size", "0"], "'--shard-size'"),
    (["--ner", "X", "--model", "no-such-model"], "no-such-model"), (["--pipeline", "p", "--ner", "X"], "drop --ner"),
    (["--ner", "X", "--engine", "spark"], "--engine 'spark'"), (["--ner", "X", "--actors", "2"], "--actors"),
    (["--ner", "X", "--format", "spacy"], "--format is for --output-dir"), (["--ner", "X", "--resume"], "stdout"),
    (["--ner", "X", "--device", "gpu"], "Unknown device 'gpu'"), (["--ner", "X", "--device", "cuda:7"], "'cuda:7' asked for"),
    (["--ner", "X", "--gpu-id", "7"], "--gpu-id 7: Device 'cuda:7' asked for"),
    (["--ner", "X", "-g", "0", "--device", "cpu"], "--gpu-id 0 and --device cpu: give one of them"),
    (["--ner", "X", "--gpu-id", "-2"], "--gpu-id -2: use a GPU number"),
])
def test_bad_option_values_are_usage_errors(tiny_checkpoint, tmp_path, options, match):
    source = tmp_path / "texts.txt"
    source.write_text("text\n", encoding="utf8")
    if "--model" not in options and "--pipeline" not in options:
        options = options + ["--model", str(tiny_checkpoint)]
    result = invoke(source, *options)
    assert result.exit_code == 2, result.output
    assert match in " ".join(result.stderr.replace("│", " ").split())
    assert "Traceback" not in result.stderr


def test_a_missing_input_is_a_usage_error(tiny_checkpoint, tmp_path):
    result = invoke(tmp_path / "missing.txt", "--ner", "X", "--model", tiny_checkpoint)
    assert result.exit_code == 2 and "missing.txt" in result.stderr


def test_a_failed_start_leaves_an_existing_output_untouched(tiny_checkpoint, tmp_path):
    source, out = tmp_path / "texts.txt", tmp_path / "out.jsonl"
    source.write_bytes(b"fine\nbad \xff\n")
    out.write_text("precious\n" * 5000)
    mistyped = invoke(source, "-o", out, "--ner", "X", "--model", tmp_path / "mistyped")
    assert mistyped.exit_code == 2
    strict = invoke(source, "-o", out, "--ner", "X", "--model", tiny_checkpoint, "--strict")
    assert strict.exit_code == 1 and f"{source}:2: not UTF-8" in strict.stderr
    assert out.read_text() == "precious\n" * 5000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.jsonl.parts", "texts.txt"]


def test_bad_records_go_to_the_rejects_file_and_the_job_goes_on(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_bytes(b'{"id": 1, "text": "a"}\n\n{"id": 3, "text": null}\n{"id": 4}\n{bad\n'
                       b'{"id": 6, "text": 7}\n"text"\n{"id": 8, "text": "caf\xe9"}\n{"id": 9, "text": "z", "meta": {"k": [1]}}')
    result = invoke(source, "--output-dir", tmp_path / "out", "--ner", "X", "--model", tiny_checkpoint)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "out" / "part-00000.jsonl").read_text().splitlines()]
    assert [(r["id"], r["text"]) for r in records] == [(1, "a"), (9, "z")]
    assert records[1]["meta"] == {"k": [1]}
    rejects = [json.loads(line) for line in (tmp_path / "out" / "rejects.jsonl").read_text().splitlines()]
    assert [(r["file"], r["line"]) for r in rejects] == [(str(source), n) for n in (2, 3, 4, 5, 6, 7, 8)]
    assert [r["reason"].split(":")[0].split(" (")[0] for r in rejects] == [
        "blank line", "'text' is null, not a string", "no 'text' field", "malformed JSON",
        "'text' is 7, not a string", "not a JSON object but str", "not UTF-8"]
    assert "Annotated 2 documents; 7 bad records rejected" in result.stderr


def test_text_field_and_passthrough_fields(tiny_checkpoint, tmp_path):
    source = tmp_path / "in.jsonl"
    source.write_text('{"body": "Maria", "id": "a-1"}\n', encoding="utf8")
    result = invoke(source, "--text-field", "body", "--ner", "X", "--model", tiny_checkpoint)
    assert json.loads(result.stdout) == {"body": "Maria", "id": "a-1", "ents": []}


def test_a_saved_pipeline_runs_over_files(tiny_checkpoint, tmp_path):
    PipelineSpec(model=str(tiny_checkpoint), cat=("refund", "billing")).load().to_disk(tmp_path / "pipe")
    source = tmp_path / "texts.txt"
    source.write_text("please refund me\n", encoding="utf8")
    result = invoke(source, "--pipeline", tmp_path / "pipe")
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["cats"]) == {"refund", "billing"}


def test_a_10_mb_document_over_the_pipelines_max_length_is_rejected(blank_pipeline, tmp_path):
    source, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    source.write_text(json.dumps({"id": 1, "text": "word " * 2_000_000}) + "\n" + json.dumps({"id": 2, "text": "ok"}))
    result = invoke(source, "--pipeline", blank_pipeline, "-o", out)
    assert result.exit_code == 0, result.output
    assert _ids(out) == [2]
    assert json.loads((tmp_path / "out.rejects.jsonl").read_text()) == {
        "file": str(source), "line": 1,
        "reason": "text of 10,000,000 characters is longer than the pipeline's max_length (1,000,000)"}


def _ids(path):
    return [json.loads(line)["id"] for line in path.read_text(encoding="utf8").splitlines()]


def _shards_in_manifest(folder):
    try:
        return len(json.loads((folder / "manifest.json").read_text())["shards"])
    except (OSError, ValueError):  # not written yet, or being replaced
        return 0


def _annotate_command(*args):
    return [sys.executable, "-m", "spacy_cortex", "annotate", *map(str, args)]


@pytest.mark.parametrize("kill_after", [1, 4, 9])
def test_kill_9_then_resume_outputs_every_document_once(blank_pipeline, tmp_path, kill_after):
    """SIGKILL once `kill_after` of 12 shards are finished (plus a random delay), then
    --resume: the output equals an uninterrupted run."""
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": i, "text": f"doc {i} " * 50}) + "\n" for i in range(6000)))
    common = [source, "--pipeline", blank_pipeline, "--shard-size", 500, "-o", tmp_path / "out.jsonl"]
    job = subprocess.Popen(_annotate_command(*common), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while _shards_in_manifest(tmp_path / "out.jsonl.parts") < kill_after and job.poll() is None:
        time.sleep(0.01)
    time.sleep(random.Random(kill_after).uniform(0, 0.2))
    job.send_signal(signal.SIGKILL)
    assert job.wait() == -signal.SIGKILL, "the job ended before it was killed"
    assert not (tmp_path / "out.jsonl").exists()
    resumed = subprocess.run(_annotate_command(*common, "--resume"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert _ids(tmp_path / "out.jsonl") == list(range(6000))


SLOW_ANNOTATE = """import sys, time
from spacy.language import Language
Language.component("slow_down", func=lambda doc: time.sleep(0.002) or doc)
from spacy_cortex.cli import app
app(sys.argv[1:])
"""


def test_ctrl_c_keeps_finished_shards(tmp_path):
    """Ctrl-C keeps the finished shards and --resume completes the job. A pipeline that
    takes 2 ms per doc makes the 40 shards last ~2 s, so the signal always lands mid-job
    (on a blank one the job sometimes ended before the signal arrived)."""
    from spacy.language import Language

    Language.component("slow_down", func=lambda doc: doc)
    nlp = spacy.blank("en")
    nlp.add_pipe("slow_down")
    nlp.to_disk(tmp_path / "slow")
    source = tmp_path / "in.txt"
    source.write_text("".join(f"line {i}\n" for i in range(1000)))
    out = tmp_path / "out"
    command = [sys.executable, "-c", SLOW_ANNOTATE, "annotate", str(source), "--pipeline", str(tmp_path / "slow"),
               "--shard-size", "25", "--output-dir", str(out)]
    # SIGINT back to its default in the child: an ignored SIGINT is inherited through exec,
    # and an earlier test in this process (Ray's) may have left it ignored
    job = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    while _shards_in_manifest(out) < 2 and job.poll() is None:
        time.sleep(0.01)
    assert job.poll() is None, "the job ended before it was interrupted"
    job.send_signal(signal.SIGINT)
    assert job.wait() == 130 and "add --resume" in job.stderr.read()
    assert not list(out.glob("*.partial"))
    done = _shards_in_manifest(out)
    assert subprocess.run(command, capture_output=True).returncode == 2  # a job is there: not without --resume
    assert subprocess.run(command + ["--resume"], capture_output=True).returncode == 0
    texts = [json.loads(line)["text"] for p in sorted(out.glob("part-*.jsonl")) for line in p.read_text().splitlines()]
    assert texts == source.read_text().splitlines() and 2 <= done < 40


def _peak_rss_mb(args) -> float:
    """Peak RSS of a fresh process that runs `annotate args` (the child reports its own)."""
    code = ("import resource, sys\nfrom spacy_cortex.cli import app\ntry:\n app(sys.argv[1:])\n"
            "except SystemExit as e:\n assert not e.code, e.code\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)")
    run = subprocess.run([sys.executable, "-c", code, "annotate", *map(str, args)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    return int(run.stdout.split()[-1]) / 1024


def test_memory_stays_bounded_on_100k_lines(blank_pipeline, tmp_path):
    """Streaming: 100,000 lines need no more memory than 5,000 (a list of the lines or of
    the docs would add tens of MB)."""
    sizes = {}
    for lines in (5_000, 100_000):
        source = tmp_path / f"in{lines}.txt"
        source.write_text("".join(f"short line number {i}\n" for i in range(lines)))
        sizes[lines] = _peak_rss_mb([source, "--pipeline", blank_pipeline, "-o", tmp_path / f"out{lines}.jsonl"])
        assert len((tmp_path / f"out{lines}.jsonl").read_text().splitlines()) == lines
    assert sizes[100_000] - sizes[5_000] < 15, sizes


def test_short_help_option():
    for args in (["-h"], ["annotate", "-h"]):
        result = CliRunner().invoke(app, args)
        assert result.exit_code == 0 and "Usage" in result.output, args


def test_gpu_id_names_a_cuda_device_as_in_spacys_commands(monkeypatch):
    import torch

    from spacy_cortex.core import device

    monkeypatch.setattr(device, "resolve_device", lambda spec: torch.device(spec))  # as if that GPU were there
    assert gpu_device(1, "auto") == "cuda:1"
    assert gpu_device(-1, "cpu") == "cpu"  # -1, the default: --device decides


def test_info_states_the_licence_of_the_weights():
    result = CliRunner().invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "research and non-commercial use only" in result.output and "cortex-mini-en/README.md" in result.output
