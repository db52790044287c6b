"""Output records: annotations as plain values, passthrough fields kept."""
import spacy

from spacy_cortex.batch.records import doc_annotations, json_line, output_record


def test_a_doc_without_cortex_components(tmp_path):
    doc = spacy.blank("en")("Maria took aspirin.")
    doc.ents = [doc.char_span(0, 5, label="PERSON")]
    assert doc_annotations(doc) == {
        "ents": [{"text": "Maria", "label": "PERSON", "start_char": 0, "end_char": 5, "score": None}],
        "cats": None, "answers": None, "relations": None}


def test_output_record_keeps_fields_and_drops_missing_annotations():
    record = output_record("body", "t", {"id": 7, "ents": "input"}, {"ents": [], "cats": None, "answers": [1]})
    assert record == {"id": 7, "ents": [], "body": "t", "answers": [1]}
    assert json_line(record) == '{"id": 7, "ents": [], "body": "t", "answers": [1]}\n'


def test_cortex_annotations(make_nlp, varied_checkpoint):
    nlp = make_nlp(varied_checkpoint, precision="fp32")
    annotations = doc_annotations(nlp("The patient was given 20 mg of atorvastatin."))
    assert set(annotations["cats"]) == {"billing", "shipping", "refund"}
    assert [a["question"] for a in annotations["answers"]] == ["Who was prescribed the drug?"]
    assert all(0 <= e["score"] <= 1 for e in annotations["ents"])
