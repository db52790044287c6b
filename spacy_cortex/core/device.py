"""Which torch device the cortex model runs on, and at which precision.

"auto" follows spaCy: after `spacy.prefer_gpu()` / `spacy.require_gpu(N)` (and `spacy
train/evaluate/apply --gpu-id N`, which call them) thinc's current ops are CuPy ops on GPU
N, and thinc's own `get_torch_default_device` names the matching torch device. Where thinc
was never imported (the core without spaCy, e.g. the GPU scripts) "auto" is the CPU, as it
is in spaCy until a GPU is asked for. Users with a CUDA build of torch but no CuPy name the
device themselves ("cuda", "cuda:N").
"""
import os
import re
import sys
from typing import Optional

import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")
# Padded tokens per forward pass by default. CPU: measured (benchmarks/README.md). GPU: a
# larger pass keeps the device busy; not yet measured on a GPU here (scripts/gpu_check.sh's
# device_check sweeps it), so this is a starting point, configurable as max_batch_tokens.
DEFAULT_BATCH_TOKENS = {"cpu": 2048, "cuda": 16384, "mps": 4096}


class DeviceError(ValueError):
    """A device that is unknown or not available; the message names what exists."""


def available_devices() -> list:
    """Names of the devices torch can use here: "cpu", then "cuda:0".. and "mps"."""
    names = ["cpu"] + ([f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else [])
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        names.append("mps")
    return names


def resolve_device(device: Optional[str] = "auto") -> torch.device:
    """The torch device for a device setting: "auto" (or None) follows spaCy/thinc's current
    ops (CPU unless spaCy was told to use a GPU), "cpu", "cuda" (the current CUDA device),
    "cuda:N" or "mps". Raises DeviceError for another string or a device that is not
    available, naming what was asked and what exists."""
    spec = "auto" if device is None else str(device).strip().lower()
    if not DEVICE_PATTERN.match(spec):
        raise DeviceError(f"Unknown device {device!r}: use auto, cpu, cuda, cuda:N or mps "
                          f"(available here: {', '.join(available_devices())})")
    if spec == "auto":
        thinc_util = sys.modules.get("thinc.util")  # only a process that uses spaCy has GPU ops to follow
        return thinc_util.get_torch_default_device() if thinc_util is not None else torch.device("cpu")
    if spec.startswith("cuda"):
        if not torch.cuda.is_available():
            raise DeviceError(f"Device {device!r} asked for, but torch has no CUDA GPU here "
                              f"(torch {torch.__version__}; available: {', '.join(available_devices())})")
        index = int(spec.split(":")[1]) if ":" in spec else torch.cuda.current_device()
        if index >= torch.cuda.device_count():
            raise DeviceError(f"Device {device!r} asked for, but there are {torch.cuda.device_count()} "
                              f"CUDA devices (available: {', '.join(available_devices())})")
        return torch.device(f"cuda:{index}")
    if spec == "mps" and "mps" not in available_devices():
        raise DeviceError(f"Device 'mps' asked for, but it is not available (available: {', '.join(available_devices())})")
    return torch.device(spec)


def cpu_has_bf16() -> bool:
    """Native bf16 matmul (AVX512-BF16 or AMX): there bf16 runs 2-4x faster than fp32;
    elsewhere torch emulates it and it is slower than fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def resolve_precision(precision: str, device: torch.device = torch.device("cpu")) -> str:
    """"auto" -> on a CUDA GPU bf16 where it supports bf16, else fp16; on CPU bf16 where
    the CPU has native bf16, else fp32; on mps fp32. Raises ValueError for an unknown name
    and for fp16 off a CUDA GPU (CPUs run fp16 slower than fp32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"Unknown precision {precision!r}: use one of {', '.join(PRECISIONS)}")
    if precision == "fp16" and device.type != "cuda":
        raise ValueError(f"precision 'fp16' is for CUDA GPUs; on {device.type} use auto, fp32 or bf16")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu" and cpu_has_bf16():
        return "bf16"
    return "fp32"


def autocast_dtype(precision: str) -> Optional[torch.dtype]:
    """The autocast dtype of a resolved precision (None: fp32, no autocast)."""
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def _one_thread_after_fork() -> None:
    """A forked child runs torch single-threaded. nlp.pipe(n_process=N) forks N children
    that share the cores: with torch's default pool each (one thread per core) they
    oversubscribe them, and GNU OpenMP's pool deadlocks in a child once the parent has run
    parallel work. A child that should use more threads sets them itself (the benchmark's
    measurement processes do)."""
    torch.set_num_threads(1)


def _quiet_tokenizers_before_fork() -> None:
    """tokenizers prints a warning in every forked child (nlp.pipe(n_process=N)) once the
    parent has used its thread pool, and then turns that pool off in the child anyway:
    saying so up front keeps the children quiet. A value the user set is kept."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


_fork_hooks_installed = False


def install_fork_hooks() -> None:
    """Process-wide, once: forked children run torch on one thread, and
    TOKENIZERS_PARALLELISM defaults to "false" at a fork (see the two hooks). Installed
    when a `cortex` component is created (spaCy's nlp.pipe(n_process=N) forks), never at
    import and never by the API or the trainer, which leave the process as they found it."""
    global _fork_hooks_installed
    if not _fork_hooks_installed and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_quiet_tokenizers_before_fork, after_in_child=_one_thread_after_fork)
        _fork_hooks_installed = True
