"""catalogue registries: named checkpoints and cortex tasks (other packages can add
entries through the `spacy_cortex_checkpoints` / `spacy_cortex_tasks` entry points)."""
from pathlib import Path

import catalogue

checkpoints = catalogue.create("spacy_cortex", "checkpoints", entry_points=True)
tasks = catalogue.create("spacy_cortex", "tasks", entry_points=True)

DEFAULT_CHECKPOINT = "cortex-mini-en"
MODELS_DIR = Path(__file__).parent / "models"


@checkpoints.register(DEFAULT_CHECKPOINT)
def cortex_mini_en() -> Path:
    """The shipped default: all-MiniLM-L6-v2 trained on the CORTEX multi-task corpus."""
    return MODELS_DIR / DEFAULT_CHECKPOINT


def resolve_checkpoint(name_or_path: str) -> Path:
    """A registered checkpoint name, or a path to a Hugging Face model folder."""
    if not str(name_or_path).strip():
        raise ValueError("Empty cortex checkpoint: give a registered name or a folder")
    if name_or_path in checkpoints:
        return Path(checkpoints.get(name_or_path)())
    path = Path(name_or_path).expanduser()
    if not path.exists():
        known = ", ".join(sorted(checkpoints.get_all())) or "none"
        raise FileNotFoundError(
            f"Cortex checkpoint {name_or_path!r} is neither a registered name ({known}) "
            f"nor an existing folder"
        )
    return path
