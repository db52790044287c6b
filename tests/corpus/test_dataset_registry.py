"""spacy_cortex.corpus.registry: each raw set declared once; EVAL splits never reach a converter."""
import ast
from pathlib import Path

import pytest

import spacy_cortex.corpus as corpus_package
from spacy_cortex.corpus import registry as REG
from conftest import CONVERTER_FIXTURES

FIX = CONVERTER_FIXTURES
RAW = Path(__file__).resolve().parents[2].parent / "shared" / "corpus" / "raw"


def test_eval_split_refused_for_training():
    with pytest.raises(REG.EvalSplitError, match="conll2003 test is an EVAL split"):
        REG.train_files(FIX, "conll2003", "test")
    for name, split in REG.eval_splits():
        with pytest.raises(REG.EvalSplitError):
            REG.train_files(FIX, name, split)
        assert REG.eval_files(FIX, name, split)  # evaluation reads it


def test_index_eval_sets_are_eval():
    """The EVAL splits INDEX.md names for the sets the registry holds, and the held-out
    splits evaluate reports on."""
    expected = {("squad_v1.1", "dev"), ("conll2003", "test"), ("mit_movie", "test"), ("mit_restaurant", "test"),
                ("wikigold", "all"), ("mnli", "dev_matched"), ("mnli_mismatched_sample", "dev_mismatched"),
                ("anli", "test"), ("xnli_en", "validation"), ("xnli_en", "test"), ("boolq", "dev"),
                ("tweeteval_sentiment", "val"), ("tweeteval_sentiment", "test"), ("ag_news", "test"),
                ("dbpedia14_subset", "test"), ("dbpedia14_subset", "test_sample"),
                ("yahoo_answers_topics_subset", "test_sample"), ("stsb", "test"), ("wikiqa", "test"),
                ("beir_scifact", "test"), ("commonsenseqa", "dev"), ("openbookqa", "test"), ("winogrande", "dev"),
                ("fewrel", "val_pubmed"), ("ade_re", "test"),
                # round 3 (INDEX.md "Rules"): whole sets kept for zero-shot label families, and test splits
                ("bbc_news", "val"), ("bbc_news", "test"), ("symptom2disease", "all"),
                ("tweeteval_stance", "train"), ("tweeteval_stance", "val"), ("tweeteval_stance", "test"),
                ("goemotions", "test"), ("olid", "test_a"), ("olid", "test_b"), ("olid", "test_c"),
                ("tweeteval_irony", "test"), ("swda", "test"), ("dailydialog", "test"), ("atis", "test"),
                ("broad_twitter_corpus", "test"), ("ufet_crowd", "test"), ("smart_answer_types", "dbpedia_test"),
                ("smart_answer_types", "wikidata_test_gold"), ("sgd_schema_guided", "schema_dev"),
                ("sgd_schema_guided", "schema_test")}
    expected |= {("crossner", f"{d}_test") for d in REG.CROSSNER_DOMAINS}
    assert set(REG.eval_splits()) == expected
    assert ("dbpedia14_subset", "dev") not in expected  # dev.tsv may be trained on (INDEX.md)


def test_paths_expand_globs_in_order_and_name_unknown_splits():
    assert [p.relative_to(FIX).as_posix() for p in REG.train_files(FIX, "subjqa", "train")] == [
        "subjqa/electronics/train.csv", "subjqa/grocery/train.csv", "subjqa/tripadvisor/train.csv"]
    assert [p.name for p in REG.train_files(FIX, "snli", "dev")] == ["s1.dev", "s2.dev", "labels.dev"]
    with pytest.raises(KeyError, match="sst2 has no split 'validation'"):
        REG.train_files(FIX, "sst2", "validation")
    with pytest.raises(KeyError, match="No raw set 'imdb'"):
        REG.dataset("imdb")
    with pytest.raises(ValueError, match="snli dev has 3 files"):
        REG.train_file(FIX, "snli", "dev")


def test_read_train_uses_the_sets_reader():
    rows = REG.read_train(FIX, "rte", "train")
    assert rows and {"premise", "hypothesis", "label"} <= set(rows[0])
    assert REG.dataset("conll2003").reader("train").__name__ == "read_bio"
    assert REG.dataset("dbpedia14_subset").reader("test_sample").__name__ == "read_jsonl"


@pytest.mark.skipif(not RAW.is_dir(), reason="the shared raw corpus is not here")
def test_declared_files_exist_in_the_raw_corpus():
    for data in REG.DATASETS.values():
        for split in data.splits:
            paths = REG.eval_files(RAW, data.name, split)
            assert paths and all(p.is_file() for p in paths), (data.name, split)


def test_corpus_imports_no_spacy_thinc_or_torch():
    for path in Path(corpus_package.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("spacy", "thinc", "torch") for n in names), (path.name, names)
