"""Inputs: which files, how lines split, which records are rejected and why."""
import io
import json
import sys

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_cortex.batch.readers import Item, Source, count_records, read_source, resolve_inputs, scan_lines
from spacy_cortex.batch.rejects import Reject


def read(path, **kwargs):
    return list(read_source(resolve_inputs([str(path)])[0], **kwargs))


def test_inputs_files_folders_globs_in_order_and_once(tmp_path):
    for name in ("b.txt", "a.jsonl", "c.spacy", "notes.md", "sub/d.txt"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text("")
    sources = resolve_inputs([str(tmp_path / "b.txt"), str(tmp_path), str(tmp_path / "**" / "*.txt")])
    assert [(s.path.relative_to(tmp_path).as_posix(), s.kind) for s in sources] == [
        ("b.txt", "text"), ("a.jsonl", "jsonl"), ("c.spacy", "spacy"), ("sub/d.txt", "text")]
    assert resolve_inputs(["-"]) == [Source(None, "text")]


@pytest.mark.parametrize("inputs,match", [
    ([], "at least one input"), (["-", "x.txt"], "stdin"), (["missing.txt"], "no such file"),
    (["*.nothing"], "no file matches"),
])
def test_inputs_that_name_nothing_are_errors(tmp_path, monkeypatch, inputs, match):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(ValueError, match=match):
        resolve_inputs(inputs)


def test_an_empty_folder_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="holds no .txt, .jsonl, .spacy file"):
        resolve_inputs([str(tmp_path)])


def test_text_lines_split_on_newline_only(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes("\ufeffone\r\ntwo\rhalf\n\n  \nlast €".encode("utf8"))
    records = read(path)
    assert [(r.line, r.text) for r in records] == [(1, "one"), (2, "two\rhalf"), (3, ""), (4, "  "), (5, "last €")]
    assert scan_lines(path, 2) == (5, [0, 17, 21])  # lines 1, 3, 5 (the BOM is 3 bytes)


def test_undecodable_bytes_reject_that_line_only(tmp_path):
    path = tmp_path / "in.txt"
    path.write_bytes(b"good\nbad \xff byte\nalso good\n")
    records = read(path)
    assert records[1] == Reject(str(path), 2, "not UTF-8: byte 0xff at byte 5 of the line")
    assert [r.text for r in records if isinstance(r, Item)] == ["good", "also good"]


def test_jsonl_records_pass_fields_through_and_reject_bad_lines(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text('{"id": 1, "body": "a", "tags": ["x"]}\n \n{"id": 2, "body": null}\n{"id": 3}\n'
                    '[1]\n{"id": 6, "body": ["a"]}\n{"id": 7,\n{"body": "last", "id": 8}')
    records = read(path, text_field="body")
    assert records[0] == Item(str(path), 1, "a", {"id": 1, "tags": ["x"]})
    assert records[-1] == Item(str(path), 8, "last", {"id": 8})
    assert [(r.line, r.reason) for r in records[1:-1]] == [
        (2, "blank line (a JSONL line must be a JSON object)"), (3, "'body' is null, not a string"),
        (4, "no 'body' field"), (5, "not a JSON object but list"), (6, "'body' is [\"a\"], not a string"),
        (7, "malformed JSON: Expecting property name enclosed in double quotes: line 1 column 10 (char 9)")]


def test_reading_from_an_offset_continues_the_numbering(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"text": f"t{i}"}) + "\n" for i in range(7)))
    count, offsets = scan_lines(path, 3)
    assert count == 7 and len(offsets) == 3
    tail = list(read_source(Source(path, "jsonl"), offset=offsets[2], first_line=7))
    assert [(r.line, r.text) for r in tail] == [(7, "t6")]


def test_docbin_input_and_counts(tmp_path):
    nlp = spacy.blank("en")
    DocBin(docs=[nlp("one doc"), nlp("two")]).to_disk(tmp_path / "in.spacy")
    (tmp_path / "in.txt").write_text("a\nb\nc")
    records = read(tmp_path / "in.spacy", vocab=nlp.vocab)
    assert [(r.line, r.text.text) for r in records] == [(1, "one doc"), (2, "two")]
    assert count_records(resolve_inputs([str(tmp_path)])) == 5
    assert count_records([Source(None, "text")]) is None


def test_stdin_is_read_as_text_lines(monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x\r\ny\n")))
    assert [r.text for r in read_source(Source(None, "text"))] == ["x", "y"]


def test_byte_order_marks_are_dropped_wherever_they_are(tmp_path, monkeypatch):
    """Files joined on stdin (`cat a.txt b.txt`) put a BOM at the start of a later line, or
    inside one where a file had no final newline; a JSONL file's lines may start with one."""
    stream = "\ufeffTom Hanks\n\ufeffEmma Watson acts.\nlast line\ufeffFirst line\n".encode("utf8")
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stream)))
    texts = [r.text for r in read_source(Source(None, "text"))]
    assert texts == ["Tom Hanks", "Emma Watson acts.", "last lineFirst line"]
    path = tmp_path / "in.jsonl"
    path.write_bytes('\ufeff{"text": "a"}\n\ufeff{"text": "\ufeffb"}\n'.encode("utf8"))
    assert [(r.line, r.text) for r in read(path)] == [(1, "a"), (2, "b")]  # was: line 2 malformed JSON
