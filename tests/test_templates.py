"""Prompt templates kept as data."""
import json

import pytest

from spacy_cortex.templates import TEMPLATES_DIR, label_prompts, label_words, task_template, with_article

TASKS = ["ner", "label_statement", "textcat", "entail", "similarity", "rank", "score"]
PLACEHOLDERS = {"ner": "label", "label_statement": "label", "textcat": "label", "entail": "hypothesis", "similarity": "text",
                "rank": "query", "score": "response"}


@pytest.mark.parametrize("task", TASKS)
def test_task_templates(task):
    template = task_template(task)
    key = PLACEHOLDERS[task]
    assert "{" + key + "}" in template
    filled = template.format(**{key: "XYZ"})
    assert "XYZ" in filled and "{" not in filled


def test_known_defaults():
    assert task_template("ner") == "Find all {label} mentioned in the text."
    assert task_template("textcat") == "Is this text about {label}?"


def test_unknown_task():
    with pytest.raises(KeyError):
        task_template("translation")


def test_tasks_json_is_valid_and_cached():
    data = json.loads((TEMPLATES_DIR / "tasks.json").read_text(encoding="utf8"))
    assert set(TASKS) <= set(data)
    assert task_template("ner") is task_template("ner")


def test_training_prompts_json_is_valid():
    data = json.loads((TEMPLATES_DIR / "training_prompts.json").read_text(encoding="utf8"))
    assert all("{question}" in t for t in data["qa"])
    assert all("{label}" in t for t in data["ner"])


@pytest.mark.parametrize(
    "label,words",
    [("SPORTS_NEWS", "sports news"), ("DRUG", "drug"), ("side_effect", "side effect"),
     ("Person", "person"), ("billing", "billing"), ("iPhone", "iPhone"),
     # abbreviations users type (spaCy / CoNLL labels) read as words: "Find all org" found nothing
     ("ORG", "organization"), ("LOC", "location"), ("PER", "person"), ("PERSON", "person"),
     ("GPE", "country, city or state"), ("WORK_OF_ART", "work of art"),
     ("org", "organization"), ("Org", "organization"), ("per", "person"), ("work-of-art", "work of art"),
     ("MilitaryPlatform", "military platform"), ("billing_issue", "billing issue"),
     ("PHYSICAL_QUALITY", "physical quality"), ("AcademicJournal", "academic journal")],
)
def test_label_words(label, words):
    assert label_words(label) == words


def test_label_prompts_list_and_dict():
    assert label_prompts(["DRUG", "dose"], "Find {label}.", "ner") == {"DRUG": "Find drug.", "dose": "Find dose."}
    prompts = {"DRUG": "Which medications?", "DOSE": "What doses?"}
    assert label_prompts(prompts, None, "ner") == prompts
    assert label_prompts(("a",), "{label}?", "ner") == {"a": "a?"}
    assert label_prompts(["ORG"], None, "ner") == {"ORG": "Find all organization mentioned in the text."}


def test_label_prompts_one_string_is_one_label():
    assert label_prompts("sports", "Is it {label}?", "textcat") == {"sports": "Is it sports?"}


def test_label_prompts_template_beside_dict_warns():
    with pytest.warns(UserWarning, match="not used"):
        assert label_prompts({"A": "x"}, "Find {label}.", "ner") == {"A": "x"}


def test_label_prompts_duplicates_warn():
    with pytest.warns(UserWarning, match=r"more than once.*'a'"):
        assert label_prompts(["a", "b", "a"], None, "ner") == {
            "a": "Find all a mentioned in the text.", "b": "Find all b mentioned in the text."}


@pytest.mark.parametrize("labels", [[], {}, None, ()])
def test_label_prompts_empty(labels):
    with pytest.raises(ValueError, match="No labels"):
        label_prompts(labels, "{label}", "ner")


@pytest.mark.parametrize("labels,match", [
    (["a", ""], "Label 2 is empty"), (["  "], "Label 1 is empty"), ({"": "Find it."}, "Label 1 is empty"),
    ({"X": "  "}, "'X' has an empty prompt"),
])
def test_label_prompts_blank_labels_and_prompts(labels, match):
    with pytest.raises(ValueError, match=match):
        label_prompts(labels, None, "ner")


@pytest.mark.parametrize("template,match", [
    ("Is it?", "no {label} placeholder"), ("Is {label} a {kind}?", r"other than {label}: {kind}"),
    ("Is {label} {", "not a valid format string"),
])
def test_label_prompts_bad_template(template, match):
    with pytest.raises(ValueError, match=match):
        label_prompts(["a"], template, "ner")


def test_with_article():
    assert [with_article(n) for n in ("writer", "organization", "Award", "musical artist")] == [
        "a writer", "an organization", "an Award", "a musical artist"]


def test_labels_with_the_same_prompt_warn():
    with pytest.warns(UserWarning, match=r"same prompt.*\['PER', 'PERSON'\]"):
        label_prompts(["PER", "PERSON"], None, "ner")


def test_same_prompts_in_a_dict_warn_too():
    """The CLI builds {label: prompt} itself: PER and PERSON both become "person" and only
    one of them is kept, so a dict with repeated prompts warns as a list does."""
    with pytest.warns(UserWarning, match="same prompt"):
        label_prompts({"PER": "Find all person.", "PERSON": "Find all person."}, None, "ner")
