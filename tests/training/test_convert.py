"""Tests for spacy_cortex.training.convert on the small fixtures in corpus/fixtures (mimic corpus/raw formats)."""
import builtins
import json
import random

import pytest

from spacy_cortex.corpus import registry
from spacy_cortex.corpus.readers import read_tagged
from spacy_cortex.training import convert as C
from spacy_cortex.training import leakage
from spacy_cortex.training.records import NLI_CLS, STATS
from conftest import CONVERTER_FIXTURES, run_converter

FIX = CONVERTER_FIXTURES
ALL = sorted(C.converters.get_all())
LABELS = {"positive", "negative", "neutral"}


def eval_files(raw_dir):
    """The files of the registry's EVAL splits found under raw_dir."""
    return {str(p) for name, split in registry.eval_splits() for p in registry.eval_files(raw_dir, name, split)
            if p.is_file()}


def sentences(path):
    """(text, spans) of a token<TAB>tag file, as the CoNLL and WNUT converters read it."""
    return [(text, spans) for text, spans, _ in read_tagged(path, sep="\t", tag_col=1)]


@pytest.fixture(scope="module")
def outputs(templates):
    return {name: run_converter(name, templates) for name in ALL}


def test_core_tasks_registered():
    for name in ["squad", "squad_noanswer", "conll", "wnut", "mnli", "snli", "sick", "rte", "cb", "boolq", "sst2",
                 "rotten_tomatoes", "tweet_sentiment", "financial_phrasebank", "emotion", "tweeteval_emotion",
                 "trec", "banking77", "dbpedia", "mrpc", "stsb", "scifact", "cappy"]:
        assert name in ALL


def test_records_well_formed(outputs):
    for name, recs in outputs.items():
        assert recs, name
        for r in recs:
            assert set(r) - {"group"} == {"task", "prompt", "context", "cls", "spans"}
            assert r["task"] == name and r["prompt"].strip() and r["context"].strip()
            assert r["cls"] in LABELS, r
            if r["spans"] is not None:
                # extraction: cls is derived from spans
                assert r["cls"] == ("positive" if r["spans"] else "negative")
                for s, e in r["spans"]:
                    text = r["context"][s:e]
                    assert text and text == text.strip()


def test_squad_spans_slice_to_answer(templates):
    data = json.loads((FIX / "squad_v1.1" / "train-v1.1.reconstructed.json").read_text())
    answers = {qa["question"].strip(): qa["answers"][0]["text"] for a in data["data"]
               for p in a["paragraphs"] for qa in p["qas"]}
    STATS.clear()
    recs = run_converter("squad", templates)
    assert len(recs) == len(answers) - 1  # the planted unlocatable answer is skipped and counted
    assert STATS["squad: answer not found"] == 1
    for r in recs:
        (s, e), = r["spans"]
        q = next(q for q in answers if q in r["prompt"])
        assert r["context"][s:e] == answers[q].strip()


def test_squad_noanswer_uses_other_article(templates):
    data = json.loads((FIX / "squad_v1.1" / "train-v1.1.reconstructed.json").read_text())
    own = {qa["question"].strip(): p["context"] for a in data["data"] for p in a["paragraphs"] for qa in p["qas"]}
    recs = run_converter("squad_noanswer", templates, seed=3)
    assert recs
    for r in recs:
        assert r["spans"] == [] and r["cls"] == "negative"
        q = next(q for q in own if q in r["prompt"])
        assert r["context"] != own[q]


def test_ner_one_example_per_type_including_absent(templates):
    n_sent = len(sentences(FIX / "conll2003" / "train.txt")) + len(sentences(FIX / "conll2003" / "dev.txt"))
    recs = run_converter("conll", templates)
    assert len(recs) == 4 * n_sent
    first = [r for r in recs if r["context"].startswith("EU rejects German")]
    assert len(first) == 4
    # PER and LOC are absent from the first sentence -> negative with empty spans
    empties = [r for r in first if not r["spans"]]
    assert len(empties) == 2 and all(r["cls"] == "negative" for r in empties)
    wnut = run_converter("wnut", templates)
    assert len(wnut) == 6 * len(sentences(FIX / "wnut17" / "train.conll"))


