"""The command line: label parsing and `annotate` end to end on a tiny model."""
import json

from typer.testing import CliRunner

from spacy_cortex.cli import app, build_pipeline, parse_labels


def test_parse_labels():
    assert parse_labels(["PERSON", "DRUG = Which drugs?"]) == {"PERSON": None, "DRUG": "Which drugs?"}


def test_labels_without_a_prompt_get_the_ner_template(tiny_checkpoint):
    nlp = build_pipeline(str(tiny_checkpoint), "fp32", ["PERSON", "DRUG=Which drugs?"], [], [],
                         True, 0.7)
    prompts = nlp.get_pipe("cortex_ner").task.label_prompts
    assert prompts == {"PERSON": "Find all person mentioned in the text.", "DRUG": "Which drugs?"}
    assert nlp.get_pipe("cortex_ner").task.prefer_specific


def test_prefer_specific_can_be_turned_off(tiny_checkpoint, tmp_path):
    nlp = build_pipeline(str(tiny_checkpoint), "fp32", ["PERSON", "WRITER"], [], [], True, 0.7,
                         prefer_specific=False)
    assert not nlp.get_pipe("cortex_ner").task.prefer_specific
    source = tmp_path / "texts.txt"
    source.write_text("Charles Dickens wrote it.\n", encoding="utf8")
    result = CliRunner().invoke(app, ["annotate", str(source), "--model", str(tiny_checkpoint),
                                      "--precision", "fp32", "--ner", "PERSON", "--ner", "WRITER",
                                      "--no-prefer-specific"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.splitlines()[0])["text"] == "Charles Dickens wrote it."


def test_annotate_writes_one_line_per_input_line(tiny_checkpoint, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("Maria took aspirin.\n\n🙂 fine\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    result = CliRunner().invoke(app, [
        "annotate", str(source), "-o", str(out), "--model", str(tiny_checkpoint),
        "--precision", "fp32", "--ner", "PERSON", "--cat", "health", "--cat", "sports",
        "-q", "Who took it?"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf8").splitlines()]
    assert [r["text"] for r in records] == ["Maria took aspirin.", "", "🙂 fine"]
    assert all(set(r["cats"]) == {"health", "sports"} and len(r["answers"]) == 1 for r in records)


import pytest
import typer


@pytest.mark.parametrize("values,match", [
    (["=Which drugs?"], "label before '=' is empty"), (["  = x"], "label before '=' is empty"),
    (["DRUG", "DRUG=Which?"], "given twice"),
])
def test_parse_labels_rejects_empty_and_repeated_labels(values, match):
    with pytest.raises(typer.BadParameter, match=match):
        parse_labels(values)


def test_one_cat_is_yes_no_and_none_label(negative_checkpoint, tmp_path):
    source = tmp_path / "texts.txt"
    source.write_text("please refund me\n", encoding="utf8")
    common = ["annotate", str(source), "--model", str(negative_checkpoint), "--precision", "fp32"]
    one = CliRunner().invoke(app, common + ["--cat", "refund"])
    assert one.exit_code == 0, one.output
    assert json.loads(one.stdout.splitlines()[0])["cats"]["refund"] < 0.01  # was always 1.0
    none = CliRunner().invoke(app, common + ["--cat", "refund", "--cat", "billing", "--none-label", "none"])
    assert none.exit_code == 0, none.output
    assert json.loads(none.stdout.splitlines()[0])["cats"]["none"] > 0.99


@pytest.mark.parametrize("options", [
    ["--cat", ""], ["--cat", "a", "--cat", "b", "--none-label", "a"], ["--ner", "X", "--threshold", "1.5"],
    ["--ner", "X", "--threshold", "0"], ["-q", " "],
])
def test_bad_option_values_are_usage_errors(tiny_checkpoint, tmp_path, options):
    source = tmp_path / "texts.txt"
    source.write_text("text\n", encoding="utf8")
    result = CliRunner().invoke(app, ["annotate", str(source), "--model", str(tiny_checkpoint)] + options)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
