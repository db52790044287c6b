"""Output formats: one writer per format, and merging shards into one file."""
import json

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_cortex.batch.formats import docbin_writer, jsonl_writer, merge_docbins, parquet_writer


def test_jsonl_writer_writes_utf8(tmp_path):
    with jsonl_writer(tmp_path / "a.jsonl") as add:
        add({"text": "café 🙂", "ents": []}, None)
    assert (tmp_path / "a.jsonl").read_text(encoding="utf8") == '{"text": "café 🙂", "ents": []}\n'


def test_docbin_writer_keeps_user_data_and_merges(tmp_path):
    nlp = spacy.blank("en")
    for name, text in (("a", "one"), ("b", "two")):
        doc = nlp(text)
        doc.user_data["id"] = name
        with docbin_writer(tmp_path / f"{name}.spacy") as add:
            add({}, doc)
    merge_docbins([tmp_path / "a.spacy", tmp_path / "b.spacy"], tmp_path / "all.spacy")
    docs = list(DocBin(store_user_data=True).from_disk(tmp_path / "all.spacy").get_docs(nlp.vocab))
    assert [(d.text, d.user_data["id"]) for d in docs] == [("one", "a"), ("two", "b")]


def test_parquet_columns_are_the_union_of_the_records(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    records = [{"id": 1, "text": "a", "ents": [{"text": "a", "score": 0.9}]},
               {"text": "b", "ents": [], "cats": {"x": 0.5}}]
    with parquet_writer(tmp_path / "a.parquet") as add:
        for record in records:
            add(record, None)
    rows = pq.read_table(tmp_path / "a.parquet").to_pylist()
    assert rows == [{"id": 1, "text": "a", "ents": [{"text": "a", "score": 0.9}], "cats": None},
                    {"id": None, "text": "b", "ents": [], "cats": {"x": 0.5}}]
    with parquet_writer(tmp_path / "empty.parquet"):
        pass
    assert pq.read_table(tmp_path / "empty.parquet").num_rows == 0
    assert json.dumps(rows)  # plain values
