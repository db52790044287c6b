"""One benchmark measurement, in its own process: the setups it times (cortex pipelines, the
same tasks as separate pipelines, a naive transformers loop, en_core_web_sm), the encoder
passes it counts (calls, padded tokens, FLOPs, time), the quality of its output and the
matmul peaks the %-of-peak figures use."""
import importlib.util
import math
import resource
import time
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import spacy
import torch

from ..core.flops import encoder_flops, flop_rate
from ..pipeline import DEFAULT_MODEL_CONFIG
from .bench_jobs import CONLL_LABELS, CORPORA, PASSES, SPACY_SMALL, SPACY_TO_CONLL, TASKS, WARMUP_DOCS, Job, Row, Text
from .stages import stage_timer


class ForwardCounter:
    """Replaces hf_model.forward to count passes, padded and real tokens, FLOPs and time."""

    def __init__(self, hf_model):
        self.config = hf_model.config
        self.forward = hf_model.forward
        hf_model.forward = self
        self.reset()

    def reset(self) -> None:
        self.calls, self.seconds, self.flops, self.padded, self.real = 0, 0.0, 0.0, 0, 0

    def __call__(self, *args, **kwargs):
        ids = kwargs["input_ids"] if "input_ids" in kwargs else args[0]
        mask = kwargs.get("attention_mask")
        start = time.perf_counter()
        out = self.forward(*args, **kwargs)
        self.seconds += time.perf_counter() - start
        batch, length = ids.shape
        self.calls += 1
        self.flops += encoder_flops(self.config, batch, length)
        self.padded += batch * length
        self.real += int(mask.sum()) if mask is not None else batch * length
        return out


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def quantize_int8(module: torch.nn.Module) -> torch.nn.Module:
    """Int8 weights, activations quantized on the fly: every nn.Linear, in place."""
    from torch.ao.quantization import quantize_dynamic

    return quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)


def cortex_pipeline(checkpoint: str, tasks: Dict[str, int], precision: str, device: str = "cpu",
                    batch_tokens: int = 0):
    nlp = spacy.blank("en")
    model = {**DEFAULT_MODEL_CONFIG, "checkpoint": checkpoint, "device": device,
             "precision": "bf16" if precision == "bf16" else "fp32", "max_batch_tokens": batch_tokens or None}
    nlp.add_pipe("cortex", config={"model": model})
    for task, n in tasks.items():
        factory, config = TASKS[task](n)
        nlp.add_pipe(factory, config=config)
    model = nlp.get_pipe("cortex").model
    if precision == "int8":
        quantize_int8(model.hf_model)  # fp32 weights: inference runs them in place
    return nlp, ForwardCounter(model.inference_model)  # the module the passes run on


Runner = Tuple[Callable[[List[str]], list], List[ForwardCounter]]


def setup_cortex(job: Job, checkpoint: str) -> Runner:
    nlp, counter = cortex_pipeline(checkpoint, job.tasks, job.precision, job.device, job.batch_tokens)
    return (lambda texts: list(nlp.pipe(texts, batch_size=job.batch_size))), [counter]


def setup_separate(job: Job, checkpoint: str) -> Runner:
    """One pipeline (and model) per task, run one after another on the same docs."""
    parts = [cortex_pipeline(checkpoint, {task: n}, job.precision, job.device) for task, n in job.tasks.items()]

    def run(texts):
        docs = texts
        for nlp, _ in parts:
            docs = list(nlp.pipe(docs, batch_size=job.batch_size))
        return docs

    return run, [counter for _, counter in parts]


def setup_naive(job: Job, checkpoint: str) -> Runner:
    """What a user writes with transformers alone: one call per (text, prompt), fp32."""
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    from ..core.model import DTYPE_ARG

    model = AutoModelForTokenClassification.from_pretrained(  # fp32 also from fp16 weights (transformers 5)
        checkpoint, local_files_only=True, **{DTYPE_ARG: torch.float32}).to(job.device)
    tokenizer = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    model.eval()
    [(task, n)] = job.tasks.items()  # one NER task: its prompts, one call each
    prompts = list(TASKS[task](n)[1]["labels"].values())

    def run(texts):
        with torch.inference_mode():
            return [[naive_spans(model, tokenizer, p, t) for p in prompts] for t in texts]

    return run, [ForwardCounter(model)]


def naive_spans(model, tokenizer, prompt: str, text: str) -> List[Tuple[int, int]]:
    """Character spans of consecutive text sub-tokens with P(inside) >= 0.5."""
    enc = tokenizer(prompt, text, truncation="only_second", max_length=384,
                    return_offsets_mapping=True, return_tensors="pt")
    offsets = enc.pop("offset_mapping")[0].tolist()
    inputs = {k: v.to(model.device) for k, v in enc.items()}
    inside = (model(**inputs).logits[0].softmax(-1)[:, 1] >= 0.5).tolist()
    spans, start, end = [], None, 0
    for (s, e), hit, seq in zip(offsets, inside, enc.sequence_ids(0)):
        if hit and seq == 1:
            start, end = (s if start is None else start), e
        elif start is not None:  # the final [SEP] closes a trailing span
            spans.append((start, end))
            start = None
    return spans


def spacy_small_name() -> Optional[str]:
    return next((n for n in SPACY_SMALL if importlib.util.find_spec(n) is not None), None)


def setup_spacy(job: Job, checkpoint: str) -> Runner:
    """en_core_web_sm with only its NER (tok2vec + ner) enabled."""
    nlp = spacy.load(spacy_small_name())
    nlp.select_pipes(enable=[p for p in nlp.pipe_names if p in ("tok2vec", "ner")])
    return (lambda texts: list(nlp.pipe(texts, batch_size=job.batch_size))), []


