"""What crosses to and from the lent GPU machine (docs: scripts/gpu_train.sh).

Going there: the working tree (tracked files, untracked files git does not ignore) and the
carried ignored paths, 64 MiB in all: `travel-size` sums them and fails above the limit,
before anything is sent. Coming back: at most 8 files of 16 MiB each, so a trained model's
weights leave as fp16 safetensors bytes cut into parts (`split`) with a manifest (part
sizes, sha256 of the whole and of each part, config.json, cortex.json), and are joined here
into a checkpoint folder (`join`) that `CortexModel.from_path` loads like any other.

    python -m spacy_cortex.training.parts travel-size --carry gpu_pack
    python -m spacy_cortex.training.parts split TRAINED_FOLDER $OUT --base spacy_cortex/models/cortex-mini-en
    python -m spacy_cortex.training.parts join FETCHED_DIR CHECKPOINT --base spacy_cortex/models/cortex-mini-en

Imports numpy, safetensors and typer only: no torch (quick to start), no spaCy.
"""
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Dict, Iterable, List, Tuple

import numpy as np
import typer
from safetensors.numpy import load_file, save
from ..commands import typer_app

MIB = 1 << 20
TRAVEL_LIMIT = 64 * MIB  # what the run tool carries to the GPU machine, in bytes
PART_LIMIT = 15 * MIB  # bytes per part: under the 16 MiB a returned file may hold
MANIFEST = "weights.manifest.json"
WEIGHTS_FILE = "model.safetensors"
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "tokenizer_config.json", "special_tokens_map.json")
SETTINGS_FILES = ("config.json", "cortex.json")  # written by training: they travel back in the manifest

app = typer_app(__doc__.split("\n\n")[0])


class PartsError(ValueError):
    """A travel size over the limit, a missing or corrupted part, or a base that does not
    match the one the weights were trained from; the message says which."""


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _walk(path: Path) -> Iterable[Path]:
    """The files under `path` (itself when it is a file); .git folders skipped."""
    if path.is_file():
        yield path
        return
    for folder, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if d != ".git"]
        yield from (Path(folder) / name for name in files)


def travel_files(root: Path, carry: Iterable[str] = ()) -> List[Path]:
    """The files that travel from `root` to the GPU machine: `git ls-files --cached --others
    --exclude-standard` (tracked, and untracked but not ignored; deleted ones left out) plus
    every file under the carried paths. Outside a git checkout (on the GPU machine, where
    the copy arrives without .git) every file under `root`. Paths are absolute, unique."""
    try:
        listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                                cwd=root, capture_output=True, check=True).stdout.decode().split("\0")
        files = {root / name for name in listed if name}
    except (OSError, subprocess.CalledProcessError):
        files = set(_walk(root))
    for path in carry:
        files.update(_walk(root / path))
    return sorted(p.resolve() for p in files if p.is_file() and not p.is_symlink())


def travel_size(root: Path, carry: Iterable[str] = (), limit: int = TRAVEL_LIMIT) -> Tuple[int, List[Tuple[int, str]]]:
    """(total bytes, the five largest (bytes, relative path)) of travel_files. Raises
    PartsError naming the total, the limit and the largest files when total > limit."""
    sizes = [(p.stat().st_size, os.path.relpath(p, root.resolve())) for p in travel_files(root, carry)]
    total = sum(size for size, _ in sizes)
    largest = sorted(sizes, reverse=True)[:5]
    if total > limit:
        named = ", ".join(f"{name} {size / MIB:.1f} MiB" for size, name in largest)
        raise PartsError(f"{total / MIB:.1f} MiB would travel to the GPU machine, over its {limit / MIB:.1f} MiB "
                         f"limit (largest: {named}): pack less (--budget-mib) or carry fewer paths")
    return total, largest


def fp16_bytes(folder: Path) -> bytes:
    """The safetensors bytes of `folder`'s weights with every floating tensor cast to fp16
    (the shipped model's format: 45 MB for MiniLM-L6 with its head). The weights are read
    with numpy: fp32 or fp16 (what CortexModel.save writes), not bf16. The header says
    format "pt", as torch's save_pretrained writes it: transformers 4.x refuses a file without."""
    tensors = load_file(str(folder / WEIGHTS_FILE))
    return save({k: np.ascontiguousarray(v.astype(np.float16) if np.issubdtype(v.dtype, np.floating) else v)
                 for k, v in tensors.items()}, metadata={"format": "pt"})


def file_digests(folder: Path, names: Iterable[str]) -> Dict[str, str]:
    """{name: sha256} of the files among `names` that exist in `folder`."""
    return {n: sha256_of((folder / n).read_bytes()) for n in names if (folder / n).exists()}


