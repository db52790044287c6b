"""spacy_cortex.training.annotations: every input format `adapt` reads, every error naming
file:line, and the round trip of the pre-annotations `annotate --spans` writes."""
import json

import pytest
import spacy
from spacy.tokens import Doc, DocBin, Span
from typer.testing import CliRunner

from spacy_cortex.cli import app
from spacy_cortex.training.annotations import AnnotationError, read_annotations, span_record

NLP = spacy.blank("en")
LABELS = ("DRUG", "PERSON")


def write_lines(path, lines):
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines), encoding="utf-8")
    return path


def ents(docs):
    return [[(e.text, e.label_) for e in doc.ents] for doc in docs]


def read(path, task="ner", labels=LABELS, exclusive=True):
    return read_annotations(path, task, labels, NLP, exclusive)


def test_jsonl_spans_prodigy_lists_and_doccano(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [
        {"text": "Anna took aspirin.", "spans": [{"start": 0, "end": 4, "label": "PERSON", "token_start": 0},
                                             {"start": 10, "end": 17, "label": "DRUG"}], "meta": {"id": 1}},
        "",  # blank lines are not records
        {"text": "Tom takes ibuprofen", "spans": [[10, 19, "DRUG"]]},
        {"text": "No entity here.", "label": []},
        {"text": "Bob and aspirin", "label": [[0, 3, "PERSON"], [8, 15, "DRUG"]]},
    ])
    found = read(path)
    assert ents(found.docs) == [[("Anna", "PERSON"), ("aspirin", "DRUG")], [("ibuprofen", "DRUG")], [],
                                [("Bob", "PERSON"), ("aspirin", "DRUG")]]
    assert found.skipped == {}


def test_spans_inside_tokens_are_kept_exactly_and_edges_trimmed(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [
        {"text": "Try Aspirin500 today", "spans": [{"start": 4, "end": 11, "label": "DRUG"}]},
        {"text": "Ask  Anna  now", "spans": [{"start": 4, "end": 10, "label": "PERSON"}]},  # " Anna " trimmed
    ])
    [split, trimmed] = read(path).docs
    assert [t.text for t in split] == ["Try", "Aspirin", "500", "today"] and split.text == "Try Aspirin500 today"
    assert ents([split, trimmed]) == [[("Aspirin", "DRUG")], [("Anna", "PERSON")]]


def test_prodigy_answers_are_counted_when_left_out(tmp_path):
    path = write_lines(tmp_path / "a.jsonl", [
        {"text": "Anna", "spans": [{"start": 0, "end": 4, "label": "PERSON"}], "answer": "accept"},
        {"text": "Bob", "spans": [], "answer": "reject"},
        {"text": "Eve", "spans": [], "answer": "ignore"},
    ])
    found = read(path)
    assert ents(found.docs) == [[("Anna", "PERSON")]]
    assert found.skipped == {"answer reject": 1, "answer ignore": 1}


def test_conll_bio_and_bioes_files(tmp_path):
    conll = write_lines(tmp_path / "a.conll", ["-DOCSTART- -X- O O", "", "Anna NNP B-NP B-PERSON",
                                               "Smith NNP I-NP I-PERSON", "took VBD B-VP O", "aspirin NN B-NP B-DRUG", "",
                                               "Bob NNP B-NP B-PERSON"])
    bio = write_lines(tmp_path / "a.bio", ["Anna\tB-PERSON", "took\tO", "low\tB-DRUG", "dose\tI-DRUG", "aspirin\tB-DRUG"])
    bioes = write_lines(tmp_path / "a.txt", ["Anna S-PERSON", "took O", "low B-DRUG", "dose I-DRUG", "aspirin E-DRUG"])
    assert ents(read(conll).docs) == [[("Anna Smith", "PERSON"), ("aspirin", "DRUG")], [("Bob", "PERSON")]]
    assert ents(read(bio).docs) == [[("Anna", "PERSON"), ("low dose", "DRUG"), ("aspirin", "DRUG")]]
    assert ents(read(bioes).docs) == [[("Anna", "PERSON"), ("low dose aspirin", "DRUG")]]
    assert read(conll).docs[0].text == "Anna Smith took aspirin"


def test_docbin_ner_and_textcat(tmp_path):
    doc = Doc(NLP.vocab, words=["Anna", "took", "aspirin"])
    doc.ents = [Span(doc, 0, 1, "PERSON"), Span(doc, 2, 3, "DRUG")]
    doc.cats = {"health": 1.0}
    DocBin(docs=[doc], store_user_data=True).to_disk(tmp_path / "a.spacy")
    assert ents(read(tmp_path / "a.spacy").docs) == [[("Anna", "PERSON"), ("aspirin", "DRUG")]]
    [cats] = read(tmp_path / "a.spacy", "textcat", ["health", "sports"]).docs
    assert cats.cats == {"health": 1.0, "sports": 0.0}
    with pytest.raises(AnnotationError, match=r"a\.spacy:1 \(doc 1\): label 'PERSON' is not declared"):
        read(tmp_path / "a.spacy", labels=["DRUG"])


