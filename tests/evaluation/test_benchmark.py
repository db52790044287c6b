"""The benchmark (benchmark, bench_jobs, bench_measure, bench_report): FLOP counting, corpus
readers and one tiny --quick run (fixtures only)."""
import json
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode
from transformers import BertConfig, BertForTokenClassification

from spacy_cortex.evaluation import bench_jobs as jobs
from spacy_cortex.evaluation import bench_measure as measure
from spacy_cortex.evaluation import benchmark as bench
from spacy_cortex.core.model import CortexModel

RAW = Path(__file__).parents[1] / "fixtures" / "benchmark"


def tiny_config(**kwargs) -> BertConfig:
    return BertConfig(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                      intermediate_size=64, num_labels=3, **kwargs)


@pytest.mark.parametrize("batch,length", [(1, 5), (3, 17), (2, 64)])
def test_encoder_flops_match_torch_flop_counter(batch, length):
    config = tiny_config(attn_implementation="eager")  # sdpa's CPU kernel is not counted
    model = BertForTokenClassification(config).eval()
    ids = torch.randint(0, 100, (batch, length))
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(input_ids=ids, attention_mask=torch.ones_like(ids))
    assert measure.encoder_flops(config, batch, length) == counter.get_total_flops()


def test_encoder_flops_by_hand():
    config = tiny_config()
    d, ff, t = 32, 64, 10
    per_token = 2 * (2 * (4 * d * d + 2 * d * ff) + 4 * t * d) + 2 * d * 3
    assert measure.encoder_flops(config, 4, t) == 4 * t * per_token


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_forward_counter_counts_padded_batches(tiny_checkpoint, precision):
    model = CortexModel.from_path(tiny_checkpoint, max_batch_tokens=20, precision=precision)
    counter = measure.ForwardCounter(model.inference_model)
    texts = ["the patient", "the patient was given a dose of atorvastatin", "what"]
    model.run_texts(("find all drug", t) for t in texts)
    windows = model.windows([("find all drug", model.encode_text(t)) for t in texts])
    batches = list(model.batches(windows))
    assert counter.calls == len(batches) > 1  # the small token budget splits them
    assert counter.padded == sum(b.input_ids.size for b in batches)
    assert counter.real == sum(len(w.input_ids) for w in windows) < counter.padded
    assert counter.flops == sum(measure.encoder_flops(model.hf_model.config, *b.input_ids.shape)
                                for b in batches)
    assert counter.seconds > 0
    counter.reset()
    assert (counter.calls, counter.padded, counter.flops) == (0, 0, 0.0)


def test_read_conll_sentences_and_gold_spans():
    texts = jobs.read_conll(RAW, 100)
    assert len(texts) == 10  # -DOCSTART- lines are skipped, a doc is a sentence
    first = texts[0]
    assert first.text.startswith("SOCCER - JAPAN GET")
    found = {(first.text[s:e], label) for s, e, label in first.gold}
    assert found == {("JAPAN", "location"), ("CHINA", "person")}
    uae = texts[2]
    assert [(uae.text[s:e], l) for s, e, l in uae.gold] == [
        ("AL-AIN", "location"), ("United Arab Emirates", "location")]
    assert len(jobs.read_conll(RAW, 3)) == 3


def test_read_agnews_cleans_escapes():
    texts = jobs.read_agnews(RAW, 100)
    assert len(texts) == 10
    assert texts[0].gold == "Business" and texts[1].gold == "Sci/Tech"
    assert "$10 million" in texts[1].text and "\\" not in texts[1].text
    assert "NASA's" in texts[9].text
    assert texts[0].text.startswith("Fears for T N pension after talks. Unions")


def test_docs_for_work_budget():
    texts = [jobs.Text("one two", None)] * 10  # (2 + 8) units per prompt
    assert bench.docs_for(texts, 4, 80) == 2
    assert bench.docs_for(texts, 1, 25) == 3
    assert bench.docs_for(texts, 1, 10_000) == 10


def test_label_prompts_put_evaluation_labels_first():
    ner = jobs.TASKS["ner"](16)[1]["labels"]
    assert len(ner) == 16 and list(ner)[:4] == list(jobs.CONLL_LABELS)
    assert jobs.TASKS["textcat"](4)[1]["labels"].keys() == jobs.AG_LABELS.keys()
    assert jobs.TASKS["qa"](1)[1]["questions"] == jobs.QUESTIONS[:1]


