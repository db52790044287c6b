"""Prompt templates, kept as data."""
import json
import re
import string
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional, Sequence, Union

TEMPLATES_DIR = Path(__file__).parent

Labels = Union[str, Sequence[str], Dict[str, str]]


@lru_cache(maxsize=None)
def task_template(task: str) -> str:
    """The default prompt template of a component task (templates/tasks.json)."""
    return json.loads((TEMPLATES_DIR / "tasks.json").read_text(encoding="utf8"))[task]


@lru_cache(maxsize=None)
def label_abbreviations() -> Dict[str, str]:
    """Entity-type abbreviations users type as labels, as words (templates/label_words.json)."""
    return json.loads((TEMPLATES_DIR / "label_words.json").read_text(encoding="utf8"))


def check_template(template: str, placeholder: str = "label") -> None:
    """Raises ValueError unless `template` has `{placeholder}` and no other placeholder."""
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as err:  # a lone "{" or "}"
        raise ValueError(f"Template {template!r} is not a valid format string: {err}") from None
    if placeholder not in fields:
        raise ValueError(f"Template {template!r} has no {{{placeholder}}} placeholder")
    if fields - {placeholder}:
        others = ", ".join(f"{{{f}}}" for f in sorted(fields - {placeholder}))
        raise ValueError(f"Template {template!r} has placeholders other than {{{placeholder}}}: {others} "
                         "(write literal braces as {{ and }})")


def label_prompts(labels: Labels, template: Optional[str], task: str) -> Dict[str, str]:
    """{label: prompt}: labels given as a list (or one label as a string) get `template`
    (None: the task's default in tasks.json), a {label: prompt} dict keeps its prompts.

    Raises ValueError for no labels, an empty or blank label or prompt, or a template
    without {label} / with another placeholder. Warns (UserWarning) about a label given
    twice and about a template given beside a dict, which has prompts of its own.
    """
    if isinstance(labels, str):
        labels = [labels]
    if not labels:
        raise ValueError("No labels given: pass a list of labels or a {label: prompt} dict")
    if isinstance(labels, dict):
        if template is not None:
            warnings.warn(f"template {template!r} is not used: the labels come with their own prompts")
        prompts = {_label(label, i): str(prompt) for i, (label, prompt) in enumerate(labels.items())}
        for label, prompt in prompts.items():
            if not prompt.strip():
                raise ValueError(f"Label {label!r} has an empty prompt")
        return warn_same_prompts(prompts)
    template = task_template(task) if template is None else template
    check_template(template)
    names = [_label(label, i) for i, label in enumerate(labels)]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        warnings.warn(f"Labels given more than once (each is asked once): {repeated}")
    return warn_same_prompts({name: template.format(label=label_words(name)) for name in names})


def warn_same_prompts(prompts: Dict[str, str]) -> Dict[str, str]:
    """Warns (UserWarning) about labels whose prompts are the same (PER and PERSON both
    "person": they find the same spans, and only one label is kept); returns `prompts`."""
    by_prompt: Dict[str, list] = {}
    for name, prompt in prompts.items():
        by_prompt.setdefault(prompt, []).append(name)
    same = [names for names in by_prompt.values() if len(names) > 1]
    if same:
        warnings.warn(f"Labels asked with the same prompt (they find the same spans): {same}")
    return prompts


def check_none_label(none_label: Optional[str], labels) -> None:
    """Raises ValueError for a "none of these" category that is blank or one of the labels."""
    if none_label is not None and (not none_label.strip() or none_label in labels):
        raise ValueError(f"none_label {none_label!r} must be a non-empty name that is not one of the labels")


def _label(label, position: int) -> str:
    name = str(label)
    if not name.strip():
        raise ValueError(f"Label {position + 1} is empty or blank ({label!r}): give every label a name")
    return name


def label_words(label: str) -> str:
    """How a label reads inside a prompt: 'ORG' (or 'Org', 'org') -> 'organization' (spaCy /
    OntoNotes / CoNLL abbreviations, templates/label_words.json, in any case), 'SPORTS_NEWS' -> 'sports news',
    'billing_issue' -> 'billing issue', 'MilitaryPlatform' -> 'military platform' (two or
    more capitalized words run together); anything else as it is ('iPhone', 'writer')."""
    key = label.upper().replace("-", "_")  # 'Org' and 'per' are ORG and PER too
    if key in label_abbreviations():
        return label_abbreviations()[key]
    if re.fullmatch(r"(?:[A-Z][a-z]+){2,}", label):
        return " ".join(re.findall(r"[A-Z][a-z]+", label)).lower()
    return label.replace("_", " ").lower() if label.isupper() or "_" in label else label


def with_article(noun: str) -> str:
    """'a writer', 'an author' (by spelling: good enough for the model)."""
    return ("an " if noun[:1].lower() in "aeio" else "a ") + noun


def strip_end(text: str) -> str:
    """Sentence without trailing punctuation, to embed it inside a question."""
    return text.strip().rstrip(" .!?")
