"""Prompt templates, kept as data."""
import json
from functools import lru_cache
from pathlib import Path

TEMPLATES_DIR = Path(__file__).parent


@lru_cache(maxsize=None)
def task_template(task: str) -> str:
    """The default prompt template of a component task (templates/tasks.json)."""
    return json.loads((TEMPLATES_DIR / "tasks.json").read_text(encoding="utf8"))[task]


def label_prompts(labels, template: str) -> dict:
    """{label: prompt}: labels given as a list get the template, a dict keeps its prompts."""
    if not labels:
        raise ValueError("No labels given: pass a list of labels or a {label: prompt} dict")
    if isinstance(labels, dict):
        return {str(label): str(prompt) for label, prompt in labels.items()}
    if "{label}" not in template:
        raise ValueError(f"Template {template!r} has no {{label}} placeholder")
    return {str(label): template.format(label=label_words(label)) for label in labels}


def label_words(label: str) -> str:
    """How a label reads inside a prompt: 'SPORTS_NEWS' -> 'sports news'."""
    return label.replace("_", " ").lower() if label.isupper() or "_" in label else label


def with_article(noun: str) -> str:
    """'a writer', 'an author' (by spelling: good enough for the model)."""
    return ("an " if noun[:1].lower() in "aeio" else "a ") + noun


def strip_end(text: str) -> str:
    """Sentence without trailing punctuation, to embed it inside a question."""
    return text.strip().rstrip(" .!?")