def test_nli_label_mapping(templates):
    gold = [json.loads(l)["label"] for l in (FIX / "rte" / "train.jsonl").read_text().splitlines()]
    recs = run_converter("rte", templates)
    assert [r["cls"] for r in recs] == [NLI_CLS[g] for g in gold]
    assert {r["cls"] for r in run_converter("cb", templates)} <= LABELS
    sick = run_converter("sick", templates)
    assert len(sick) == 6  # 4 TRAIN + 2 TRIAL rows; TEST rows dropped


def test_sentiment_and_label_variants(templates):
    recs = run_converter("sst2", templates)
    assert len(recs) == 2 * 4  # polarity question + one label-style variant per sentence
    assert {r["cls"] for r in recs} <= {"positive", "negative"}


def test_rotten_tomatoes_drops_sst2_dev_test_overlap(templates):
    recs = run_converter("rotten_tomatoes", templates)
    contexts = {r["context"] for r in recs}
    assert not any("no movement , no yuks" in c for c in contexts)
    assert len(contexts) == 6


def test_label_prompts_gold_plus_two_negatives(templates):
    for name, path in [("trec", "trec/train.txt"), ("dbpedia", "dbpedia14_subset/dev.tsv"),
                       ("emotion", "emotion/train.txt"), ("banking77", "banking77/train.csv")]:
        recs = run_converter(name, templates)
        by_text = {}
        for r in recs:
            by_text.setdefault(r["context"], []).append(r["cls"])
        for clss in by_text.values():
            assert sorted(clss) == ["negative", "negative", "positive"], name


