"""cortex_rel: relations between a doc's entities, one prompt per (head, relation)."""
from dataclasses import replace

import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_cortex import api
from spacy_cortex.batch.pipelines import PipelineSpec, parse_relation_options
from spacy_cortex.batch.records import doc_annotations
from spacy_cortex.rel import RelationItem, llm_relations
from spacy_cortex.relation_rules import parse_relations, relation_prompt, without_mirrors

TEXT = "The patient was given 20 mg atorvastatin."
RELATIONS = {"dose of": {"head": ["DRUG"], "tail": ["DOSE"]}}


def rel_nlp(checkpoint, relations=RELATIONS, **config):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), "precision": "fp32"}})
    nlp.add_pipe("cortex_rel", config={"relations": relations, **config})
    return nlp


def with_ents(nlp, text=TEXT, ents=((4, 6, "DOSE"), (6, 7, "DRUG"), (1, 2, "PERSON"))) -> Doc:
    doc = nlp.make_doc(text)
    doc.ents = [Span(doc, s, e, label=label) for s, e, label in ents]
    return doc


def found(doc):
    return [(r["head"].text, r["label"], r["tail"].text) for r in doc._.relations]


def test_positive_model_relates_the_allowed_types_only(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint)
    doc = nlp(with_ents(nlp))
    assert found(doc) == [("atorvastatin", "dose of", "20 mg")]
    assert doc._.relations[0]["score"] == pytest.approx(1.0, abs=1e-3)
    assert doc._.relations[0]["tail"].label_ == "DOSE"


def test_no_types_allow_any_entity_but_the_head(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint, ["related"])
    doc = nlp(with_ents(nlp))
    assert len(doc._.relations) == 6  # 3 heads x 2 other entities
    assert all(r["head"] != r["tail"] for r in doc._.relations)


def test_symmetric_relations_are_listed_once(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint, {"related": {"symmetric": True}})
    doc = nlp(with_ents(nlp))
    assert found(doc) == [("patient", "related", "20 mg"), ("patient", "related", "atorvastatin"),
                          ("20 mg", "related", "atorvastatin")]


def test_no_answer_threshold_gates_the_heads_the_model_judges_unanswerable(positive_checkpoint):
    """The positive model's [CLS] answer probability is just below 1 (softmax of a bias of
    8): a gate of 0.999 keeps the relation, a gate of 1 drops it (component and API alike)."""
    for gate, expected in ((0.999, [("atorvastatin", "dose of", "20 mg")]), (1.0, [])):
        nlp = rel_nlp(positive_checkpoint, no_answer_threshold=gate)
        assert found(nlp(with_ents(nlp))) == expected
        out = api.relations(TEXT, [(22, 27, "DOSE"), (28, 40, "DRUG")], RELATIONS, no_answer_threshold=gate,
                            model=api.load_model(str(positive_checkpoint)))
        assert [(r["head"]["text"], r["label"], r["tail"]["text"]) for r in out] == expected
    with pytest.raises(ValueError, match="no_answer_threshold"):
        rel_nlp(positive_checkpoint, no_answer_threshold=1.5)


def test_without_mirrors_keeps_the_higher_score_head_first():
    rels = parse_relations({"married": {"symmetric": True}, "boss of": None})
    a, b = (0, 3, "P"), (5, 8, "P")
    kept = without_mirrors([(b, a, "married", 0.9), (a, b, "married", 0.8), (b, a, "boss of", 0.7)], rels)
    assert kept == [(a, b, "married", 0.9), (b, a, "boss of", 0.7)]


def test_negative_model_finds_nothing_and_no_entities_asks_nothing(negative_checkpoint):
    nlp = rel_nlp(negative_checkpoint)
    assert nlp(with_ents(nlp))._.relations == []
    assert nlp.get_pipe("cortex_rel").batch_prompts([nlp.make_doc(TEXT)]) == [[]]
    assert nlp(TEXT)._.relations == []


def test_prompts_one_per_head_and_relation(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint, {"dose of": {"head": "DRUG", "tail": "DOSE", "prompt": "What dose of {head}?"},
                                        "given to": {"head": "DRUG", "tail": "PERSON"}})
    [prompts] = nlp.get_pipe("cortex_rel").batch_prompts([with_ents(nlp)])
    assert sorted(prompts) == ["Find the given to of atorvastatin.", "What dose of atorvastatin?"]
    assert relation_prompt("place_of_birth") == "Find the place of birth of {head}."


