"""The shared `cortex` component and the task components that listen to it.

`cortex` owns the model. For each batch of docs it asks every task component downstream
which prompts it needs for each doc, runs all (prompt, window) requests together and
leaves the probabilities on the doc for the task components to decode.
"""
import bisect
import json
import logging
import warnings
import random
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import srsly
from spacy.language import Language
from spacy.pipeline import Pipe
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import minibatch

from .architectures import CortexModelSpec, loading_saved_pipeline
from .core.checkpoints import resolve_checkpoint
from .core.encoding import RequestResult

if TYPE_CHECKING:  # torch and transformers load when a cortex component is created
    from .core.model import CortexModel

DEFAULT_MODEL_CONFIG = {
    "@architectures": "spacy_cortex.CortexModel.v1",
    "checkpoint": "cortex-mini-en",
    "max_length": 384,
    "stride": 64,
    "max_batch_tokens": None,
    "precision": "auto",
    "device": "auto",
}
RESULTS_ATTR = "cortex_results"
logger = logging.getLogger("spacy_cortex")


def install_extensions() -> None:
    """Doc/Span extensions, installed once however often components are created."""
    if not Doc.has_extension(RESULTS_ATTR):
        Doc.set_extension(RESULTS_ATTR, default=None)
    install_span_score()