def test_textcat_record_forms(tmp_path):
    labels = ["billing", "refund", "shipping"]
    path = write_lines(tmp_path / "c.jsonl", [
        {"text": "a", "cats": {"billing": 1, "refund": 0}},
        {"text": "b", "cats": {"refund": 0.93, "billing": 0.04}},  # probabilities, as annotate --spans writes
        {"text": "c", "label": "shipping"},
        {"text": "d", "labels": ["billing"]},
        {"text": "e", "accept": ["refund"]},
        {"text": "f", "label": ["shipping"]},  # doccano
        {"text": "g", "label": "refund", "answer": "reject"},  # Prodigy binary: a "no" for refund only
    ])
    cats = [doc.cats for doc in read(path, "textcat", labels).docs]
    assert cats == [{"billing": 1.0, "refund": 0.0, "shipping": 0.0}, {"billing": 0.0, "refund": 1.0, "shipping": 0.0},
                    {"billing": 0.0, "refund": 0.0, "shipping": 1.0}, {"billing": 1.0, "refund": 0.0, "shipping": 0.0},
                    {"billing": 0.0, "refund": 1.0, "shipping": 0.0}, {"billing": 0.0, "refund": 0.0, "shipping": 1.0},
                    {"refund": 0.0}]
    several = write_lines(tmp_path / "m.jsonl", [{"text": "x", "labels": ["billing", "refund"]}])
    with pytest.raises(AnnotationError, match=r"m\.jsonl:1: 2 categories apply .* give --multi-label"):
        read(several, "textcat", labels)
    assert read(several, "textcat", labels, exclusive=False).docs[0].cats["refund"] == 1.0


NER_ERRORS = [
    ("a.jsonl", [{"text": "Anna", "spans": [{"start": 0, "end": 9, "label": "PERSON"}]}], r"a\.jsonl:1: span \[0, 9\) PERSON is off the text"),
    ("a.jsonl", [{"text": "Anna", "spans": [{"start": -1, "end": 2, "label": "PERSON"}]}], r"a\.jsonl:1: span \[-1, 2\)"),
    ("a.jsonl", [{"text": "x", "spans": []}, {"text": "Anna Smith", "spans": [[0, 10, "PERSON"], [5, 10, "DRUG"]]}],
     r"a\.jsonl:2: overlapping spans 'Anna Smith' \[0, 10\) PERSON and 'Smith' \[5, 10\) DRUG"),
    ("a.jsonl", [{"text": "Anna", "spans": [[0, 4, "ORG"]]}], r"a\.jsonl:1: label 'ORG' is not declared \(declared: DRUG, PERSON"),
    ("a.jsonl", [{"text": "Anna  x", "spans": [[4, 6, "DRUG"]]}], r"a\.jsonl:1: span \[4, 6\) DRUG holds only whitespace"),
    ("a.jsonl", [{"text": "Anna"}], r"a\.jsonl:1: no 'spans' list"),
    ("a.jsonl", [{"text": "Anna", "spans": [{"start": "0", "end": 4, "label": "DRUG"}]}], r"a\.jsonl:1: a span must have integer"),
    ("a.jsonl", [{"text": "a", "spans": []}, "{oops"], r"a\.jsonl:2: malformed JSON"),
    ("a.jsonl", ["[1, 2]"], r"a\.jsonl:1: expected a JSON object"),
    ("a.jsonl", [{"spans": []}], r"a\.jsonl:1: 'text' must be a string"),
    ("a.jsonl", [{"text": "a", "spans": [], "answer": "maybe"}], r"a\.jsonl:1: 'answer' 'maybe'"),
    ("a.jsonl", [], r"a\.jsonl:1: no annotated records \(the file is empty\)"),
    ("a.jsonl", [{"text": "Anna", "spans": [], "answer": "reject"}],
     r"a\.jsonl:1: no annotated records \(every record was left out: \{'answer reject': 1\}\)"),
    ("a.jsonl", [{"text": "Anna Smith", "spans": [[5, 2, "PERSON"]]}], r"a\.jsonl:1: span \[5, 2\) PERSON is empty or reversed"),
    ("a.txt", ["Take two pills a day."], r"a\.txt:1: tag 'day\.'.*plain text goes through `annotate --spans` first"),
    ("a.jsonl", ["", "  "], r"a\.jsonl:1: no annotated records"),
    ("a.jsonl", [{"text": "a", "spans": [], "answer": "ignore"}], r"a\.jsonl:1: no annotated records .*answer ignore"),
    ("a.bio", ["Anna B-PERSON", "took O", "low I-DRUG"], r"a\.bio:3: bad BIO sequence: I-DRUG after O"),
    ("a.bio", ["Anna B-PERSON", "Smith I-DRUG"], r"a\.bio:2: bad BIO sequence: I-DRUG after B-PERSON"),
    ("a.bio", ["", "Smith I-PERSON"], r"a\.bio:2: bad BIO sequence: I-PERSON after the sentence start"),
    ("a.conll", ["Anna B-ORG"], r"a\.conll:1: label 'ORG' is not declared"),
    ("a.conll", ["Anna X-PERSON"], r"a\.conll:1: tag 'X-PERSON'"),
    ("a.conll", ["Anna B-PERSON", "took"], r"a\.conll:2: expected a token and its tag"),
    ("a.txt", [], r"a\.txt:1: no annotated records"),
    ("a.csv", ["text"], r"a\.csv: ner reads \.spacy, \.jsonl, \.conll, \.bio, \.txt files, not \.csv"),
]