def test_shuffled_groups():
    records = [{"id": i, "group": i // 3} for i in range(12)] + [{"id": 12 + i} for i in range(6)]
    out = C.shuffled_groups(records, random.Random(0))
    assert sorted(r["id"] for r in out) == list(range(18))
    for g in range(4):  # each group's records consecutive, in their order
        at = [i for i, r in enumerate(out) if r.get("group") == g]
        assert at == list(range(at[0], at[0] + 3)) and [out[i]["id"] for i in at] == [3 * g, 3 * g + 1, 3 * g + 2]
    # without groups: rng.shuffle's order, as converted before groups existed
    plain = [{"id": i} for i in range(20)]
    expected = list(plain)
    random.Random(5).shuffle(expected)
    assert C.shuffled_groups(plain, random.Random(5)) == expected


def test_scifact_positive_and_negatives(templates):
    recs = run_converter("scifact", templates)
    qrels = (FIX / "beir_scifact" / "qrels" / "train.tsv").read_text().splitlines()[1:]
    assert sum(r["cls"] == "positive" for r in recs) == len(qrels)
    assert sum(r["cls"] == "negative" for r in recs) == 2 * len({l.split("\t")[0] for l in qrels})
    assert all(len(r["context"]) <= 1200 for r in recs)


def test_cappy_pairs_balanced(outputs):
    recs = outputs["cappy"]
    assert sum(r["cls"] == "positive" for r in recs) == sum(r["cls"] == "negative" for r in recs)


def test_eval_files_never_opened(templates, monkeypatch):
    opened = []
    real_open = builtins.open

    def spy(path, *a, **kw):
        opened.append(str(path))
        return real_open(path, *a, **kw)

    monkeypatch.setattr(builtins, "open", spy)
    for name in ALL:
        run_converter(name, templates)
    assert opened
    poisoned = [p for p in FIX.rglob("*") if p.is_file() and p.read_text(errors="ignore").startswith("EVAL FILE")]
    assert poisoned and eval_files(FIX)
    assert not set(opened) & ({str(p) for p in poisoned} | eval_files(FIX))
    for bad in ["dev-v1.1.json", "conll2003/test.txt", "dev_matched", "qrels/test.tsv", "dbpedia14_subset/test.tsv",
                "hf_test_sample100", "boolq/dev", "val.jsonl", "/test.csv", "crossner", "mit_", "/anli/", "xnli", "wikiqa",
                "commonsenseqa/dev", "openbookqa/test", "winogrande/dev", "policyqa/test", "reuters_r8/test",
                "hwu64/val", "snips_nlu/validate", "subjqa/electronics/dev"]:
        assert not any(bad in p for p in opened), bad


def test_leak_guard_reads_eval_files_only_to_compare(tmp_path, monkeypatch):
    """run() opens EVAL files, but only inside the guard's text readers (to build the comparison set)."""
    opened, inside = [], []
    real_open, real_reader = builtins.open, leakage.texts_reader

    def spy(path, *a, **kw):
        opened.append((str(path), bool(inside)))
        return real_open(path, *a, **kw)

    def spy_reader(name, split):
        read = real_reader(name, split)

        def read_inside(path):
            inside.append(path)
            try:
                return list(read(path))
            finally:
                inside.pop()
        return read_inside

    monkeypatch.setattr(builtins, "open", spy)
    monkeypatch.setattr(leakage, "texts_reader", spy_reader)
    C.run(FIX, tmp_path, ALL)
    compared = {p for p, in_eval in opened if in_eval}
    # every EVAL file there is was read, and only by the guard (scifact's queries file: to find the test claims)
    assert eval_files(FIX) and compared == eval_files(FIX) | {str(FIX / "beir_scifact" / "queries.jsonl")}
    assert not {p for p, in_eval in opened if not in_eval} & eval_files(FIX)


def test_every_eval_split_has_a_guard_reader():
    for name, split in registry.eval_splits():
        assert callable(leakage.texts_reader(name, split)), (name, split)


def test_cli_writes_files_deterministically(tmp_path, capsys):
    C.main([str(FIX), str(tmp_path / "a"), "--tasks", "sst2,conll", "--seed", "1"])
    C.main([str(FIX), str(tmp_path / "b"), "--tasks", "sst2,conll", "--seed", "1"])
    out = capsys.readouterr().out
    assert "sst2\t8" in out
    for name in ("sst2", "conll"):
        a = (tmp_path / "a" / f"{name}.jsonl").read_text()
        assert a == (tmp_path / "b" / f"{name}.jsonl").read_text()
        assert all(json.loads(l)["task"] == name for l in a.splitlines())


def test_cli_missing_raw_dir_is_a_clear_usage_error(tmp_path, capsys):
    """`weasel run convert .` without the raw data: exit code 2 and a message naming the
    variable to set, not a traceback (issue 25, item 13)."""
    with pytest.raises(SystemExit) as exit_info:
        C.main([str(tmp_path / "nowhere"), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "nowhere" in err and "vars.raw_dir" in err and "--raw-dir" in err
    # a folder that is not the raw corpus (neither INDEX.md nor any set folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as exit_info:
        C.main(["--raw-dir", str(tmp_path / "empty"), str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "INDEX.md" in capsys.readouterr().err


def test_cli_missing_file_names_it_under_raw_dir(tmp_path, capsys):
    """A raw folder that lacks a file a converter needs (anem/train.conll, as in the issue)."""
    raw = tmp_path / "raw"
    (raw / "anem").mkdir(parents=True)
    (raw / "INDEX.md").write_text("# corpus/raw — index\n")
    with pytest.raises(SystemExit) as exit_info:
        C.main([str(raw), str(tmp_path / "out"), "--tasks", "anem"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "anem/train.conll not found under RAW_DIR" in err
    assert "set vars.raw_dir in project.yml" in err and "--raw-dir" in err
    assert "Traceback" not in err


def test_cli_raw_dir_option_and_unknown_task(tmp_path, capsys):
    C.main(["--raw-dir", str(FIX), str(tmp_path / "a"), "--tasks", "sst2"])
    assert "sst2\t8" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        C.main([str(FIX), str(tmp_path / "a"), "--tasks", "no_such_task"])
    assert exit_info.value.code == 2 and "no_such_task" in capsys.readouterr().err


def test_project_convert_says_where_the_data_comes_from():
    """project.yml documents raw_dir (where the data comes from) and passes it to convert."""
    from pathlib import Path

    import yaml

    text = (Path(__file__).resolve().parents[2] / "project.yml").read_text(encoding="utf-8")
    project = yaml.safe_load(text)
    assert "raw_dir" in project["vars"] and "INDEX.md" in project["description"]
    [convert] = [c for c in project["commands"] if c["name"] == "convert"]
    assert "${vars.raw_dir}" in convert["script"][0] and "raw_dir" in convert["help"]