class Cortex(Pipe):
    """Shared CORTEX model; see the factory for config keys."""

    def __init__(self, nlp: Language, name: str, model: CortexModelSpec):
        from .core.device import install_fork_hooks  # torch loads here, not at import

        install_extensions()
        install_fork_hooks()
        self.nlp = nlp
        self.name = name
        self.spec = model
        self.model: "CortexModel" = model.deferred()  # weights read on first use
        self._optimizer = None
        self._scaler = None  # fp16 loss scaling (a pass-through otherwise)
        self._rng = random.Random(0)
        # records added to every update, given the number of the listeners' records (adapt's
        # replay of general training data, training/replay.py); not saved with the pipeline
        self.replay: Optional[Callable[[int], List[dict]]] = None

    @property
    def is_trainable(self) -> bool:
        return True

    def update(
        self,
        examples: Iterable[Example],
        *,
        drop: float = 0.0,
        sgd=None,
        losses: Optional[Dict[str, float]] = None,
    ) -> Dict[str, float]:
        """One forward/backward pass over the training prompts of every listener (their
        losses summed into one gradient), plus the `replay` records when set; the step
        happens in finish_update."""
        from .core.loss import backward_on_records, grad_scaler

        losses = {} if losses is None else losses
        losses.setdefault(self.name, 0.0)
        examples = list(examples)
        records = [r for task in self.listeners() for eg in examples for r in task.training_records(eg)]
        if records and self.replay is not None:
            records += self.replay(len(records))
        if records:
            self.model.hf_model.train()
            if self._scaler is None:
                self._scaler = grad_scaler(self.model)
            losses[self.name] += backward_on_records(self.model, records, self._rng, scaler=self._scaler)
        if sgd not in (None, False):
            self.finish_update(sgd)
        return losses

    def finish_update(self, sgd) -> None:
        """Apply the accumulated gradients with torch AdamW at the learning rate (and
        gradient clipping) of spaCy's optimizer; fp16 gradients are unscaled first."""
        import torch

        from .core.loss import adamw

        params = [p for p in self.model.hf_model.parameters() if p.requires_grad]
        if not any(p.grad is not None for p in params):
            return  # no listener had training data in this batch
        if self._optimizer is None:
            self._optimizer = adamw(params, float(sgd.learn_rate))
        for group in self._optimizer.param_groups:
            group["lr"] = float(sgd.learn_rate)
        if self._scaler is not None:
            self._scaler.unscale_(self._optimizer)
        if getattr(sgd, "grad_clip", 0):
            torch.nn.utils.clip_grad_norm_(params, sgd.grad_clip)
        if self._scaler is not None:
            self._scaler.step(self._optimizer)
            self._scaler.update()
        else:
            self._optimizer.step()
        self._optimizer.zero_grad(set_to_none=True)

    def listeners(self) -> List["CortexTask"]:
        return [
            proc
            for _, proc in self.nlp.pipeline
            if isinstance(proc, CortexTask) and proc.upstream == self.name
        ]

    def __call__(self, doc: Doc) -> Doc:
        self.attach(self.listeners(), [doc])
        return doc

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        listeners = self.listeners()
        for docs in minibatch(stream, size=batch_size):
            self.attach(listeners, docs)
            yield from docs

    def attach(self, listeners: Sequence["CortexTask"], docs: Sequence[Doc]) -> None:
        """Run the prompts every listener needs for every doc in one batched call."""
        per_task = [task.batch_prompts(docs) for task in listeners]
        prompts = [sorted(set().union(*doc_prompts)) for doc_prompts in zip(*per_task)] if per_task else [[] for _ in docs]
        window = shared_windows(listeners, per_task)
        logger.debug("%s: %d docs for %s", self.name, len(docs), [task.name for task in listeners])
        for doc, results in zip(docs, self.run(docs, prompts, window)):
            doc._.set(RESULTS_ATTR, results)

    def run(
        self, docs: Sequence[Doc], prompts: Sequence[Sequence[str]], window: Optional[Dict[str, int]] = None
    ) -> List[Dict[str, RequestResult]]:
        """{prompt: result} per doc for the prompts asked of it; window: {prompt: the most
        text sub-tokens per window} (CortexModel.windows)."""
        model = self.model
        requests, owners = [], []
        asked = [i for i, doc_prompts in enumerate(prompts) if doc_prompts]
        encoded = model.encode_texts([docs[i].text for i in asked])  # one tokenizer call for the batch
        for i, text in zip(asked, encoded):
            for prompt in prompts[i]:
                requests.append((prompt, text))
                owners.append((i, prompt))
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s: prompts run: %s", self.name, sorted({p for ps in prompts for p in ps}))
        outputs: List[Dict[str, RequestResult]] = [{} for _ in docs]
        for (i, prompt), result in zip(owners, model.run(requests, window)):
            outputs[i][prompt] = result
        return outputs

    # --- serialization: the weights live here only, as safetensors ----------------------

    def to_disk(self, path, *, exclude=tuple()) -> None:
        self.model.save(path)

    def from_disk(self, path, *, exclude=tuple()) -> "Cortex":
        self.model = self.spec.load(str(path))
        self._optimizer = self._scaler = None
        return self

    def to_bytes(self, *, exclude=tuple()) -> bytes:
        with tempfile.TemporaryDirectory() as tmp:
            self.to_disk(tmp)
            files = {p.name: p.read_bytes() for p in Path(tmp).iterdir() if p.is_file()}
        return srsly.msgpack_dumps(files)

    def from_bytes(self, data: bytes, *, exclude=tuple()) -> "Cortex":
        with tempfile.TemporaryDirectory() as tmp:
            for name, content in srsly.msgpack_loads(data).items():
                (Path(tmp) / Path(name).name).write_bytes(content)
            return self.from_disk(tmp)


