"""The CORTEX model: an encoder with a 3-class token head, and the batching engine that
runs every (prompt, context) request of a batch together.
"""
import contextlib
import copy
import json
import logging
import os
import threading
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from safetensors import safe_open
from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer, PretrainedConfig

from .decoding import SPAN_MAX_SENTENCES
from .device import DEFAULT_BATCH_TOKENS, autocast_dtype, resolve_device, resolve_precision
from .encoding import (
    EncodedText,
    RequestResult,
    Window,
    context_room,
    encode_prompt,
    encode_text,
    encode_texts,
    isolate_symbols,
    merge_windows,
    pad_batch,
    segment_input,
    token_budget_batches,
)

NUM_LABELS = 3
# hidden layer whose token mean embeds a text for the label shortlist (CortexModel.embed):
# the 3rd of MiniLM-L6's 6 (hidden_states[-4]). Recall@k of the gold label, 400 texts each
# (python -m spacy_cortex.evaluation.many_labels RAW --layers=-1,-4,-7 --docs 400):
# banking77 R@10 72.0 against 22.0 for the last layer, DBpedia R@5 91.8 against 42.8;
# the last layers are shaped by the token head, not by similarity.
EMBEDDING_LAYER = -4
ID2LABEL = {0: "neutral", 1: "positive", 2: "negative"}
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt")  # a fast tokenizer, or a WordPiece vocabulary to build one


logger = logging.getLogger("spacy_cortex")

# transformers' from_pretrained patches process-wide torch state while it builds a model
# (empty "meta" weights, default dtype): two loads at once leave meta tensors behind, in the
# model and in any torch module created later. Every load in this process takes this lock.
_LOAD_LOCK = threading.RLock()


# transformers 4 loads weights as fp32 unless told otherwise; transformers 5 loads them in the
# dtype they are stored in (`dtype="auto"` by default), so the shipped fp16 weights would run
# (and train) in fp16 on the CPU. The dtype is therefore always given. Its argument is
# `dtype` where the config knows that name (4.56 and later; 5.x deprecates `torch_dtype`),
# `torch_dtype` before: a feature check, not a version string.
DTYPE_ARG = "dtype" if hasattr(PretrainedConfig(), "dtype") else "torch_dtype"


