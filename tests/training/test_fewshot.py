"""`python -m spacy_cortex adapt ner|textcat` end to end on a tiny model (seconds), its
errors, the held-out split, the time budget and the replay."""
import json
import re

import pytest
import spacy
from typer.testing import CliRunner

from spacy_cortex.cli import app
from spacy_cortex.training import budget
from spacy_cortex.training.annotations import AnnotationError
from spacy_cortex.training.fewshot import AdaptSettings, Split, data_notes, hold_out, pipeline_checkpoint
from spacy_cortex.training.replay import ReplayError, ReplaySampler, first_records, load_replay

NER_TEXTS = [
    ("the patient was given atorvastatin", [(22, 34, "DRUG")]),
    ("who asked about billing and shipping", []),
    ("atorvastatin and aspirin were prescribed", [(0, 12, "DRUG"), (17, 24, "DRUG")]),
    ("the dose was 20 mg", [(13, 18, "DOSE")]),
    ("a dose of 40 mg of aspirin", [(2, 15, "DOSE"), (19, 26, "DRUG")]),
    ("find all doses mentioned in the text", []),
]
CAT_TEXTS = [("I was charged twice", "billing"), ("my refund is late", "refund"), ("where is my parcel", "shipping"),
             ("the invoice is wrong", "billing")]