def test_spans_key_takes_overlapping_entities(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint, spans_key="found")
    doc = nlp.make_doc(TEXT)
    doc.spans["found"] = [Span(doc, 4, 6, "DOSE"), Span(doc, 4, 7, "DRUG")]  # overlapping: never related
    doc.spans["found"] = list(doc.spans["found"]) + [Span(doc, 6, 7, "DRUG")]
    assert found(nlp(doc)) == [("atorvastatin", "dose of", "20 mg")]


@pytest.mark.parametrize("relations, match", [
    (None, "No relations"), ({"x": {"heads": ["A"]}}, "unknown keys"), ({"x": {"prompt": "Who?"}}, "head"),
    ({"x": {"threshold": 1.5}}, "threshold"), ({"x": {"symmetric": "yes"}}, "symmetric"),
    ({"x": {"tail": [""]}}, "tail"),
])
def test_bad_config(tiny_checkpoint, relations, match):
    with pytest.raises(ValueError, match=match):
        rel_nlp(tiny_checkpoint, relations)
    with pytest.raises(ValueError, match="template"):
        rel_nlp(tiny_checkpoint, ["x"], template="Find {relation}.")


def test_pipe_equals_call_and_saved_pipeline(positive_checkpoint, tmp_path):
    nlp = rel_nlp(positive_checkpoint, {"related": {"tail": ["B", "C"]}})
    texts = [TEXT, "Who was prescribed the drug? The patient was given 10 mg doses.", TEXT + " " + TEXT]
    docs = lambda: [with_ents(nlp, t, ((1, 2, "A"), (4, 6, "B"), (6, 7, "C"))) for t in texts]
    called = [nlp(d)._.relations for d in docs()]
    piped = [d._.relations for d in nlp.pipe(docs(), batch_size=2)]
    as_values = lambda rels: [(r["head"].start, r["tail"].start, r["label"], round(r["score"], 4)) for r in rels]
    assert [as_values(r) for r in called] == [as_values(r) for r in piped]
    assert any(called)
    nlp.to_disk(tmp_path / "pipe")
    loaded = spacy.load(tmp_path / "pipe")
    assert loaded.get_pipe("cortex_rel").labels == ("related",)
    assert [as_values(loaded(d)._.relations) for d in docs()] == [as_values(r) for r in called]
    # to_bytes carries the weights; the components' settings come from the config, as in spaCy
    again = rel_nlp(positive_checkpoint, {"related": {"tail": ["B", "C"]}}).from_bytes(nlp.to_bytes())
    assert [as_values(again(d)._.relations) for d in docs()] == [as_values(r) for r in called]


def test_relations_survive_doc_bytes(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint)
    doc = nlp(with_ents(nlp))
    back = Doc(nlp.vocab).from_bytes(doc.to_bytes())
    assert found(back) == found(doc)


def test_long_doc_heads_and_tails_windows_apart(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint)
    nlp.get_pipe("cortex").model  # default max_length: the text below needs several windows
    filler = " ".join(["the patient was given the drug"] * 120)
    doc = nlp.make_doc(f"atorvastatin {filler} 20 mg")
    doc.ents = [Span(doc, 0, 1, "DRUG"), Span(doc, len(doc) - 2, len(doc), "DOSE")]
    assert found(nlp(doc)) == [("atorvastatin", "dose of", "20 mg")]


def test_llm_relations_index_doc_ents(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint)
    doc = nlp(with_ents(nlp))
    assert llm_relations(doc) == [RelationItem(dep=2, dest=1, relation="dose of")]  # ents sorted by position
    assert llm_relations(doc)[0].as_dict() == {"dep": 2, "dest": 1, "relation": "dose of"}


def test_training_records_and_score(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint)
    gold = with_ents(nlp)
    gold._.relations = [{"head": gold.ents[2], "tail": gold.ents[1], "label": "dose of"}]
    [record] = nlp.get_pipe("cortex_rel").training_records(Example(nlp.make_doc(TEXT), gold))
    assert record["prompt"] == "Find the dose of of atorvastatin." and record["cls"] == "positive"
    assert [TEXT[s:e] for s, e in record["spans"]] == ["20 mg"]
    scores = nlp.evaluate([Example(with_ents(nlp), gold)])
    assert scores["rel_micro_f"] == 1.0


def test_batch_record_has_relations(positive_checkpoint):
    nlp = rel_nlp(positive_checkpoint)
    record = doc_annotations(nlp(with_ents(nlp)))
    assert record["relations"] == [{"head": {"text": "atorvastatin", "start_char": 28, "end_char": 40, "label": "DRUG"},
                                    "tail": {"text": "20 mg", "start_char": 22, "end_char": 27, "label": "DOSE"},
                                    "label": "dose of", "score": pytest.approx(1.0, abs=1e-3)}]


