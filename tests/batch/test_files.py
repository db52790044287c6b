"""Atomic files: the old file or the new one, never a part."""
import pytest

from spacy_cortex.batch.files import atomic_path, concat_files


def test_a_file_is_replaced_only_when_complete(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as partial:
            partial.write_text("half")
            raise RuntimeError("killed")
    assert path.read_text() == "old\n" and list(tmp_path.iterdir()) == [path]
    with atomic_path(path) as partial:
        partial.write_text("new\n")
        assert path.read_text() == "old\n"
    assert path.read_text() == "new\n" and list(tmp_path.iterdir()) == [path]


def test_concat_files(tmp_path):
    parts = [tmp_path / "a", tmp_path / "b"]
    parts[0].write_text("1\n2\n")
    parts[1].write_text("3\n")
    concat_files(parts, tmp_path / "all")
    assert (tmp_path / "all").read_text() == "1\n2\n3\n"
    concat_files([], tmp_path / "none")
    assert (tmp_path / "none").read_text() == ""