@Language.factory(
    "cortex",
    assigns=[f"doc._.{RESULTS_ATTR}"],
    default_config={"model": DEFAULT_MODEL_CONFIG},
)
def make_cortex(nlp: Language, name: str, model: CortexModelSpec) -> Cortex:
    """The shared CORTEX model that task components (cortex_ner, cortex_textcat,
    cortex_qa) listen to.

    model.checkpoint: registered name (default "cortex-mini-en") or a path to a Hugging Face
        token-classification folder with 3 labels (config.json, model.safetensors, tokenizer).
        Checked when the component is created (FileNotFoundError / CheckpointError), read on
        first use, once, whichever thread asks first; spacy.load reads the pipeline folder.
    model.max_length: tokens per model input (prompt + text window + 3 special tokens).
    model.stride: sub-tokens shared by consecutive windows of a long text.
    model.max_batch_tokens: padded tokens per forward pass (memory / speed trade-off; null:
        2048 on CPU, 16384 on a CUDA GPU).
    model.precision: "auto" (default: GPU bf16 where supported, else fp16; CPU bf16 where
        the CPU has native bf16, else fp32), "fp32" (exact), "bf16" (2-3x faster with
        native bf16; within 0.5 points of fp32) or "fp16" (CUDA GPUs only).
    model.device: "auto" (default: the GPU spaCy was told to use by spacy.prefer_gpu(),
        spacy.require_gpu(N) or --gpu-id N, else CPU), "cpu", "cuda", "cuda:N" or "mps"
        (for torch with CUDA but no CuPy). to_disk always writes CPU tensors.

    Importing this module loads neither torch nor transformers (spaCy imports every
    installed plugin's factories whenever a pipeline is created); creating this component
    does, and installs two fork hooks, once per process, for nlp.pipe(n_process=N): a
    forked child runs torch on one thread, and TOKENIZERS_PARALLELISM defaults to "false"
    at a fork (spacy_cortex.core.device.install_fork_hooks). Nothing else process-wide.

    A checkpoint whose config.json states its licence (the shipped one: research and
    non-commercial use) adds {name, url (its model card), license} to nlp.meta["sources"]
    and, where the pipeline states no licence, "weights: <licence>" as nlp.meta["license"], so
    meta.json of a saved or packaged pipeline carries it; one that states none adds nothing.
    """
    if not loading_saved_pipeline():  # a saved pipeline's meta.json lists it already
        add_source(nlp.meta, checkpoint_source(resolve_checkpoint(model.checkpoint)))
    return Cortex(nlp, name, model)


def checkpoint_source(folder: Path) -> Optional[dict]:
    """The meta.json `sources` entry of a checkpoint that states its licence in config.json
    ({"cortex_source": {"name": ..., "license": ..., "card": "README.md"}}): {name, url:
    where its model card is, license}. None for a checkpoint that states none: nothing is
    guessed. In the Hugging Face config, the statement travels with the weights: every
    save_pretrained (CortexModel.save, a pipeline's to_disk, training from the model) keeps it."""
    try:
        source = json.loads((Path(folder) / "config.json").read_text(encoding="utf8")).get("cortex_source")
    except (OSError, ValueError, AttributeError):  # no file, not JSON, not an object
        return None
    if not isinstance(source, dict) or not source.get("license"):
        return None
    card = Path(folder) / source.get("card", "README.md")
    return {"name": source.get("name", Path(folder).name), "url": card_location(card) if card.is_file() else "",
            "license": source["license"]}


def card_location(card: Path) -> str:
    """A model card inside this package as its path in the package (the same in every
    install, unlike this machine's folder); elsewhere its absolute path."""
    package, card = Path(__file__).resolve().parent, card.resolve()
    return str(Path(package.name) / card.relative_to(package)) if card.is_relative_to(package) else str(card)


def add_source(meta: dict, source: Optional[dict]) -> None:
    """Append `source` to meta["sources"] unless it is None or listed already, and make its
    licence the pipeline's `license` where the pipeline states none (what `spacy package`
    puts in its README and setup.py)."""
    sources = meta.setdefault("sources", [])
    if source is not None and source not in sources:
        sources.append(source)
    if source is not None and not meta.get("license"):
        meta["license"] = f"weights: {source['license']}"


def shared_windows(listeners: Sequence["CortexTask"], per_task: Sequence[List[List[str]]]) -> Dict[str, int]:
    """{prompt: the most text sub-tokens per window} for the prompts of tasks with a window.
    A prompt is run once per doc, so one that two tasks ask with different windows is read
    in the shorter (None: no limit), with a UserWarning naming both tasks."""
    window: Dict[str, Optional[int]] = {}
    asked_by: Dict[str, str] = {}
    for task, task_prompts in zip(listeners, per_task):
        for prompt in set().union(*task_prompts):
            if prompt in asked_by and window[prompt] != task.window:
                shorter = min(w for w in (window[prompt], task.window) if w is not None)
                warnings.warn(f"{asked_by[prompt]!r} (window {window[prompt]}) and {task.name!r} (window "
                              f"{task.window}) both ask {prompt!r}: it is read once, in windows of {shorter}")
                window[prompt] = shorter
            else:
                window.setdefault(prompt, task.window)
            asked_by.setdefault(prompt, task.name)
    return {prompt: size for prompt, size in window.items() if size is not None}


