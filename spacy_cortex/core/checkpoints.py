"""Named checkpoints: name -> model folder. `cortex-mini-en` is shipped inside the package;
other packages add names through the `spacy_cortex_checkpoints` entry point group (a
function returning the folder), and code adds them with `register`.

A plain dict and `importlib.metadata` rather than catalogue (spaCy's registry library): the
core runs where spaCy and its dependencies are not installed (the GPU machine's Python).
"""
from importlib.metadata import entry_points
from pathlib import Path
from typing import Callable, Dict, Union

DEFAULT_CHECKPOINT = "cortex-mini-en"
MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
ENTRY_POINT_GROUP = "spacy_cortex_checkpoints"

_registered: Dict[str, Callable[[], Union[str, Path]]] = {DEFAULT_CHECKPOINT: lambda: MODELS_DIR / DEFAULT_CHECKPOINT}


def register(name: str, func: Callable[[], Union[str, Path]]) -> None:
    """Register `func` (no arguments, returns the folder) under `name`; a later call with
    the same name replaces it."""
    _registered[name] = func


def registered() -> Dict[str, Callable[[], Union[str, Path]]]:
    """{name: function returning the folder}: entry points, then names registered here."""
    found = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    named = {name: (lambda ep=ep: ep.load()()) for name, ep in found.items()}
    return {**named, **_registered}


def resolve_checkpoint(name_or_path: Union[str, Path]) -> Path:
    """The folder of a registered checkpoint name, or `name_or_path` as a path.

    Raises ValueError for an empty name and FileNotFoundError for a name that is neither
    registered nor an existing folder (the message lists the registered names)."""
    if not str(name_or_path).strip():
        raise ValueError("Empty cortex checkpoint: give a registered name or a folder")
    known = registered()
    if str(name_or_path) in known:
        return Path(known[str(name_or_path)]())
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise FileNotFoundError(
            f"Cortex checkpoint {str(name_or_path)!r} is neither a registered name "
            f"({', '.join(sorted(known))}) nor an existing folder"
        )
    return path