def write_lines(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def ner_file(path):
    return write_lines(path, [{"text": t, "spans": [{"start": s, "end": e, "label": l} for s, e, l in spans]}
                              for t, spans in NER_TEXTS])


def adapt(*args):
    return CliRunner().invoke(app, ["adapt", *map(str, args)])


def test_adapt_ner_writes_pipelines_and_metrics(tmp_path, tiny_checkpoint):
    out = tmp_path / "out"
    result = adapt("ner", ner_file(tmp_path / "train.jsonl"), "--label", "DRUG", "--label", "DOSE=What doses are given?",
                   "--model", tiny_checkpoint, "--minutes", 0.03, "--eval-every", 1, "--output", out)
    assert result.exit_code == 0, result.output
    for name in ("model-best", "model-last"):
        nlp = spacy.load(out / name)
        assert nlp.pipe_names == ["cortex", "cortex_ner"] and nlp.meta["name"] == "cortex_adapted_ner"
        assert nlp.get_pipe("cortex_ner").label_prompts["DOSE"] == "What doses are given?"
        assert [e.label_ for e in nlp("atorvastatin").ents] in ([], ["DRUG"], ["DOSE"])  # it runs
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["main_score"] == "ents_f" and "ents_f" in metrics["zero_shot"]
    assert "ents_f" in metrics["best"]["scores"] and "ents_f" in metrics["last"]["scores"]
    assert metrics["steps"] >= 1 and metrics["last"]["step"] == metrics["steps"] - 1  # the final state was evaluated
    assert metrics["data"]["train"]["docs"] + metrics["data"]["dev"]["docs"] == len(NER_TEXTS)
    assert metrics["data"]["dev"]["docs"] == 1 and "held out" in metrics["data"]["dev"]["file"]
    assert metrics["replay"]["drawn"] > 0 and metrics["settings"]["replay_share"] == 0.3
    assert metrics["settings"]["lr"] == 1e-4 and metrics["merge"]["weight"] == 0.7  # the measured defaults
    assert (out / "corpus" / "train.spacy").exists() and "dev ents_f: zero-shot" in result.stderr
    # adapt evaluate: the scores of a pipeline on annotated texts in the same formats
    scores = tmp_path / "scores.json"
    result = adapt("evaluate", out / "model-best", tmp_path / "train.jsonl", "--output", scores)
    assert result.exit_code == 0, result.output
    report = json.loads(scores.read_text())
    assert report["docs"] == len(NER_TEXTS) and report["main_score"] == "ents_f" and "ents_f" in report["scores"]
    bad = write_lines(tmp_path / "bad.jsonl", [{"text": "Anna", "spans": [[0, 4, "PERSON"]]}])
    result = adapt("evaluate", out / "model-best", bad)
    assert result.exit_code == 1 and "bad.jsonl:1: label 'PERSON' is not declared" in result.output


def test_adapt_textcat_with_dev_without_replay_and_packaged(tmp_path, tiny_checkpoint):
    from spacy.cli.package import package

    train = write_lines(tmp_path / "train.jsonl", [{"text": t, "label": l} for t, l in CAT_TEXTS])
    dev = write_lines(tmp_path / "dev.jsonl", [{"text": "charged again", "cats": {"billing": 1}},
                                               {"text": "no parcel yet", "labels": ["shipping"]}])
    out = tmp_path / "out"
    result = adapt("textcat", train, "--dev", dev, "--label", "billing", "--label", "refund", "--label", "shipping",
                   "--model", tiny_checkpoint, "--minutes", 5, "--max-steps", 1, "--no-replay", "--output", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 2  # spaCy's max_steps: steps 0 and 1
    assert metrics["replay"] is None and metrics["data"]["dev"] == {
        "file": str(dev), "docs": 2, "labels": {"billing": 1, "shipping": 1}}
    assert "cats_score" in metrics["zero_shot"] and "cats_score" in metrics["best"]["scores"]
    nlp = spacy.load(out / "model-best")
    assert nlp.pipe_names == ["cortex", "cortex_textcat"] and set(nlp("charged").cats) == {"billing", "refund", "shipping"}
    (tmp_path / "packages").mkdir()
    package(out / "model-best", tmp_path / "packages", create_sdist=False, force=True)
    assert (tmp_path / "packages" / "en_cortex_adapted_textcat-0.0.0").is_dir()


def test_merge_weight_averages_both_outputs_with_the_start(tmp_path, tiny_checkpoint):
    """--merge-weight 0.5: model-best and model-last hold the mean of the starting and the
    adapted weights (WiSE-FT), and their dev scores are taken again."""
    from spacy_cortex.core.model import CortexModel

    out, unmerged = tmp_path / "out", tmp_path / "unmerged"
    common = ["--label", "DRUG", "--label", "DOSE", "--model", tiny_checkpoint, "--minutes", 5, "--max-steps", 2,
              "--eval-every", 1, "--no-replay", "--lr", 1e-3]
    train = ner_file(tmp_path / "train.jsonl")
    assert adapt("ner", train, *common, "--merge-weight", 1, "--output", unmerged).exit_code == 0
    result = adapt("ner", train, *common, "--merge-weight", 0.5, "--output", out)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["merge"]["weight"] == 0.5 and "ents_f" in metrics["merge"]["last"]
    assert "--merge-weight 0.5" in result.stderr
    start = CortexModel.from_path(tiny_checkpoint).hf_model.state_dict()
    tuned = spacy.load(unmerged / "model-last").get_pipe("cortex").model.hf_model.state_dict()
    merged = spacy.load(out / "model-last").get_pipe("cortex").model.hf_model.state_dict()
    name = next(k for k in start if start[k].is_floating_point() and not (start[k] == tuned[k]).all())
    assert (merged[name] - (start[name].float() + tuned[name].float()) / 2).abs().max() < 1e-5
    assert json.loads((unmerged / "metrics.json").read_text())["merge"] is None
    meta = json.loads((out / "model-last" / "meta.json").read_text())
    assert meta["performance"]["ents_f"] == metrics["merge"]["last"]["ents_f"]  # the averaged model's dev score


@pytest.mark.parametrize("options,code,match", [
    (["--merge-weight", "0"], 2, "--merge-weight 0.0: give a share in \\(0, 1\\]"),
    (["--replay-share", "1"], 2, "--replay-share 1.0: give a share in \\[0, 1\\)"),
    (["--holdout", "0"], 2, "--holdout 0.0"),
    (["--minutes", "0"], 2, "--minutes 0.0"),
    (["--label", "DRUG"], 2, "label 'DRUG' is given twice"),
    (["--model", "no-such-model"], 2, "no-such-model"),
    (["--model", "docs"], 2, "docs has no config.json"),  # a folder that is no model: a usage error
    (["--multi-label"], 2, "No such option"),
])
def test_bad_options_are_usage_errors(tmp_path, tiny_checkpoint, options, code, match):
    options = options if "--model" in options else options + ["--model", tiny_checkpoint]
    result = adapt("ner", ner_file(tmp_path / "train.jsonl"), "--label", "DRUG", "--label", "DOSE",
                   "--output", tmp_path / "out", *options)
    assert result.exit_code == code and re.search(match, result.output), result.output
    assert not (tmp_path / "out").exists()


def test_bad_data_is_an_error_naming_file_and_line(tmp_path, tiny_checkpoint):
    train = write_lines(tmp_path / "train.jsonl", [{"text": "aspirin", "spans": [[0, 7, "DRUG"]]},
                                                   {"text": "Anna", "spans": [[0, 4, "PERSON"]]}])
    result = adapt("ner", train, "--label", "DRUG", "--model", tiny_checkpoint, "--output", tmp_path / "out")
    assert result.exit_code == 1
    assert "train.jsonl:2: label 'PERSON' is not declared" in result.output
    replay = tmp_path / "replay.jsonl"
    replay.write_text('{"task": "x", "prompt": "p"}\n', encoding="utf-8")
    result = adapt("ner", ner_file(tmp_path / "good.jsonl"), "--label", "DRUG", "--label", "DOSE", "--model",
                   tiny_checkpoint, "--replay-file", replay, "--output", tmp_path / "out")
    assert result.exit_code == 1 and "replay.jsonl:1: a replay record needs" in result.output


def test_gold_docs_know_every_declared_label(tmp_path):
    """A declared label that no TRAIN/DEV record has ("no training example of") and the model
    predicts must be in the gold docs' strings: spaCy's scorer builds the predicted span on
    the gold doc, and an unknown label was an E084 crash (CrossNER science, 50 sentences,
    "country")."""
    from spacy_cortex.training.fewshot import load_split

    train = write_lines(tmp_path / "train.jsonl", [{"text": "the patient was given atorvastatin",
                                                   "spans": [{"start": 22, "end": 34, "label": "DRUG"}]},
                                                  {"text": "the dose was 20 mg", "spans": []}])
    labels = {"DRUG": "drugs?", "ZEBRA LABEL": "zebras?"}
    split = load_split(AdaptSettings("ner", labels), train, None, spacy.blank("en"))
    assert all(label in doc.vocab.strings for doc in split.train + split.dev for label in labels)


def test_hold_out_is_seeded_and_needs_two_docs():
    docs = list(range(10))
    train, dev = hold_out(docs, 0.2, 0, "t.jsonl")
    assert len(dev) == 2 and sorted(train + dev) == docs and train == sorted(train)
    assert hold_out(docs, 0.2, 0, "t.jsonl") == (train, dev) and hold_out(docs, 0.2, 1, "t.jsonl") != (train, dev)
    assert [len(part) for part in hold_out(docs[:2], 0.9, 0, "t.jsonl")] == [1, 1]
    with pytest.raises(AnnotationError, match="t.jsonl:1: 1 annotated record: too few .* give --dev"):
        hold_out(docs[:1], 0.2, 0, "t.jsonl")


def test_time_budget_ends_the_batches_and_decays_the_rate(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(budget.time, "monotonic", lambda: clock[0])

    def ticking(n):
        for i in range(n):
            clock[0] += 10.0  # each batch is taken 10 s after the last
            yield i

    assert list(budget.until(25.0, ticking(100))) == [0, 1]  # the batch at 30 s is not taken
    clock[0] = 0.0
    rates = budget.warmup_linear_time(1.0, warmup_steps=2, minutes=1.0)
    assert next(rates) == 0.5  # step 0: warm-up
    clock[0] = 30.0
    assert next(rates) == 0.5  # step 1: warm-up done, half the minute left
    clock[0] = 60.0
    assert next(rates) == 0.0
    steps = budget.warmup_linear_time(1.0, warmup_steps=1, minutes=0, total_steps=3)
    assert [next(steps) for _ in range(4)] == [1.0, 1.0, 0.5, 0.0]


def test_replay_sample_and_sampler(tmp_path):
    shipped = load_replay()
    assert len(shipped) > 1000 and {r["task"] for r in shipped} >= {"squad", "snli", "wnut", "banking77"}
    sampler = ReplaySampler(shipped[:5], share=0.5, seed=0)
    first = sampler(4) + sampler(6)  # 4 records -> 4 replayed (half of 8); then 6
    assert len(first) == 10 and sampler.drawn == 10
    assert sorted(r["context"] for r in first[:5]) == sorted(r["context"] for r in shipped[:5])  # a whole pass first
    assert ReplaySampler(shipped, share=0.0)(10) == []
    with pytest.raises(ValueError, match="share"):
        ReplaySampler(shipped, share=1.0)
    rows = [{"group": 1}, {"group": 1}, {"group": None}, {"group": 2}, {"group": 2}, {"group": 3}]
    assert len(first_records(iter(rows), 1)) == 2 and len(first_records(iter(rows), 4)) == 5
    bad = tmp_path / "r.jsonl"
    bad.write_text('{"task": "x", "prompt": "p", "context": "c", "cls": "positive"}\n{"task": "x"}\n')
    with pytest.raises(ReplayError, match="r.jsonl:2: a replay record needs"):
        load_replay(bad)


def test_cortex_update_adds_the_replay_records(tiny_checkpoint):
    from spacy.training import Example

    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(tiny_checkpoint), "precision": "fp32"}})
    nlp.add_pipe("cortex_ner", config={"labels": ["DRUG", "DOSE"]})
    asked = []

    def replay(n):
        asked.append(n)
        return [{"task": "squad", "prompt": "What dose?", "context": "20 mg", "cls": None, "spans": [[0, 5]]}]

    nlp.get_pipe("cortex").replay = replay
    doc = nlp.make_doc("the patient was given atorvastatin")
    losses = nlp.update([Example.from_dict(doc, {"entities": [(22, 34, "DRUG")]})], sgd=nlp.create_optimizer())
    assert asked == [2] and losses["cortex"] > 0  # one record per label