@contextlib.contextmanager
def _quiet_progress():
    """No progress bar on stderr while a local folder is read or written (transformers 5
    draws "Loading weights" for every load, 4.53 "Writing model shards" for every save; the
    CLI's stderr is for its own progress and rejects). transformers' switch is process-wide,
    so it is turned off only for the load or save, under _LOAD_LOCK, and restored; the bars
    of huggingface_hub (which the switch turns off and on as well) are left as they were."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars
    from transformers.utils import logging as hf_logging

    if not hf_logging.is_progress_bar_enabled():
        yield
        return
    hub_disabled = are_progress_bars_disabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()
        if hub_disabled:
            disable_progress_bars()


class CheckpointError(ValueError):
    pass


def weights_version(module: torch.nn.Module) -> Tuple[int, ...]:
    """Changes whenever a parameter is modified in place (optimizer step, load_state_dict)."""
    return tuple(p._version for p in module.parameters())


def check_checkpoint_dir(path: Path, head: bool = True, max_length: Optional[int] = None) -> None:
    """Raises CheckpointError unless `path` is a folder with config.json and safetensors
    weights, (with `head`) a config of NUM_LABELS labels and (with `max_length`) at least
    that many positions. Reads no weights."""
    if not path.is_dir():
        raise CheckpointError(f"Cortex checkpoint folder not found: {path}")
    if not (path / "config.json").exists():
        raise CheckpointError(f"{path} has no config.json: not a Hugging Face model folder")
    if not (path / WEIGHTS_FILE).exists():
        raise CheckpointError(
            f"{path} has no {WEIGHTS_FILE}: weights are read from safetensors only"
        )
    if not any((path / name).exists() for name in TOKENIZER_FILES):
        raise CheckpointError(f"{path} has no tokenizer ({' or '.join(TOKENIZER_FILES)})")
    config = json.loads((path / "config.json").read_text(encoding="utf8"))
    limit = config.get("max_position_embeddings")
    if max_length is not None and limit is not None and max_length > limit:
        raise CheckpointError(f"max_length {max_length} exceeds the {limit} positions of {path}")
    if head:
        n_labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
        if n_labels != NUM_LABELS:
            raise CheckpointError(
                f"{path} has a head of {n_labels} labels; a cortex checkpoint needs "
                f"{NUM_LABELS} (neutral / positive / negative)"
            )


def stored_fp16(path: Path) -> bool:
    """Whether the safetensors weights in `path` are stored in fp16 (header only)."""
    with safe_open(str(path / WEIGHTS_FILE), framework="pt") as weights:
        name = next(iter(weights.keys()), None)
        return name is not None and weights.get_slice(name).get_dtype() == "F16"


def load_hf_model(path: Union[str, Path], fresh_head: bool = False):
    """Load tokenizer and token-classification model from a local folder (thread-safe).

    With fresh_head, `path` is a base encoder and a new 3-class head is initialised.
    Raises CheckpointError for a folder that is missing, has no safetensors weights, has a
    head of another size or no fast tokenizer.
    """
    with _LOAD_LOCK:
        return _load_hf_model(Path(path), fresh_head)


def _load_hf_model(path: Path, fresh_head: bool):
    check_checkpoint_dir(path, head=not fresh_head)
    config = AutoConfig.from_pretrained(path, local_files_only=True)
    if fresh_head:
        config.num_labels = NUM_LABELS
        config.id2label = dict(ID2LABEL)
        config.label2id = {v: k for k, v in ID2LABEL.items()}
    elif config.num_labels != NUM_LABELS:
        raise CheckpointError(
            f"{path} has a head of {config.num_labels} labels; a cortex checkpoint needs "
            f"{NUM_LABELS} (neutral / positive / negative)"
        )
    with _quiet_progress():
        model = AutoModelForTokenClassification.from_pretrained(
            path, config=config, local_files_only=True, use_safetensors=True,
            ignore_mismatched_sizes=fresh_head,  # a base with another head gets a fresh one
            **{DTYPE_ARG: torch.float32},  # fp32 weights: exact CPU inference, training; casts are made from them
        )
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, use_fast=True)
    if not tokenizer.is_fast:
        raise CheckpointError(f"{path}: a fast tokenizer (tokenizer.json) is needed for offsets")
    isolate_symbols(tokenizer)
    return model, tokenizer


class CortexModel:
    """Encoder + 3-class token head with prompt/window batching.

    max_length: model input length per window (prompt + context + 3 special tokens).
    stride: sub-tokens shared by consecutive windows of a long context.
    max_batch_tokens: padded tokens per forward pass (None: the device's default,
        device.DEFAULT_BATCH_TOKENS).
    precision: "fp32" (exact), "bf16" / "fp16" (inference on a copy of the weights cast
        once, under autocast; training autocasts the fp32 weights; fp16 on CUDA only) or
        "auto" (GPU: bf16 where supported, else fp16; CPU: bf16 where the CPU has native
        bf16, else fp32; bf16 scores within 0.5 points of fp32, see benchmarks/).
    device: "auto" (follow spaCy: a GPU after spacy.prefer_gpu / require_gpu, else CPU),
        "cpu", "cuda", "cuda:N" or "mps"; resolved when the model is created
        (device.resolve_device; DeviceError for one that is not available).
    """

    def __init__(
        self,
        hf_model=None,
        tokenizer=None,
        *,
        loader: Optional[Callable[[], Tuple[object, object, bool]]] = None,
        stored_fp16: bool = False,
        max_length: int = 384,
        stride: int = 64,
        max_batch_tokens: Optional[int] = None,
        max_batch_size: int = 128,
        precision: str = "auto",
        device: Optional[str] = "auto",
    ):
        """Give hf_model + tokenizer, or a loader returning (hf_model, tokenizer,
        stored_fp16) on first use (so a pipeline can be built and inspected without reading
        the weights). stored_fp16: the weights came from fp16 safetensors, so that `save`
        writes fp16 again while they are unchanged. The loader runs
        once, whichever thread asks first; give a picklable one (a module-level function
        or functools.partial) so that the model pickles before it is loaded (spawn)."""
        if (hf_model is None) == (loader is None):
            raise ValueError("Give either hf_model and tokenizer, or a loader")
        if max_length < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {max_length}")
        if not 0 <= stride < max_length // 2:
            raise ValueError(f"stride must be at least 0 and less than half of max_length {max_length}, got {stride}")
        self._hf_model = hf_model
        self._tokenizer = tokenizer
        self._loader = loader
        self.max_length = max_length
        self.stride = stride
        self.device = resolve_device(device)
        self.max_batch_tokens = max_batch_tokens or DEFAULT_BATCH_TOKENS[self.device.type]
        self.max_batch_size = max_batch_size
        self._precision_setting = precision
        self.precision = resolve_precision(precision, self.device)
        self._cast_copy: Optional[Tuple[tuple, torch.nn.Module]] = None
        self._prompt_cache: Dict[str, Tuple[np.ndarray, np.ndarray, int]] = {}
        self._lock = threading.Lock()  # guards the deferred load, the cast copy and moves
        self._stored_fp16 = stored_fp16
        self._loaded_version: Optional[Tuple[int, ...]] = None
        if hf_model is not None:
            self._loaded(hf_model, tokenizer, stored_fp16)

    def _loaded(self, hf_model, tokenizer, fp16: bool) -> None:
        hf_model.to(self.device)
        self._tokenizer = tokenizer
        self._stored_fp16 = fp16
        self._loaded_version = weights_version(hf_model)
        self._hf_model = hf_model  # set last: `loaded` means everything is there
        self._check_length()

    def __getstate__(self) -> dict:
        # Locks do not pickle; the bf16 copy is made again where it is needed. Unpickled
        # tensors get new version counters: carry "unchanged since loaded" across instead.
        state = dict(self.__dict__, _cast_copy=None, _loaded_version=None)
        state["_unchanged"] = self.loaded and weights_version(self._hf_model) == self._loaded_version
        del state["_lock"]
        return state

    def __setstate__(self, state: dict) -> None:
        unchanged = state.pop("_unchanged")
        self.__dict__.update(state)
        self._lock = threading.Lock()
        if unchanged:
            self._loaded_version = weights_version(self._hf_model)

    def to(self, device: Optional[str]) -> "CortexModel":
        """Move the model to another device (see the class docstring); precision "auto" is
        resolved again for it. Returns self. Raises DeviceError as resolve_device."""
        target = resolve_device(device)
        with self._lock:
            self.precision = resolve_precision(self._precision_setting, target)
            self.device = target
            self._cast_copy = None
            if self._hf_model is not None:
                unchanged = weights_version(self._hf_model) == self._loaded_version
                self._hf_model.to(target)
                if unchanged:  # a move is no training: fp16 weights still save as fp16
                    self._loaded_version = weights_version(self._hf_model)
        return self

    @property
    def loaded(self) -> bool:
        return self._hf_model is not None

    def _ensure_loaded(self) -> None:
        if self._hf_model is not None:
            return
        with self._lock:
            if self._hf_model is None:  # another thread may have loaded it meanwhile
                self._loaded(*self._loader())

    def _check_length(self) -> None:
        limit = getattr(self._hf_model.config, "max_position_embeddings", self.max_length)
        if self.max_length > limit:
            raise ValueError(f"max_length {self.max_length} exceeds the model's {limit}")

    @property
    def hf_model(self):
        self._ensure_loaded()
        return self._hf_model

    @property
    def tokenizer(self):
        self._ensure_loaded()
        return self._tokenizer

    @classmethod
    def from_path(cls, path: Union[str, Path], **kwargs) -> "CortexModel":
        model, tokenizer = load_hf_model(path)
        return cls(model, tokenizer, stored_fp16=stored_fp16(Path(path)), **kwargs)

    @classmethod
    def from_base(cls, path: Union[str, Path], **kwargs) -> "CortexModel":
        model, tokenizer = load_hf_model(path, fresh_head=True)
        return cls(model, tokenizer, **kwargs)

    def save(self, path: Union[str, Path], fp16: Optional[bool] = None) -> None:
        """Write a Hugging Face folder (safetensors, tokenizer, cortex.json). fp16: None
        (default) keeps what was loaded (fp16 weights stay fp16 unless training changed
        them, so a saved pipeline is no larger than its checkpoint), True / False force it."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        model = self.hf_model
        if fp16 is None:
            fp16 = self._stored_fp16 and weights_version(model) == self._loaded_version
        if fp16 or self.device.type != "cpu":  # files always hold CPU tensors
            model = type(model)(model.config)
            model.load_state_dict({k: v.detach().cpu() for k, v in self.hf_model.state_dict().items()})
            if fp16:
                model.half()
        with _LOAD_LOCK, _quiet_progress():
            model.save_pretrained(path, safe_serialization=True)
        self.tokenizer.save_pretrained(path)
        settings = {"max_length": self.max_length, "stride": self.stride}
        (path / "cortex.json").write_text(json.dumps(settings, indent=2))
        # transformers writes the weights through a private temporary file (mode 0600): give
        # them the mode every other file got from the umask, so a shared pipeline loads
        os.chmod(path / WEIGHTS_FILE, (path / "cortex.json").stat().st_mode & 0o777)

    # --- encoding ------------------------------------------------------------------------

    def encode_text(self, text: str) -> EncodedText:
        return encode_text(self.tokenizer, text)

    def encode_texts(self, texts: Sequence[str]) -> List[EncodedText]:
        """encode_text of every text, in one tokenizer call."""
        return encode_texts(self.tokenizer, texts)

    def prompt_ids(self, prompt: str) -> np.ndarray:
        return self._prompt_input(prompt)[0][1:-1]

    def _prompt_input(self, prompt: str) -> Tuple[np.ndarray, np.ndarray, int]:
        """(`[CLS] prompt [SEP]` ids, `[SEP]` ids, context room), once per prompt. Raises
        PromptTooLongError when the prompt leaves too little room for the text."""
        if prompt not in self._prompt_cache:
            tokenizer = self.tokenizer
            ids = encode_prompt(tokenizer, prompt)
            room = context_room(tokenizer, len(ids), self.max_length)  # fail early if too long
            prefix = segment_input(tokenizer, ids)
            self._prompt_cache[prompt] = (prefix, prefix[-1:], room)
        return self._prompt_cache[prompt]

    def windows(self, requests: Sequence[Tuple[str, EncodedText]],
                window: Optional[Dict[str, int]] = None) -> List[Window]:
        """The model inputs of the requests. window: {prompt: the most text sub-tokens per
        window} for prompts read in shorter windows than max_length leaves room for; a
        window of a paragraph longer than that holds at most SPAN_MAX_SENTENCES sentences
        (decoding.py)."""
        windows = []
        window = window or {}
        for i, (prompt, encoded) in enumerate(requests):
            prefix, sep, room = self._prompt_input(prompt)
            max_sentences = SPAN_MAX_SENTENCES if prompt in window else None
            room = min(room, window.get(prompt, room))
            for start, end in encoded.windows(room, self.stride, max_sentences):
                ids = np.concatenate((prefix, encoded.ids[start:end], sep))  # build_input, prefix cached
                windows.append(Window(i, start, ids, len(prefix) - 2))
        return windows

    def batches(self, windows: Sequence[Window]):
        for group in token_budget_batches(windows, self.max_batch_tokens, self.max_batch_size):
            yield pad_batch(group, self.tokenizer.pad_token_id)

    # --- running -------------------------------------------------------------------------

    def autocast(self):
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    @property
    def inference_model(self) -> torch.nn.Module:
        """The module inference runs: the weights themselves in fp32; in bf16 / fp16 a copy
        cast once (autocast alone would cast every weight matrix again on every pass), made
        again when the weights change (training) or move."""
        model = self.hf_model
        dtype = autocast_dtype(self.precision)
        if dtype is None:
            return model
        version = (weights_version(model), str(self.device), str(dtype))
        with self._lock:
            if self._cast_copy is None or self._cast_copy[0] != version:
                self._cast_copy = (version, copy.deepcopy(model).to(self.device, dtype).eval())
            return self._cast_copy[1]

    def to_device(self, array: np.ndarray) -> torch.Tensor:
        """A host array as a tensor on the model's device: through pinned memory with a
        non-blocking copy on CUDA, shared (no copy) on CPU."""
        tensor = torch.from_numpy(array)
        if self.device.type == "cuda":
            return tensor.pin_memory().to(self.device, non_blocking=True)
        return tensor.to(self.device)

    def forward(self, module: torch.nn.Module, batch, **kwargs):
        """The Hugging Face output of one pass over a padded batch (kwargs: e.g.
        output_hidden_states=True)."""
        with self.autocast():  # keeps LayerNorm and softmax in fp32 on the cast copy
            return module(
                input_ids=self.to_device(batch.input_ids),
                attention_mask=self.to_device(batch.attention_mask),
                token_type_ids=self.to_device(batch.token_type_ids),
                **kwargs,
            )

    def logits(self, module: torch.nn.Module, batch) -> torch.Tensor:
        return self.forward(module, batch).logits.float()

    def embed(self, texts: Sequence[str], layer: int = EMBEDDING_LAYER) -> np.ndarray:
        """(len(texts), hidden) unit vectors: the mean over the tokens of `[CLS] text [SEP]`
        of one layer's hidden states (`layer` indexes hidden_states: -1 the last layer, clamped
        to the embedding output for shallower models; texts past max_length are cut; a cheap
        similarity, not a decision). One fast-tokenizer call, passes under the token budget.
        Used to shortlist labels before the prompt passes (cortex_textcat `shortlist`)."""
        if not texts:
            return np.zeros((0, self.hf_model.config.hidden_size), dtype=np.float32)
        tokenizer = self.tokenizer
        encoded = tokenizer(list(texts), add_special_tokens=False, truncation=True, max_length=self.max_length - 2,
                            verbose=False)["input_ids"]
        windows = [Window(i, 0, segment_input(tokenizer, text_ids), len(text_ids))  # one segment: n_prompt = all
                   for i, text_ids in enumerate(encoded)]
        vectors = np.zeros((len(texts), self.hf_model.config.hidden_size), dtype=np.float32)
        with self.inference() as module:
            for batch in self.batches(windows):
                states = self.forward(module, batch, output_hidden_states=True).hidden_states
                hidden = states[max(layer, -len(states))].float()  # a shallower model: its embeddings
                mask = self.to_device(batch.attention_mask).unsqueeze(-1).to(hidden.dtype)
                pooled = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)
                vectors[[w.request for w in batch.windows]] = pooled.cpu().numpy()
        return vectors

    @contextlib.contextmanager
    def inference(self):
        """The module to run passes on, in eval mode without autograd; a model being
        trained goes back to train mode afterwards."""
        was_training = self.hf_model.training
        self.hf_model.eval()
        try:
            with torch.inference_mode():
                yield self.inference_model
        finally:
            self.hf_model.train(was_training)

    def run(self, requests: Sequence[Tuple[str, EncodedText]],
            window: Optional[Dict[str, int]] = None) -> List[RequestResult]:
        """Probabilities for every (prompt, encoded context) request, batched together.
        window: {prompt: the most text sub-tokens per window} (see `windows`)."""
        windows = self.windows(requests, window)
        logger.debug("%d requests -> %d windows (max_length %d, stride %d)",
                     len(requests), len(windows), self.max_length, self.stride)
        cls_parts: List[List[Tuple[int, int, np.ndarray]]] = [[] for _ in requests]
        token_parts: List[List[Tuple[int, np.ndarray]]] = [[] for _ in requests]
        with self.inference() as module:  # resolved once per run, not per batch
            for batch in self.batches(windows):
                logger.debug("pass: %d windows x %d tokens", *batch.input_ids.shape)
                # one device-to-host copy per pass
                probs = torch.softmax(self.logits(module, batch), dim=-1).cpu().numpy()
                for row, window in zip(probs, batch.windows):
                    n_context = len(window.input_ids) - window.context_offset - 1
                    offset = window.context_offset
                    cls_parts[window.request].append((window.start, n_context, row[0]))
                    token_parts[window.request].append(
                        (window.start, row[offset : offset + n_context])
                    )
        results = []
        for (prompt, encoded), cls_rows, token_rows in zip(requests, cls_parts, token_parts):
            cls_rows.sort(key=lambda part: part[0])
            cls_probs = np.stack([row for _, _, row in cls_rows])
            sizes = np.array([size for _, size, _ in cls_rows], dtype=np.int64)
            token_probs = merge_windows(len(encoded), token_rows)
            results.append(RequestResult(cls_probs, token_probs, encoded, sizes))
        return results

    def run_texts(self, pairs: Iterable[Tuple[str, str]],
                  window: Optional[Dict[str, int]] = None) -> List[RequestResult]:
        """Like run, for (prompt, text) pairs; each distinct text is tokenized once."""
        pairs = list(pairs)
        texts = list(dict.fromkeys(text for _, text in pairs))
        encoded = dict(zip(texts, self.encode_texts(texts)))
        return self.run([(prompt, encoded[text]) for prompt, text in pairs], window)