def ensure_cortex(nlp: Language, upstream: str) -> None:
    """A task component added to a pipeline without its cortex component brings one (with
    a warning where another cortex exists: `upstream` may be misspelt)."""
    if upstream in nlp.component_names:
        return
    others = [name for name in nlp.component_names if isinstance(nlp.get_pipe(name), Cortex)]
    if others:
        warnings.warn(f"upstream {upstream!r} is not in the pipeline, so a second cortex model is added "
                      f"under that name; the pipeline has {others}: set upstream to share it")
    nlp.add_pipe("cortex", name=upstream, first=True)


class Task:
    """What every task shares: a hook to look at the shared model before decoding, and the
    window its prompts read the text in."""

    # The most text sub-tokens per window for this task's prompts (None: as many as the
    # model's max_length leaves beside the prompt).
    window: Optional[int] = None

    def prepare(self, model) -> None:
        """Called with the shared CortexModel before each batch is decoded; most tasks
        need nothing from it."""

    def batch_prompts(self, docs: Sequence[Doc], model) -> List[List[str]]:
        """The prompts to run for each doc of a batch; a task that chooses them with the
        model (cortex_textcat's label shortlist) overrides this."""
        return [self.prompts(doc) for doc in docs]


class LabelPromptTask(Task):
    """A task asking one prompt per label; labels are always handled in sorted order so
    results never depend on the order they were configured in."""

    def __init__(self, prompts: Dict[str, str], threshold: float):
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
        self.label_prompts = prompts
        self.threshold = threshold

    @property
    def labels(self) -> List[str]:
        return sorted(self.label_prompts)

    def prompts(self, doc: Doc) -> List[str]:
        return list(self.label_prompts.values())


class CortexTask(Pipe):
    """A task component: asks `cortex` for prompts and decodes the answers onto the doc."""

    def __init__(self, nlp: Language, name: str, task, upstream: str):
        install_extensions()
        self.nlp = nlp
        self.name = name
        self.task = task
        self.upstream = upstream

    def batch_prompts(self, docs: Sequence[Doc]) -> List[List[str]]:
        return self.task.batch_prompts(docs, self.cortex().model)

    @property
    def window(self) -> Optional[int]:
        """The most text sub-tokens per window for this component's prompts (None: the
        model's max_length decides)."""
        return self.task.window

    @property
    def labels(self) -> Tuple[str, ...]:
        """The labels this component writes (entity types, categories, or the questions
        that label its answer spans); listed in meta.json by spaCy."""
        return tuple(self.task.labels)

    @property
    def label_prompts(self) -> Dict[str, str]:
        """{label: the prompt actually run for it} ("ORG": "Find all organization mentioned
        in the text."); QA: each configured question is its own prompt."""
        prompts = getattr(self.task, "label_prompts", None)
        return dict(prompts) if prompts is not None else {label: label for label in self.task.labels}

    def cortex(self) -> "Cortex":
        """The cortex component this one listens to. Raises ValueError naming it when it
        is not in the pipeline (removed or renamed)."""
        if self.upstream not in self.nlp.component_names:
            raise ValueError(
                f"{self.name!r} listens to the cortex component {self.upstream!r}, which is not "
                f"in the pipeline (components: {self.nlp.component_names}). Add it with "
                f"nlp.add_pipe('cortex', name={self.upstream!r}, first=True), or set this "
                "component's `upstream` to the cortex component's name."
            )
        cortex = self.nlp.get_pipe(self.upstream)
        if not isinstance(cortex, Cortex):
            raise ValueError(f"{self.name!r} listens to {self.upstream!r}, which is not a cortex component")
        return cortex

    def training_records(self, example: Example) -> List[dict]:
        """The task's gold answers as unified training records (training/records.py)."""
        records = [dict(record, task=self.name) for record in self.task.training_records(example.reference)]
        for record in records:
            if record.get("spans") is not None and record.get("cls") is None:
                # as convert.record: [CLS] of an extraction example = "holds an answer"
                record["cls"] = "positive" if record["spans"] else "negative"
        return records

    def __call__(self, doc: Doc) -> Doc:
        return next(iter(self.pipe([doc])))

    def pipe(self, stream: Iterable[Doc], *, batch_size: int = 128) -> Iterator[Doc]:
        for docs in minibatch(stream, size=batch_size):
            self.fill_missing(docs)
            self.task.prepare(self.cortex().model)
            for doc in docs:
                self.task.apply(doc, doc._.get(RESULTS_ATTR))
                if self.is_last_listener():
                    doc._.set(RESULTS_ATTR, None)  # free the probabilities
            yield from docs

    def fill_missing(self, docs: Sequence[Doc]) -> None:
        """Docs that did not pass through cortex (or got new questions) get their
        prompts run now, still batched."""
        missing_docs, missing_prompts = [], []
        for doc, prompts in zip(docs, self.batch_prompts(docs)):
            have = doc._.get(RESULTS_ATTR) or {}
            needed = [p for p in prompts if p not in have]
            if needed:
                missing_docs.append(doc)
                missing_prompts.append(needed)
        if not missing_docs:
            return
        window = shared_windows([self], [missing_prompts])
        for doc, results in zip(missing_docs, self.cortex().run(missing_docs, missing_prompts, window)):
            merged = dict(doc._.get(RESULTS_ATTR) or {})
            merged.update(results)
            doc._.set(RESULTS_ATTR, merged)

    def is_last_listener(self) -> bool:
        if self.upstream not in self.nlp.pipe_names:
            return True
        listeners = self.nlp.get_pipe(self.upstream).listeners()
        return not listeners or listeners[-1] is self

    def score(self, examples: Iterable[Example], **kwargs) -> Dict[str, float]:
        return self.task.score(examples)


