"""Output records: what a job writes for one document, as plain JSON-ready values."""
import json
from typing import Dict, Optional

from spacy.tokens import Doc

from ..rel import relation_dicts

ANNOTATIONS = ("ents", "cats", "answers", "relations")


def doc_annotations(doc: Doc) -> Dict[str, Optional[object]]:
    """{ents: [{text, label, start_char, end_char, score}], cats: {label: probability} or
    None without categories, answers: doc._.cortex_answers or None without questions,
    relations: [{head, tail: {text, start_char, end_char, label}, label, score}] or None
    without cortex_rel}."""
    ents = [{"text": e.text, "label": e.label_, "start_char": e.start_char, "end_char": e.end_char,
             "score": e._.cortex_score if e.has_extension("cortex_score") else None}
            for e in doc.ents]
    answers = doc._.cortex_answers if doc.has_extension("cortex_answers") else None
    return {"ents": ents, "cats": dict(doc.cats) or None,
            "answers": list(answers) if answers is not None else None, "relations": relation_dicts(doc)}


def output_record(text_field: str, text: str, fields: dict, annotations: dict) -> dict:
    """The input record's other fields, the text under `text_field`, then the annotations
    that are not None (they replace input fields of the same name)."""
    record = {**fields, text_field: text}
    record.update((key, value) for key, value in annotations.items() if value is not None)
    return record


def json_line(record: dict) -> str:
    """One JSONL line, UTF-8 as it is (not \\u-escaped, as srsly would write it)."""
    return json.dumps(record, ensure_ascii=False) + "\n"
