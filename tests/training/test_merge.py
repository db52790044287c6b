"""spacy_cortex.training.merge: weight-space interpolation of two checkpoints (WiSE-FT)."""
import json

import pytest
import torch
from conftest import build_checkpoint
from safetensors.torch import load_file
from transformers import BertConfig, BertForTokenClassification
from typer.testing import CliRunner

from spacy_cortex.training.merge import app, interpolate


def tiny_model(seed: int, layers: int = 2) -> BertForTokenClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=32, num_labels=3)
    return BertForTokenClassification(config)


@pytest.mark.parametrize("weight", [0.0, 0.25, 1.0])
def test_interpolate_is_the_weighted_mean_of_every_float_tensor(weight):
    base, tuned = tiny_model(0), tiny_model(1)
    expected = {name: (1 - weight) * a + weight * tuned.state_dict()[name]
                for name, a in base.state_dict().items() if a.is_floating_point()}
    kept = {name: t.clone() for name, t in base.state_dict().items() if not t.is_floating_point()}
    interpolate(base, tuned, weight)
    for name, value in expected.items():
        torch.testing.assert_close(base.state_dict()[name], value)
    for name, value in kept.items():  # integer buffers (ids) stay as they were
        assert torch.equal(base.state_dict()[name], value)


def test_interpolate_rejects_other_architectures_and_weights_off_the_range():
    with pytest.raises(ValueError, match="not the same architecture.*layer.1"):
        interpolate(tiny_model(0, layers=2), tiny_model(1, layers=1), 0.5)
    with pytest.raises(ValueError, match=r"--weight must be in \[0, 1\], got 1.5"):
        interpolate(tiny_model(0), tiny_model(1), 1.5)


def test_merge_command_writes_the_fp16_midpoint_with_the_base_configuration(tmp_path):
    base = build_checkpoint(tmp_path / "base", inside_bias=8.0)
    tuned = build_checkpoint(tmp_path / "tuned", inside_bias=-8.0)
    config = json.loads((tuned / "config.json").read_text())
    (tuned / "config.json").write_text(json.dumps({**config, "hidden_dropout_prob": 0.0}))
    result = CliRunner().invoke(app, [str(base), str(tuned), str(tmp_path / "out"), "--weight", "0.5"])
    assert result.exit_code == 0, result.output
    weights = load_file(tmp_path / "out" / "model.safetensors")
    assert weights["classifier.bias"].dtype == torch.float16
    # +8 and -8 for the two outer classes meet at 0: the midpoint of the two heads
    assert weights["classifier.bias"].tolist() == [0.0, 0.0, 0.0]
    assert (tmp_path / "out" / "tokenizer.json").exists()
    assert json.loads((tmp_path / "out" / "config.json").read_text())["hidden_dropout_prob"] == 0.1