@pytest.mark.parametrize("name,lines,match", NER_ERRORS)
def test_ner_errors_name_file_and_line(tmp_path, name, lines, match):
    with pytest.raises(AnnotationError, match=match):
        read(write_lines(tmp_path / name, lines))


TEXTCAT_ERRORS = [
    ([{"text": "a", "cats": {"billing": 2}}], r"c\.jsonl:1: category 'billing' has value 2"),
    ([{"text": "a", "label": "x"}, {"text": "b", "cats": {"spam": 1}}], r"c\.jsonl:2: label 'spam' is not declared"),
    ([{"text": "a", "label": "x", "answer": "reject"}], None),  # fine: reject of a declared label
    ([{"text": "a"}], r"c\.jsonl:1: no categories"),
    ([{"text": "a", "labels": [1]}], r"c\.jsonl:1: no categories"),
    ([{"text": "a", "label": "x", "cats": {"x": 0.1, "billing": 0.9}}], r"c\.jsonl:1: both 'cats' and 'label'"),
    ([{"text": "a", "label": "x"}, {"text": " \n", "label": "x"}], r"c\.jsonl:2: the text is empty"),
]


@pytest.mark.parametrize("lines,match", TEXTCAT_ERRORS)
def test_textcat_errors_name_file_and_line(tmp_path, lines, match):
    path = write_lines(tmp_path / "c.jsonl", lines)
    if match is None:
        assert read(path, "textcat", ["x", "billing"]).docs[0].cats == {"x": 0.0}
        return
    with pytest.raises(AnnotationError, match=match):
        read(path, "textcat", ["x", "billing"])


def test_textcat_takes_no_tag_files(tmp_path):
    with pytest.raises(AnnotationError, match=r"textcat reads \.spacy, \.jsonl files, not \.conll"):
        read(write_lines(tmp_path / "a.conll", ["a O"]), "textcat", ["x"])
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "missing.jsonl")


def test_span_record_keeps_fields_and_other_annotations():
    annotations = {"ents": [{"text": "Anna", "label": "PERSON", "start_char": 0, "end_char": 4, "score": 0.9}],
                   "cats": {"a": 0.8}, "answers": None, "relations": None}
    assert span_record("Anna", {"id": 7, "spans": "old"}, annotations) == {
        "id": 7, "text": "Anna", "spans": [{"start": 0, "end": 4, "label": "PERSON", "score": 0.9}], "cats": {"a": 0.8}}


def test_preannotations_round_trip(tmp_path, positive_checkpoint):
    """annotate --spans writes what read_annotations reads back: the same spans and labels."""
    source = write_lines(tmp_path / "in.jsonl", [{"text": "Anna took aspirin today.", "id": 1},
                                                 {"text": "Bob was fine.\nThen he left.", "id": 2}])
    out = tmp_path / "pre.jsonl"
    result = CliRunner().invoke(app, ["annotate", str(source), "-o", str(out), "--model", str(positive_checkpoint),
                                      "--precision", "fp32", "--ner", "PERSON", "--ner", "DRUG", "--cat", "health",
                                      "--cat", "sports", "--spans"])
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in records] == [1, 2] and all("ents" not in r and "cats" in r for r in records)
    assert all(r["spans"] for r in records)  # the positive model marks every word
    docs = read(out).docs
    assert [[(e.start_char, e.end_char, e.label_) for e in doc.ents] for doc in docs] == \
        [[(s["start"], s["end"], s["label"]) for s in r["spans"]] for r in records]
    assert [doc.text for doc in docs] == [r["text"] for r in records]
    # the positive model ties the two categories at 0.5 (both "yes"): read them as multi-label
    textcat = read(out, "textcat", ["health", "sports"], exclusive=False).docs
    assert [doc.cats for doc in textcat] == [{"health": 1.0, "sports": 1.0}] * 2
