"""Registered architectures: how the `cortex` component's model is built from config."""
import sys
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Optional

import spacy.util
from spacy.util import registry

from .core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint

if TYPE_CHECKING:  # torch and transformers load when a model is built, not at import
    from .core.model import CortexModel


@dataclass
class CortexModelSpec:
    """What to load; loaded on first use, so spacy.load reads the weights only once
    (from the pipeline folder, not from the configured checkpoint)."""

    checkpoint: str
    max_length: int
    stride: int
    max_batch_tokens: Optional[int]
    precision: str
    device: str = "auto"

    def settings(self) -> dict:
        return {
            "max_length": self.max_length,
            "stride": self.stride,
            "max_batch_tokens": self.max_batch_tokens,
            "precision": self.precision,
            "device": self.device,
        }

    def load(self, path: Optional[str] = None) -> "CortexModel":
        from .core.model import CortexModel

        folder = path if path is not None else resolve_checkpoint(self.checkpoint)
        return CortexModel.from_path(folder, **self.settings())

    def deferred(self) -> "CortexModel":
        """The configured checkpoint, resolved and read on first use."""
        from .core.model import CortexModel

        return CortexModel(loader=partial(load_checkpoint, self.checkpoint), **self.settings())


def load_checkpoint(name_or_path: str):
    """(hf_model, tokenizer, stored_fp16) of a registered checkpoint name or a folder."""
    from .core.model import load_hf_model, stored_fp16

    path = resolve_checkpoint(name_or_path)
    return (*load_hf_model(path), stored_fp16(path))


@registry.architectures("spacy_cortex.CortexModel.v1")
def cortex_model_v1(
    checkpoint: str = DEFAULT_CHECKPOINT,
    max_length: int = 384,
    stride: int = 64,
    max_batch_tokens: Optional[int] = None,
    precision: str = "auto",
    device: str = "auto",
) -> CortexModelSpec:
    """checkpoint: a registered name (default "cortex-mini-en") or a path to a Hugging Face
    token-classification folder with 3 labels and safetensors weights; checked here (not
    read: the weights load on first use), except while spacy.load builds a saved pipeline.
    max_length: tokens per window; stride: overlap of consecutive windows of a long text;
    max_batch_tokens: padded tokens per forward pass (null: 2048 on CPU, 16384 on a CUDA
    GPU); precision: "auto" (GPU: bf16 where supported, else fp16; CPU: bf16 where the CPU
    has native bf16, else fp32), "fp32", "bf16" or "fp16" (CUDA only); device: "auto"
    (follow spaCy: the GPU of spacy.prefer_gpu / require_gpu / --gpu-id, else CPU), "cpu",
    "cuda", "cuda:N" or "mps" (for torch with CUDA but no CuPy)."""
    from .core.device import resolve_device, resolve_precision
    from .core.model import check_checkpoint_dir

    if max_batch_tokens is not None and max_batch_tokens < 1:
        raise ValueError(f"max_batch_tokens must be at least 1 (or null for the device's default), got {max_batch_tokens}")
    resolve_precision(precision, resolve_device(device))  # unknown names, missing devices fail at config time
    if not loading_saved_pipeline():  # a missing or wrong checkpoint fails at add_pipe / assemble
        check_checkpoint_dir(resolve_checkpoint(checkpoint), max_length=max_length)
    return CortexModelSpec(checkpoint, max_length, stride, max_batch_tokens, precision, device)


def loading_saved_pipeline() -> bool:
    """Whether spacy.load is building a saved pipeline: it creates every component from
    the saved config and then reads the weights from the pipeline folder (from_disk), so
    the configured checkpoint need not exist there (a pipeline moved to another machine)."""
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is spacy.util.load_model_from_path.__code__:
            return True
        frame = frame.f_back
    return False