def make_task_component(
    nlp: Language, name: str, upstream: str, build_task: Callable[[], object]
) -> CortexTask:
    task = build_task()  # validate the config before touching the pipeline
    ensure_cortex(nlp, upstream)
    return CortexTask(nlp, name, task, upstream)


SCORE_KEY = "cortex_score"


def span_score(span) -> Optional[float]:
    return span.doc.user_data.get((SCORE_KEY, span.start_char, span.end_char, span.label_))


def install_span_score() -> None:
    # Keyed by label too, so that overlapping spans of several labels keep their own score.
    if not Span.has_extension(SCORE_KEY):
        Span.set_extension(SCORE_KEY, getter=span_score)


def set_span_score(span: Span, score: float) -> None:
    """Record the span's `Span._.cortex_score` (in [0, 1])."""
    span.doc.user_data[(SCORE_KEY, span.start_char, span.end_char, span.label_)] = score


def _visible(text: str) -> int:
    return len("".join(text.split()))


def make_span(doc: Doc, start_char: int, end_char: int, label: str, score: float,
              min_marked: float = 0.0) -> Optional[Span]:
    """The span of the spaCy tokens covering a character range, with its score recorded:
    exactly the range where token boundaries allow, else widened to the tokens that hold it.
    min_marked, in [0, 1]: the least share of the widened span's non-space characters the
    range must make up, else None (the tokens are mostly text outside the range: a clause
    that a whitespace tokenizer made one token); 0.0 (the default) never returns None (the
    range comes from tokenizer offsets of non-space text)."""
    span = doc.char_span(start_char, end_char, label=label, alignment_mode="expand")
    if span is None:
        starts = [t.idx for t in doc]
        first = max(bisect.bisect_right(starts, start_char) - 1, 0)
        last = max(bisect.bisect_left(starts, end_char), first + 1)
        span = Span(doc, first, last, label=label)
    if min_marked:  # the span's own text, not doc.text: that is rebuilt from every token per call
        text = span.text
        marked = text[max(start_char - span.start_char, 0):end_char - span.start_char]
        if _visible(marked) < min_marked * _visible(text):
            return None
    set_span_score(span, score)
    return span
