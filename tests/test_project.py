"""project.yml: loaded through weasel's own loader, every path resolves to one path.

weasel 1.0.1 with confection 1.3.4 interpolates project.yml as a confection config in which
each list is one JSON string; the literal `", "` between an item ending in ${vars.a} and the
next one starting with ${vars.b} is itself a JSON string and gets unquoted, so the two items
come back as one ("corpus/converted, configs/train_mix.json").
"""
import re
import shutil
from pathlib import Path

import pytest
import srsly
from weasel.util import load_project_config

ROOT = Path(__file__).resolve().parent.parent
PATH_KEYS = ("deps", "outputs", "outputs_no_cache")
VAR = re.compile(r"\$\{vars\.([\w-]+)\}")


def raw_project() -> dict:
    return srsly.read_yaml(ROOT / "project.yml")


def load(tmp_path, overrides=None) -> dict:
    """weasel's loader on a copy (it creates the project's directories next to the file)."""
    shutil.copy(ROOT / "project.yml", tmp_path / "project.yml")
    return load_project_config(tmp_path, overrides=overrides or {})


def substitute(text: str, variables: dict) -> str:
    return VAR.sub(lambda m: str(variables[m.group(1)]), text)


def commands(config: dict) -> dict:
    return {cmd["name"]: cmd for cmd in config["commands"]}


OVERRIDES = [{}, {"vars.raw_dir": "../elsewhere/raw", "vars.corpus_dir": "/abs/corpus"}]


@pytest.mark.parametrize("overrides", OVERRIDES)
def test_every_dep_and_output_is_one_path(tmp_path, overrides):
    raw = raw_project()
    variables = dict(raw["vars"])
    variables.update({k.split(".", 1)[1]: v for k, v in overrides.items()})
    loaded = commands(load(tmp_path, overrides))
    assert set(loaded) == {cmd["name"] for cmd in raw["commands"]}
    n_paths = 0
    for name, cmd in commands(raw).items():
        for key in PATH_KEYS:
            got = loaded[name].get(key, [])
            assert len(got) == len(cmd.get(key, [])), (name, key, got)
            for entry, path in zip(cmd.get(key, []), got):
                assert isinstance(path, str) and path, (name, key, path)
                assert not re.search(r"[,\s]", path), f"{name}.{key}: {path!r} joins several paths"
                assert "${" not in path, (name, key, path)
                assert path == substitute(entry, variables), (name, key, path)
                n_paths += 1
        # the scripts come through unchanged too (the same interpolation runs on them)
        assert loaded[name]["script"] == [substitute(s, variables) for s in cmd["script"]]
    assert n_paths >= 8


def test_no_list_puts_two_variables_side_by_side():
    """The pattern confection 1.3.4 merges, checked on the file itself, so the file stays
    safe whatever version resolves it."""
    for cmd in raw_project()["commands"]:
        for key in PATH_KEYS + ("script",):
            items = cmd.get(key, [])
            for a, b in zip(items, items[1:]):
                assert not (a.endswith("}") and b.startswith("${")), (cmd["name"], key, a, b)


def test_workflow_writes_outside_the_package(tmp_path):
    """`weasel run all` must not overwrite the shipped model of an (editable) install."""
    config = load(tmp_path)
    cmds = commands(config)
    for name in config["workflows"]["all"]:
        for path in cmds[name].get("outputs", []):
            assert path.split("/")[0] in ("corpus", "training", "metrics", "packages"), (name, path)
        for line in cmds[name]["script"]:
            assert "spacy_cortex/models" not in line, (name, line)
    # evaluate and package use what export wrote
    [exported] = cmds["export"]["outputs"]
    assert exported in cmds["evaluate"]["deps"] and exported in cmds["package"]["deps"]
    model_dir = str(Path(exported).parent)
    assert f"--model {model_dir} " in cmds["evaluate"]["script"][0]
    assert cmds["package"]["script"][0].endswith(f"--paths.checkpoint {model_dir}")


def test_readme_overrides_name_project_variables():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    names = re.findall(r"--vars\.([\w-]+)", readme)
    assert "raw_dir" in names
    assert set(names) <= set(raw_project()["vars"])


def test_finetune_config_trains_ner_only(tmp_path, tiny_checkpoint):
    """configs/finetune.cfg runs through `spacy train` (tiny model, two steps), and its best
    model is chosen by the score of the components it has."""
    import spacy
    from spacy.cli.train import train
    from spacy.tokens import DocBin, Span

    nlp = spacy.blank("en")
    docs = []
    for text, (start, end, label) in [("the patient was given atorvastatin", (1, 2, "PERSON")),
                                      ("who asked about billing and shipping", (3, 4, "ORG"))]:
        doc = nlp(text)
        doc.ents = [Span(doc, start, end, label)]
        docs.append(doc)
    DocBin(docs=docs).to_disk(tmp_path / "data.spacy")
    data = str(tmp_path / "data.spacy")
    overrides = {"paths.train": data, "paths.dev": data, "paths.checkpoint": str(tiny_checkpoint),
                 "training.max_steps": 2, "training.eval_frequency": 1}
    train(ROOT / "configs" / "finetune.cfg", tmp_path / "out", overrides=overrides)
    trained = spacy.load(tmp_path / "out" / "model-best")
    assert trained.pipe_names == ["cortex", "cortex_ner"]
    weights = trained.config["training"]["score_weights"]
    assert {k for k, v in weights.items() if v} == {"ents_f"}
    assert "ents_f" in trained.meta["performance"]