SETUPS = {"cortex": setup_cortex, "separate": setup_separate, "naive": setup_naive,
          "spacy": setup_spacy}


def entity_f1(docs, texts: List[Text], mapping: Optional[Dict[str, str]] = None) -> float:
    """Exact-match (start_char, end_char, label) F1 in % over the CoNLL labels."""
    tp = n_pred = n_gold = 0
    for doc, text in zip(docs, texts):
        pred = {(e.start_char, e.end_char, mapping.get(e.label_) if mapping else e.label_)
                for e in doc.ents}
        pred = {p for p in pred if p[2] in CONLL_LABELS}
        gold = set(text.gold)
        tp, n_pred, n_gold = tp + len(pred & gold), n_pred + len(pred), n_gold + len(gold)
    return 100.0 * 2 * tp / max(n_pred + n_gold, 1)


def quality(job: Job, docs, texts: List[Text]) -> Tuple[Optional[str], Optional[float]]:
    """Entity F1 where the CoNLL labels are asked for; AG News accuracy where its 4 are."""
    if job.kind == "spacy":
        return "ents_f", entity_f1(docs, texts, SPACY_TO_CONLL)
    if job.kind == "naive":
        return None, None
    if job.corpus == "conll" and 4 in (job.tasks.get("ner"), job.tasks.get("ner_user")):
        return "ents_f", entity_f1(docs, texts)
    if job.corpus == "agnews" and job.tasks.get("textcat") == 4:
        hits = [max(doc.cats, key=doc.cats.get) == text.gold for doc, text in zip(docs, texts)]
        return "accuracy", 100.0 * sum(hits) / max(len(hits), 1)
    return None, None


def matmul_peaks(checkpoint: str, seconds: float) -> Dict[str, float]:
    """Dense matmul FLOP/s in fp32, bf16 and int8 (a dynamically quantized nn.Linear, as the
    int8 path runs): 1024^3, the peak the %-of-peak figures use, and the model's
    feed-forward shape at 4096 tokens (what the encoder's largest matmuls can reach)."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(checkpoint, local_files_only=True)
    shapes = {"": (1024, 1024, 1024),
              " ffn": (4096, config.hidden_size, config.intermediate_size)}
    peaks = {}
    with torch.inference_mode():
        for suffix, (m, k, n) in shapes.items():
            x, w = torch.randn(m, k), torch.randn(k, n)
            xb, wb = x.bfloat16(), w.bfloat16()
            int8 = quantize_int8(torch.nn.Sequential(torch.nn.Linear(k, n, bias=False)))
            for name, fn in (("fp32", lambda: x @ w), ("bf16", lambda: xb @ wb),
                             ("int8", lambda: int8(x))):
                peaks[name + suffix] = flop_rate(fn, 2.0 * m * k * n, seconds)
    return peaks


def run_job(job: Job, checkpoint: str, raw_dir: str, quick: bool = False, threads: int = 0) -> Row:
    """One measurement; runs in its own process with `threads` torch threads (0: as it is;
    a forked process starts with one, see model._one_thread_after_fork)."""
    warnings.filterwarnings("ignore")
    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    row = Row(job, threads=torch.get_num_threads())
    if job.kind == "peak":
        row.matmul = matmul_peaks(checkpoint, 0.2 if quick else 1.0)
        row.peak_rss_mb = max_rss_mb()
        return row
    texts = CORPORA[job.corpus](Path(raw_dir), max(job.docs, job.quality_docs))
    strings = [t.text for t in texts[:job.docs]]
    start = time.perf_counter()
    run, counters = SETUPS[job.kind](job, checkpoint)
    row.load_seconds = time.perf_counter() - start
    run(strings[:WARMUP_DOCS])
    reference = setup_reference(job, checkpoint, strings[:WARMUP_DOCS])
    before = max_rss_mb()
    row.seconds = float("inf")
    for _ in range(1 if quick else PASSES):  # the fastest pass: least disturbed
        if reference:
            start = time.perf_counter()
            reference(strings)
            row.reference_seconds = min(row.reference_seconds or math.inf, time.perf_counter() - start)
        for counter in counters:
            counter.reset()
        start = time.perf_counter()
        docs = run(strings)
        seconds = time.perf_counter() - start
        if seconds < row.seconds:
            row.seconds = seconds
            row.forward_calls = sum(c.calls for c in counters)
            row.forward_seconds = sum(c.seconds for c in counters)
            row.flops = sum(c.flops for c in counters)
            row.padded_tokens = sum(c.padded for c in counters)
            row.real_tokens = sum(c.real for c in counters)
    row.peak_rss_mb = max_rss_mb()
    row.run_rss_mb = row.peak_rss_mb - before
    if job.kind == "cortex" and job.reference == "naive":  # the split, from one more untimed pass
        with stage_timer() as timer:
            start = time.perf_counter()
            run(strings)
            row.stages = timer.split(time.perf_counter() - start)
    row.words = sum(len(s.split()) for s in strings)
    if job.quality_docs > job.docs:
        texts = texts[:job.quality_docs]
        docs = run([t.text for t in texts])
    row.metric, row.quality = quality(job, docs, texts)
    return row


def setup_reference(job: Job, checkpoint: str, warmup: List[str]) -> Optional[Callable]:
    """The job's paired reference runner, warmed up: the naive loop (fp32, one call per
    (text, prompt)) or the same tasks as separate pipelines."""
    if not job.reference:
        return None
    naive = job.reference == "naive"
    ref_job = replace(job, kind=job.reference, precision="fp32" if naive else job.precision,
                      batch_size=1 if naive else job.batch_size, reference="")
    run, _ = SETUPS[ref_job.kind](ref_job, checkpoint)
    run(warmup)
    return run