def check_row(row: dict) -> None:
    assert row["seconds"] > 0 and row["words"] > 0 and row["peak_rss_mb"] > 0
    assert row["derived"]["docs_per_s"] > 0


def test_quick_run_end_to_end(tiny_checkpoint, tmp_path, capsys):
    output = tmp_path / "out" / "benchmark.json"
    result = bench.benchmark(RAW, str(tiny_checkpoint), output, docs=10, quick=True,
                             in_process=True)
    assert json.loads(output.read_text())["settings"]["quick"] is True
    rows = {(r["job"]["name"], r["job"]["batch_size"], r["job"]["precision"]): r
            for r in result["rows"]}
    for name, _, _ in jobs.WORKLOADS:
        check_row(rows[(name, 64, "fp32")])
    check_row(rows[("ner-4", 1, "fp32")])
    for precision in ("bf16", "int8"):
        fast = rows[("ner-4", 64, precision)]
        assert fast["metric"] == "ents_f" and fast["derived"]["quality_delta"] is not None
        assert rows[("textcat-4", 64, precision)]["metric"] == "accuracy"
    ner4 = rows[("ner-4", 64, "fp32")]
    assert ner4["padded_tokens"] >= ner4["real_tokens"] > 0 and ner4["flops"] > 0
    assert ner4["derived"]["vs_naive"] > 0 and 0 < ner4["derived"]["pct_peak_encoder"]
    naive = rows[("naive transformers", 1, "fp32")]
    assert naive["forward_calls"] == 4 * naive["job"]["docs"]  # one call per (text, prompt)
    separate, shared = rows[("all-3 as 3 pipelines", 64, "fp32")], rows[("all-3", 64, "fp32")]
    assert separate["job"]["docs"] == shared["job"]["docs"]
    assert {"fp32", "bf16", "int8"} <= set(result["matmul_flops"])
    assert any("x naive" in t["target"] for t in result["targets"])
    for precision in ("fp32", "bf16"):  # the ratio rows timed against their reference in one process
        paired = rows[(jobs.PAIRED_NER, 64, precision)]
        assert paired["reference_seconds"] > 0 and paired["derived"]["vs_paired"] > 0
        assert paired["stages"]["encoder passes"] > 0 and abs(sum(paired["stages"].values()) - 100) < 1e-6
    for batch in (1, 64):  # one pipeline against three, timed in one process
        assert rows[(jobs.PAIRED_ALL, batch, "fp32")]["reference_seconds"] > 0
        assert any(t["target"].startswith(f"all-3 b{batch}: one pipeline no slower")
                   for t in result["targets"])
    assert any(t["target"].startswith("all-3 b1: one pipeline measurably faster")
               for t in result["targets"])
    shared_b1 = rows[(jobs.PAIRED_ALL, 1, "fp32")]  # three pipelines: >= 3 passes per doc
    assert shared_b1["forward_calls"] < 3 * shared_b1["job"]["docs"]
    assert any("paired in one process" in t["target"] for t in result["targets"])
    printed = capsys.readouterr().out
    assert "words/s" in printed and "ner-16" in printed and "% of wall time: spaCy tokenizer" in printed
    assert any("wall time in encoder passes" in t["target"] for t in result["targets"])


def test_job_runs_in_a_fresh_process(tiny_checkpoint):
    job = jobs.Job("ner-1", "cortex", "conll", {"ner": 1}, 64, "fp32", 4)
    (row,) = bench.run_jobs([job], str(tiny_checkpoint), RAW, quick=True, in_process=False)
    assert row.job == job and row.seconds > 0 and row.forward_calls >= 1
    assert row.peak_rss_mb > 0
    assert row.threads == torch.get_num_threads()  # not the forked child's single thread


def test_gpu_plan_sweeps_the_token_budget(tiny_checkpoint):
    planned = bench.plan(RAW, 10, quick=True, precision="fp32", device="cuda", only=("ner-4",))
    grid = [(j.batch_size, j.batch_tokens) for j in planned if j.batch_tokens]
    assert grid == list(jobs.GPU_BATCH_TOKENS) and all(j.device == "cuda" for j in planned)
    small, default = (jobs.Job("ner-4", "cortex", "conll", {"ner": 4}, 64, "fp32", 8, batch_tokens=tokens)
                      for tokens in (64, 0))
    rows = [measure.run_job(job, str(tiny_checkpoint), str(RAW), quick=True) for job in (small, default)]
    assert rows[0].forward_calls > rows[1].forward_calls  # the budget reaches the model
    assert "64 tok" in small.label