def test_api_relations_and_its_argument_errors(positive_checkpoint):
    model = api.load_model(str(positive_checkpoint))
    out = api.relations(TEXT, [(22, 27, "DOSE"), {"start_char": 28, "end_char": 40, "label": "DRUG"}], RELATIONS,
                        model=model)
    assert [(r["head"]["text"], r["tail"]["text"], r["label"]) for r in out] == [("atorvastatin", "20 mg", "dose of")]
    found_too = api.relations(TEXT, None, RELATIONS, model=model)  # entities found by extract: the whole text
    assert found_too == [] or all(r["label"] == "dose of" for r in found_too)
    with pytest.raises(TypeError, match="text must be a string"):
        api.relations(None, [], RELATIONS, model=model)
    with pytest.raises(TypeError, match="entities"):
        api.relations(TEXT, "atorvastatin", RELATIONS, model=model)
    with pytest.raises(TypeError, match="item 0"):
        api.relations(TEXT, [(1, 2)], RELATIONS, model=model)
    with pytest.raises(ValueError, match="character range"):
        api.relations(TEXT, [(30, 99, "DRUG")], RELATIONS, model=model)
    with pytest.raises(ValueError, match="No relations"):
        api.relations(TEXT, [], [], model=model)
    with pytest.raises(ValueError, match="entity labels"):
        api.relations(TEXT, None, ["related"], model=model)


def test_cli_rel_option():
    assert parse_relation_options(["work for:person>organization,company", "located in:>location=Where is {head}?",
                                   "spouse"]) == {
        "work for": {"head": ["person"], "tail": ["organization", "company"]},
        "located in": {"head": None, "tail": ["location"], "prompt": "Where is {head}?"},
        "spouse": {"head": None, "tail": None}}
    for bad, match in (["=x"], "empty"), (["a="], "prompt"), (["a:person"], "HEAD>TAIL"), (["a", "a"], "twice"):
        with pytest.raises(ValueError, match=match):
            parse_relation_options(bad)


def test_cli_rel_builds_after_ner(tiny_checkpoint):
    with pytest.raises(ValueError, match="give --ner"):
        PipelineSpec(model=str(tiny_checkpoint), rel=("spouse",)).load()
    nlp = PipelineSpec(model=str(tiny_checkpoint), ner=("person",), rel=("spouse:person>person",)).load()
    assert nlp.pipe_names == ["cortex", "cortex_ner", "cortex_rel"]
    with pytest.raises(ValueError, match="--rel"):
        PipelineSpec(model=str(tiny_checkpoint), ner=("person",), rel=("x=No head here",)).load()


def test_cli_rel_no_answer_threshold_reaches_the_component(tiny_checkpoint):
    spec = PipelineSpec(model=str(tiny_checkpoint), ner=("person",), rel=("spouse",), rel_no_answer_threshold=0.8)
    [relation] = spec.load().get_pipe("cortex_rel").task.relations.values()
    assert relation.no_answer_threshold == 0.8
    with pytest.raises(ValueError, match="--rel-no-answer-threshold.*no_answer_threshold must be a number between 0 and 1"):
        replace(spec, rel_no_answer_threshold=1.5).load()
    with pytest.raises(ValueError, match="--rel-no-answer-threshold gates the relations of --rel: give --rel too"):
        PipelineSpec(model=str(tiny_checkpoint), ner=("person",), rel_no_answer_threshold=0.8).load()


def test_shipped_model_finds_an_employer():
    out = api.relations("Tim Cook is the chief executive of Apple, which is based in Cupertino.",
                        [(0, 8, "person"), (35, 40, "organization"), (60, 69, "location")],
                        {"employer": {"head": "person", "tail": ["organization", "location"]}})
    assert [(r["head"]["text"], r["tail"]["text"]) for r in out] == [("Tim Cook", "Apple")]


def test_annotate_writes_relations(positive_checkpoint, tmp_path):
    import json

    from typer.testing import CliRunner

    from spacy_cortex.cli import app

    source = tmp_path / "in.txt"
    source.write_text(TEXT + "\n", encoding="utf8")
    result = CliRunner().invoke(app, ["annotate", str(source), "--model", str(positive_checkpoint), "--precision",
                                      "fp32", "--ner", "DRUG", "--rel", "related:DRUG>"])
    assert result.exit_code == 0, result.output
    [record] = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert record["relations"] == []  # one entity (the whole sentence): nothing to relate it to
    bad = CliRunner().invoke(app, ["annotate", str(source), "--model", str(positive_checkpoint), "--rel", "x"])
    assert bad.exit_code == 2 and "--ner" in bad.output
