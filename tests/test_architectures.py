"""The registered model architecture and the checkpoint registry."""
from pathlib import Path

import pytest
import spacy
from spacy.util import registry as spacy_registry
from thinc.api import Config

from spacy_cortex.core import checkpoints
from spacy_cortex.architectures import CortexModelSpec, cortex_model_v1
from spacy_cortex.core.model import CheckpointError, CortexModel
from spacy_cortex.pipeline import DEFAULT_MODEL_CONFIG


def test_architecture_is_registered():
    assert spacy_registry.architectures.get("spacy_cortex.CortexModel.v1") is cortex_model_v1


def test_defaults_match_component_default_config():
    spec = cortex_model_v1()
    assert spec.checkpoint == checkpoints.DEFAULT_CHECKPOINT == DEFAULT_MODEL_CONFIG["checkpoint"]
    for key, value in spec.settings().items():
        assert DEFAULT_MODEL_CONFIG[key] == value


def test_spec_from_config(tiny_checkpoint):
    config = Config().from_str(
        f"""
        [model]
        @architectures = "spacy_cortex.CortexModel.v1"
        checkpoint = "{tiny_checkpoint}"
        max_length = 96
        stride = 24
        max_batch_tokens = 1000
        precision = "bf16"
        device = "cpu"
        """
    )
    spec = spacy_registry.resolve(config)["model"]
    assert isinstance(spec, CortexModelSpec)
    assert spec.settings() == {"max_length": 96, "stride": 24, "max_batch_tokens": 1000, "precision": "bf16",
                               "device": "cpu"}
    model = spec.load()
    assert isinstance(model, CortexModel)
    assert (model.max_length, model.stride, model.max_batch_tokens, model.precision) == (96, 24, 1000, "bf16")


def test_spec_load_from_other_folder(tiny_checkpoint, positive_checkpoint):
    spec = cortex_model_v1(checkpoint=str(tiny_checkpoint), max_length=64, stride=16)
    # an explicit folder (as in from_disk) wins over the configured checkpoint
    model = spec.load(str(positive_checkpoint))
    assert model.max_length == 64
    [result] = model.run_texts([("find", "refund")])
    assert result.token_probs[0, 1] > 0.99  # the positive checkpoint's weights


def test_missing_or_wrong_checkpoint_fails_when_the_config_is_resolved(tmp_path, tiny_checkpoint):
    with pytest.raises(FileNotFoundError, match="missing"):
        cortex_model_v1(checkpoint=str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="missing"):
        spacy.blank("en").add_pipe("cortex", config={"model": {"checkpoint": str(tmp_path / "missing")}})
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="config.json"):
        cortex_model_v1(checkpoint=str(tmp_path / "empty"))
    from conftest import build_checkpoint

    two = build_checkpoint(tmp_path / "two-labels", num_labels=2)
    with pytest.raises(CheckpointError, match="2 labels"):
        cortex_model_v1(checkpoint=str(two))


def test_bad_precision():
    with pytest.raises(ValueError, match="precision"):
        cortex_model_v1(precision="fp8")


def test_spec_settings_reach_the_component(tiny_checkpoint):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(tiny_checkpoint), "max_length": 80, "stride": 8}})
    model = nlp.get_pipe("cortex").model
    assert (model.max_length, model.stride, model.max_batch_tokens) == (80, 8, 2048)


@pytest.mark.parametrize("settings,match", [
    ({"stride": -1}, "stride must be at least 0"), ({"max_length": 64, "stride": 32}, "less than half"),
    ({"max_length": 4}, "at least 8"), ({"max_length": 100000}, "exceeds the 512 positions"),
])
def test_bad_window_settings_fail_at_add_pipe(tiny_checkpoint, settings, match):
    with pytest.raises(ValueError, match=match):
        spacy.blank("en").add_pipe("cortex", config={"model": {"checkpoint": str(tiny_checkpoint), **settings}})


# --- checkpoints.resolve_checkpoint ---------------------------------------------------------


def test_resolve_registered_name(tiny_checkpoint):
    checkpoints.register("tiny-resolve-test", lambda: str(tiny_checkpoint))
    resolved = checkpoints.resolve_checkpoint("tiny-resolve-test")
    assert isinstance(resolved, Path) and resolved == Path(tiny_checkpoint)


def test_resolve_default_name():
    assert checkpoints.resolve_checkpoint(checkpoints.DEFAULT_CHECKPOINT) == (
        checkpoints.MODELS_DIR / checkpoints.DEFAULT_CHECKPOINT
    )


def test_resolve_path(tiny_checkpoint):
    assert checkpoints.resolve_checkpoint(str(tiny_checkpoint)) == Path(tiny_checkpoint)


def test_resolve_user_path(tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("HOME", str(tiny_checkpoint.parent))
    assert checkpoints.resolve_checkpoint("~/" + tiny_checkpoint.name) == Path(tiny_checkpoint)


def test_resolve_unknown(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        checkpoints.resolve_checkpoint(str(tmp_path / "nothing-here"))
    message = str(info.value)
    assert "nothing-here" in message
    assert checkpoints.DEFAULT_CHECKPOINT in message  # lists the registered names