def split_weights(folder: Path, dest: Path, base: Path, part_limit: int = PART_LIMIT) -> dict:
    """Write `folder`'s weights (a trained checkpoint) as fp16 parts `weights.partNN` of at
    most part_limit bytes into `dest`, and the manifest beside them; returns the manifest.
    `base`: the folder the run trained from, whose tokenizer `join` will take (its files'
    sha256 are recorded so that join can check it is given the same one)."""
    data = fp16_bytes(folder)
    dest.mkdir(parents=True, exist_ok=True)
    parts = []
    for i, start in enumerate(range(0, len(data), part_limit)):
        chunk = data[start : start + part_limit]
        name = f"weights.part{i:02d}"
        (dest / name).write_bytes(chunk)
        parts.append({"name": name, "bytes": len(chunk), "sha256": sha256_of(chunk)})
    manifest = {
        "bytes": len(data), "sha256": sha256_of(data), "parts": parts,
        "settings": {n: json.loads((folder / n).read_text(encoding="utf8")) for n in SETTINGS_FILES
                     if (folder / n).exists()},
        "base_tokenizer": file_digests(base, TOKENIZER_FILES),
    }
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf8")
    return manifest


def read_parts(source: Path, manifest: dict) -> bytes:
    """The whole weights from the parts in `source`. Raises PartsError for a missing part,
    one of another size or sha256, or a whole whose sha256 differs from the manifest's."""
    chunks = []
    for part in manifest["parts"]:
        path = source / part["name"]
        if not path.exists():
            raise PartsError(f"{path} missing: fetch every part the manifest lists")
        chunk = path.read_bytes()
        if len(chunk) != part["bytes"] or sha256_of(chunk) != part["sha256"]:
            raise PartsError(f"{path}: {len(chunk)} bytes with sha256 {sha256_of(chunk)[:12]}…, the manifest says "
                             f"{part['bytes']} bytes, {part['sha256'][:12]}…: the part is corrupted or from another run")
        chunks.append(chunk)
    data = b"".join(chunks)
    if sha256_of(data) != manifest["sha256"]:
        raise PartsError(f"the joined weights have sha256 {sha256_of(data)[:12]}…, the manifest says "
                         f"{manifest['sha256'][:12]}…")
    return data


def join_parts(source: Path, dest: Path, base: Path) -> Path:
    """Join the parts in `source` (with its manifest) into the checkpoint folder `dest`:
    model.safetensors (fp16), the manifest's config.json / cortex.json, the tokenizer files of
    `base`. Raises PartsError as read_parts, and when `base`'s tokenizer files differ from
    those the run trained with. Returns dest."""
    manifest_path = source / MANIFEST
    if not manifest_path.exists():
        raise PartsError(f"{manifest_path} missing: give the folder the GPU run's files were fetched into")
    manifest = json.loads(manifest_path.read_text(encoding="utf8"))
    data = read_parts(source, manifest)
    expected = manifest["base_tokenizer"]
    found = file_digests(base, TOKENIZER_FILES)  # all of them: a file added or missing is a difference too
    if found != expected:
        raise PartsError(f"{base}'s tokenizer files differ from those of the base the run trained from "
                         f"({', '.join(sorted(expected))}): give that base with --base")
    dest.mkdir(parents=True, exist_ok=True)
    (dest / WEIGHTS_FILE).write_bytes(data)
    for name, settings in manifest["settings"].items():
        (dest / name).write_text(json.dumps(settings, indent=2), encoding="utf8")
    for name in expected:
        shutil.copyfile(base / name, dest / name)
    return dest


def _usage(error: PartsError) -> typer.Exit:
    typer.echo(f"Error: {error}", err=True)
    return typer.Exit(1)


@app.command("travel-size")
def travel_size_command(
    carry: List[str] = typer.Option([], help="An ignored path the run tool will carry (repeat the option)"),
    root: Path = typer.Option(Path("."), help="The repository root"),
):
    """Print what would travel to the GPU machine; exit 1 above 64 MiB."""
    try:
        total, largest = travel_size(root, carry)
    except PartsError as error:
        raise _usage(error)
    typer.echo(f"travel size {total / MIB:.1f} MiB of {TRAVEL_LIMIT / MIB:.0f} MiB "
               f"({(TRAVEL_LIMIT - total) / MIB:.1f} MiB left; largest {largest[0][1] if largest else '-'})")


@app.command("split")
def split_command(folder: Path = typer.Argument(..., exists=True, file_okay=False, help="Trained checkpoint folder"),
                  dest: Path = typer.Argument(..., help="Where the parts go (e.g. $OUT)"),
                  base: Path = typer.Option(..., exists=True, file_okay=False, help="The folder training started from"),
                  part_mib: float = typer.Option(PART_LIMIT / MIB, help="MiB per part at most")):
    """Write the weights as fp16 parts and a manifest."""
    manifest = split_weights(folder, dest, base, int(part_mib * MIB))
    typer.echo(f"{len(manifest['parts'])} parts, {manifest['bytes'] / MIB:.1f} MiB, sha256 {manifest['sha256'][:16]}")


@app.command("join")
def join_command(source: Path = typer.Argument(..., exists=True, file_okay=False, help="Folder of the fetched parts"),
                 dest: Path = typer.Argument(..., help="Checkpoint folder to write"),
                 base: Path = typer.Option(..., exists=True, file_okay=False, help="The base the run trained from")):
    """Join fetched parts into a checkpoint folder."""
    try:
        join_parts(source, dest, base)
    except PartsError as error:
        raise _usage(error)
    typer.echo(f"Wrote {dest}")


if __name__ == "__main__":
    app()
