"""spacy_cortex.corpus.readers: the raw formats, and errors that name file:line."""
import re

import pytest

from spacy_cortex.corpus import readers as R
from conftest import CONVERTER_FIXTURES

FIX = CONVERTER_FIXTURES


def test_iob1_to_iob2():
    assert R.iob2(["I-PER", "I-PER", "O", "I-LOC", "I-ORG", "B-ORG", "I-ORG"]) == [
        "B-PER", "I-PER", "O", "B-LOC", "B-ORG", "B-ORG", "I-ORG"
    ]


def test_read_bio_maps_tags_and_skips_docstart(tmp_path):
    path = tmp_path / "x.txt"
    path.write_text("-DOCSTART- O\n\nJohn I-PER\nlives O\nin O\nParis I-LOC\n\nThe\tO\nUN\tB-organisation\n")
    sents = R.read_bio(path, {"organisation": "ORG"})
    assert sents == [(["John", "lives", "in", "Paris"], ["B-PER", "O", "O", "B-LOC"]),
                     (["The", "UN"], ["O", "B-ORG"])]


def test_read_tagged_spans():
    text, spans, n = next(R.read_tagged(FIX / "conll2003" / "train.txt", sep="\t", tag_col=1))
    assert text == "EU rejects German call to boycott British lamb ." and n == 9
    assert [text[s:e] for s, e in spans["organisation"]] == ["EU"]
    assert [text[s:e] for s, e in spans["misc"]] == ["German", "British"]


def test_read_tagged_comments_iob1_and_offsets(tmp_path):
    path = tmp_path / "x.conll"
    path.write_text("# id 1\tdomain=en\nNew _ _ I-LOC\nYork _ _ I-LOC\nis _ _ O\nbig _ _ I-LOC\n\n")
    [(text, spans, n)] = R.read_tagged(path, sep=" ", comment=re.compile(r"# id "))
    assert (text, n) == ("New York is big", 4)
    assert [text[s:e] for s, e in spans["LOC"]] == ["New York", "big"]  # I- after O opens an entity
    path.write_text("Left\t0\t4\tB-X\nhand\t5\t9\tI-X\n,\t9\t10\tO\n")
    [(text, spans, _)] = R.read_tagged(path, sep="\t", offsets=True)
    assert text == "Left hand," and spans == {"X": [[0, 9]]}


def test_malformed_lines_name_file_and_line(tmp_path):
    bio = tmp_path / "bad.txt"
    bio.write_text("John B-PER\nlives\n")
    with pytest.raises(R.FormatError, match=r"bad\.txt:2: expected a token and its tag"):
        R.read_bio(bio)
    jsonl = tmp_path / "bad.jsonl"
    jsonl.write_text('{"a": 1}\n\n{"a": \n')
    with pytest.raises(R.FormatError, match=r"bad\.jsonl:3: not one JSON value per line"):
        R.read_jsonl(jsonl)
    whole = tmp_path / "bad.json"
    whole.write_text('{\n  "a": 1,\n  "b": \n}\n')
    with pytest.raises(R.FormatError, match=r"bad\.json:4: not JSON"):
        R.read_json(whole)


def test_read_jsonl_skips_blank_lines_and_stops_at_limit(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text('{"a": 1}\n\n{"a": 2}\n{"a": 3}\nnot json\n')
    assert R.read_jsonl(path, limit=2) == [{"a": 1}, {"a": 2}]  # stops before the bad line


def test_tsv_splits_every_tab_without_quoting(tmp_path):
    path = tmp_path / "x.tsv"
    path.write_text('a\t"b\tc\n\nd\te\n')
    assert R.read_tsv(path) == [["a", '"b', "c"], ["d", "e"]]


def test_read_openbookqa_parses_choices_and_marks_bad_rows():
    rows = R.read_openbookqa(FIX / "openbookqa" / "train.tsv")
    parsed = [r for r in rows if r is not None]
    assert parsed and all(r["choices"]["label"] == ["A", "B", "C", "D"] for r in parsed)
    assert all(r["answerKey"] in "ABCD" and r["question_stem"] for r in parsed)
