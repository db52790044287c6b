"""spacy_cortex.training.speed: the v3 and today's training step, side by side."""
import json

from test_train import write_corpus
from typer.testing import CliRunner

from spacy_cortex.training.speed import SETTINGS, app


def test_speed_reports_both_settings(tmp_path, tiny_checkpoint):
    write_corpus(tmp_path / "corpus")
    (tmp_path / "mix.json").write_text(json.dumps({"squad": 30, "sst2": 30}))
    out = tmp_path / "speed" / "speed.json"
    result = CliRunner().invoke(app, [str(tmp_path / "corpus"), str(out), "--mix", str(tmp_path / "mix.json"),
                                      "--examples", "50", "--rounds", "1", "--threads", "1",
                                      "--base", str(tiny_checkpoint)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert set(report["rows"]) == set(SETTINGS) == {"v3", "now"}
    assert report["examples"] == 50 and report["threads"] == 1 and report["bf16_peak_gflops"] > 0
    for row in report["rows"].values():
        assert row["examples_per_s"] > 0 and row["padded_tokens_per_s"] > 0
        assert 0 < row["share_of_bf16_peak"] < 10  # a tiny model: far from the peak, never absurd
    assert report["speedup"] == round(report["rows"]["now"]["examples_per_s"] / report["rows"]["v3"]["examples_per_s"], 3)
