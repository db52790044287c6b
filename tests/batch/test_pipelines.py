"""PipelineSpec: the pipeline a batch job runs, from options or a saved pipeline."""
import pytest

from spacy_cortex.batch import PipelineSpec, parse_labels


def test_parse_labels():
    assert parse_labels(["PERSON", "DRUG = Which drugs?"], "--ner", "ner") == {
        "PERSON": "Find all person mentioned in the text.", "DRUG": "Which drugs?"}
    assert parse_labels(["billing_issue", "trip=Is this about travel?"], "--cat", "textcat") == {
        "billing_issue": "Is this text about billing issue?", "trip": "Is this about travel?"}


@pytest.mark.parametrize("values,match", [
    (["=Which drugs?"], "--ner '=Which drugs\\?': the label is empty before '='"),
    (["  = x"], "the label is empty before '='"), ([""], "--ner '': the label is empty$"),
    (["PERSON="], "--ner 'PERSON=': the prompt after '=' is empty"), (["PERSON =  "], "prompt after '=' is empty"),
    (["DRUG", "DRUG=Which?"], "given twice"),
])
def test_parse_labels_rejects_empty_and_repeated_labels(values, match):
    with pytest.raises(ValueError, match=match):
        parse_labels(values, "--ner", "ner")


def test_option_errors_name_the_options(tiny_checkpoint):
    with pytest.raises(ValueError, match="^--ner / --threshold / --extend-threshold / --ner-window: threshold must be"):
        PipelineSpec(model=str(tiny_checkpoint), ner=("PERSON",), threshold=1.5).load()
    with pytest.raises(ValueError, match="--extend-threshold / --ner-window: extend_threshold must be between"):
        PipelineSpec(model=str(tiny_checkpoint), ner=("PERSON",), extend_threshold=0.0).load()
    with pytest.raises(ValueError, match="^--cat / --none-label: "):
        PipelineSpec(model=str(tiny_checkpoint), cat=("a", "b"), none_label="a").load()
    with pytest.raises(ValueError, match="^--question: Empty question"):
        PipelineSpec(model=str(tiny_checkpoint), question=(" ",)).load()


def test_labels_without_a_prompt_get_the_ner_template(tiny_checkpoint):
    nlp = PipelineSpec(model=str(tiny_checkpoint), precision="fp32", ner=("PERSON", "DRUG=Which drugs?")).load()
    prompts = nlp.get_pipe("cortex_ner").task.label_prompts
    assert prompts == {"PERSON": "Find all person mentioned in the text.", "DRUG": "Which drugs?"}
    assert nlp.get_pipe("cortex_ner").task.prefer_specific
    assert nlp.get_pipe("cortex_ner").task.named == {"PERSON"}  # prefer_specific judges the template's labels


def test_options_build_the_components(tiny_checkpoint):
    spec = PipelineSpec(model=str(tiny_checkpoint), ner=("PERSON",), cat=("a", "b"), question=("Who?",),
                        multi_label=True, prefer_specific=False)
    nlp = spec.load()
    assert nlp.pipe_names == ["cortex", "cortex_ner", "cortex_textcat", "cortex_qa"]
    assert not nlp.get_pipe("cortex_ner").task.prefer_specific
    assert not nlp.get_pipe("cortex_textcat").task.exclusive
    task = PipelineSpec(model=str(tiny_checkpoint), ner=("PERSON",), extend_threshold=0.6, ner_window=32).load() \
        .get_pipe("cortex_ner").task
    assert (task.extend_threshold, task.window) == (0.6, 32)


def test_nothing_to_do_is_an_error(tiny_checkpoint):
    with pytest.raises(ValueError, match="Nothing to do"):
        PipelineSpec(model=str(tiny_checkpoint)).load()


def test_a_saved_pipeline_is_loaded_as_it_is(tiny_checkpoint, tmp_path):
    PipelineSpec(model=str(tiny_checkpoint), cat=("refund",)).load().to_disk(tmp_path / "pipe")
    nlp = PipelineSpec(pipeline=str(tmp_path / "pipe")).load()
    assert nlp.pipe_names == ["cortex", "cortex_textcat"]
    assert set(nlp("please refund me").cats) == {"refund"}


def test_a_saved_pipeline_with_component_options_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="drop --ner, --threshold"):
        PipelineSpec(pipeline=str(tmp_path), ner=("X",), threshold=0.5).load()


def test_a_missing_pipeline_is_an_os_error(tmp_path):
    with pytest.raises(OSError):
        PipelineSpec(pipeline=str(tmp_path / "missing")).load()


def test_paths_become_absolute_and_names_stay(tiny_checkpoint, monkeypatch):
    monkeypatch.chdir(tiny_checkpoint.parent)
    spec = PipelineSpec(model=tiny_checkpoint.name, pipeline="en_core_web_nonexistent").with_absolute_paths()
    assert spec.model == str(tiny_checkpoint.resolve()) and spec.pipeline == "en_core_web_nonexistent"


def test_built_pipelines_take_long_texts_and_say_which_are_too_long(tiny_checkpoint):
    from spacy_cortex.batch.pipelines import BUILT_MAX_LENGTH, too_long

    nlp = PipelineSpec(model=str(tiny_checkpoint), ner=("X",)).load()
    assert nlp.max_length == BUILT_MAX_LENGTH > 10_000_000
    assert too_long(nlp, "x" * BUILT_MAX_LENGTH) is None and too_long(nlp, nlp("x")) is None
    assert too_long(nlp, "x" * (BUILT_MAX_LENGTH + 1)) == (
        "text of 20,000,001 characters is longer than the pipeline's max_length (20,000,000)")


def test_device_for_built_and_saved_pipelines(tiny_checkpoint, tmp_path, monkeypatch):
    import torch

    from spacy_cortex.core.device import DeviceError

    nlp = PipelineSpec(model=str(tiny_checkpoint), cat=("refund",), device="cpu").load()
    assert nlp.get_pipe("cortex").model.device == torch.device("cpu")
    nlp.to_disk(tmp_path / "pipe")
    saved = PipelineSpec(pipeline=str(tmp_path / "pipe"), device="cpu")
    assert saved.load().get_pipe("cortex").model.device == torch.device("cpu")  # no conflict with --pipeline
    assert "device" not in saved.as_dict()  # a job may be resumed on another device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceError, match="'cuda' asked for"):
        PipelineSpec(model=str(tiny_checkpoint), cat=("refund",), device="cuda").load()
    with pytest.raises(DeviceError, match="cuda:1"):
        PipelineSpec(pipeline=str(tmp_path / "pipe"), device="cuda:1").load()