def test_a_saved_pipeline_stands_for_its_shared_model(tmp_path):
    (tmp_path / "model-best" / "cortex").mkdir(parents=True)
    (tmp_path / "model-best" / "meta.json").write_text("{}")
    (tmp_path / "model-best" / "cortex" / "config.json").write_text("{}")
    assert pipeline_checkpoint(str(tmp_path / "model-best")) == str(tmp_path / "model-best" / "cortex")
    assert pipeline_checkpoint("cortex-mini-en") == "cortex-mini-en"


def test_data_notes_name_labels_missing_from_train_or_dev():
    nlp = spacy.blank("en")

    def doc(text, **cats):
        d = nlp.make_doc(text)
        d.cats = cats
        return d

    train = [doc("charged twice", billing=1.0, refund=0.0), doc("money back", billing=0.0, refund=1.0)]
    dev = [doc("give it back", billing=0.0, refund=1.0)]
    settings = AdaptSettings("textcat", {"billing": "b?", "refund": "r?", "spam": "s?"})
    notes = data_notes(settings, Split(train, dev, "held out", {}))
    assert "no training example of spam: trained as absent everywhere" in notes
    assert any(n.startswith("no dev example of billing:") for n in notes)  # spam is named once, for training
    assert not any("no dev example of" in n and "spam" in n for n in notes)
