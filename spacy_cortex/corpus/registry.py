"""The public sets of corpus/raw, each declared once: its files per split (paths or globs
under the raw folder), their format and which splits are EVAL.

EVAL splits are held out for evaluation: corpus/raw/INDEX.md's EVAL sets, plus the held-out
splits `evaluate` reports on (conll2003 test, boolq dev, stsb test). Converters get their
files from `train_files`, which raises EvalSplitError for an EVAL split; `eval_files` serves
evaluation, tuning and the leakage guard (any split). A split that is not EVAL but held out
for another reason (SICK's TEST rows, inside SICK.txt) is the converter's to skip.
"""
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, FrozenSet, Iterator, List, Tuple

from . import readers

READERS: Dict[str, Callable] = {
    "lines": readers.read_lines,  # plain text, one item per line (the set's own layout)
    "jsonl": readers.read_jsonl,
    "json": readers.read_json,
    "tsv": readers.read_tsv,
    "csv": readers.read_csv,
    "bio": readers.read_bio,  # token ... tag per line, blank line between sentences
    "openbookqa": readers.read_openbookqa,  # TSV with the choices in one "(A) ... (D) ..." column
}


class EvalSplitError(ValueError):
    """A converter asked for the files of an EVAL split."""


@dataclass(frozen=True)
class Dataset:
    name: str  # the folder under the raw directory
    format: str  # a key of READERS: the format of its files
    splits: Dict[str, Tuple[str, ...]]  # split -> files (paths or globs relative to the folder)
    eval: FrozenSet[str] = frozenset()  # EVAL splits
    formats: Dict[str, str] = field(default_factory=dict)  # splits in another format than `format`

    def reader(self, split: str) -> Callable:
        """The reader of a split's files (readers.py)."""
        return READERS[self.formats.get(split, self.format)]

    def paths(self, raw_dir: Path, split: str) -> List[Path]:
        """The split's files under raw_dir: each path as declared (read later: a missing file
        raises there), each glob expanded in sorted order. KeyError for an unknown split."""
        if split not in self.splits:
            raise KeyError(f"{self.name} has no split {split!r}; it has {', '.join(self.splits)}")
        folder = Path(raw_dir) / self.name
        out: List[Path] = []
        for pattern in self.splits[split]:
            out += sorted(folder.glob(pattern)) if any(c in pattern for c in "*?[") else [folder / pattern]
        return out


def _set(name: str, format: str, eval: Tuple[str, ...] = (), formats=None, **splits) -> Dataset:
    files = {split: (f,) if isinstance(f, str) else tuple(f) for split, f in splits.items()}
    return Dataset(name, format, files, frozenset(eval), formats or {})


def _bio(name: str, ext: str, splits: Tuple[str, ...], eval: Tuple[str, ...] = ()) -> Dataset:
    """A tagged-token set with one `<split>.<ext>` file per split."""
    return _set(name, "bio", eval, **{s: f"{s}.{ext}" for s in splits})


CROSSNER_DOMAINS = ("ai", "literature", "music", "politics", "science")
STANCE_TARGETS = ("abortion", "atheism", "climate", "feminist", "hillary")  # tweeteval_stance folders

DATASETS: Dict[str, Dataset] = {d.name: d for d in [
    # ---- extractive QA
    _set("squad_v1.1", "json", ("dev",), train="train-v1.1.reconstructed.json", dev="dev-v1.1.json"),
    _set("squadshifts", "json", new_wiki="new_wiki_v1.0.json", amazon_reviews="amazon_reviews_v1.0.json",
         reddit="reddit_v1.0.json"),
    _set("policyqa", "json", dev="dev.json", test="test.json"),
    _set("subjqa", "csv", train="*/train.csv", dev="*/dev.csv"),
    _set("multispanqa", "json", valid="valid.json"),
    # ---- NER
    _bio("conll2003", "txt", ("train", "dev", "test"), ("test",)),
    _set("crossner", "bio", tuple(f"{d}_test" for d in CROSSNER_DOMAINS),
         **{f"{d}_{s}": f"{d}/{s}.txt" for d in CROSSNER_DOMAINS for s in ("train", "dev", "test")}),
    _bio("mit_movie", "txt", ("test",), ("test",)),
    _bio("mit_restaurant", "txt", ("test",), ("test",)),
    _set("wikigold", "bio", ("all",), all="wikigold.conll.txt"),
    _bio("wnut17", "conll", ("train", "dev", "test")),
    _set("fewnerd_inter_subset", "bio", train=("inter_train_part_a.txt", "inter_train_part_b.txt"),
         test="inter_test.txt", dev_episodes="inter_dev_episodes_5way_1shot.jsonl", formats={"dev_episodes": "jsonl"}),
    _set("multiconer2_en", "bio", train=("en-train90.conll", "en-train10.conll"), dev="en-dev.conll"),
    _set("pilener_slimer_subset", "jsonl", rows="validation_391types_5pos5neg.jsonl",
         definitions="top391NEs_definitions.json", formats={"definitions": "json"}),
    _bio("stackoverflow_ner", "txt", ("train", "dev", "test")),
    _bio("wlp_wnut2020", "conll", ("train", "dev", "test", "test2020")),
    _bio("gum_ner", "conll", ("train", "test")),
    _bio("wnut16", "conll", ("train", "dev", "test")),
    _bio("harveyner", "bio", ("train", "dev", "test")),
    _bio("anem", "conll", ("train", "test")),
    *(_bio(name, "tsv", ("train", "devel", "test"))
      for name in ("bionlp13cg", "bionlp13pc", "bionlp11id", "bc5cdr", "ncbi_disease")),
    _bio("jnlpba", "tsv", ("devel", "test")),
    # ---- NLI and yes/no QA
    _set("mnli", "jsonl", ("dev_matched",), dev_matched="dev_matched.jsonl"),
    _set("mnli_mismatched_sample", "jsonl", ("dev_mismatched",), dev_mismatched="dev_mismatched_sample.jsonl"),
    _set("mnli_train_subset", "jsonl", train="train_subset.jsonl"),
    _set("anli", "jsonl", ("test",), test="test_r1r2r3.jsonl"),
    _set("anli_dev", "csv", dev="ANLI_analysis_r*_dev.csv"),
    _set("xnli_en", "tsv", ("validation", "test"), validation="validation.tsv", test="test.tsv"),
    _set("snli", "lines", dev=("s1.dev", "s2.dev", "labels.dev"), test=("s1.test", "s2.test", "labels.test")),
    _set("rte", "jsonl", train="train.jsonl", val="val.jsonl", test="test.jsonl"),
    _set("cb", "jsonl", train="train.jsonl", val="val.jsonl", test="test.jsonl"),
    _set("sick", "tsv", all="SICK.txt"),
    _set("boolq", "jsonl", ("dev",), dev="dev.jsonl"),
    _set("boolq_train_subset", "jsonl", train="train_subset.jsonl"),
    # ---- sentiment and emotion
    _set("sst2", "lines", train="stsa.binary.train", dev="stsa.binary.dev", test="stsa.binary.test"),
    _set("rotten_tomatoes_mr", "lines", pos="rt-polarity.pos", neg="rt-polarity.neg"),
    _set("tweet_sentiment_extraction", "csv", train="train.csv", test="test.csv"),
    _set("tweeteval_sentiment", "lines", ("val", "test"), val=("val_text.txt", "val_labels.txt"),
         test=("test_text.txt", "test_labels.txt"), mapping="mapping.txt"),
    _set("tweeteval_emotion", "lines", train=("train_text.txt", "train_labels.txt"),
         val=("val_text.txt", "val_labels.txt"), test=("test_text.txt", "test_labels.txt"), mapping="mapping.txt"),
    _set("emotion", "lines", train="train.txt", val="val.txt", test="test.txt"),
    _set("financial_phrasebank", "lines", **{f"agree{p}": f"Sentences_{p}Agree.txt" for p in ("50", "66", "75", "All")}),
    # ---- topics, intents, question types
    _set("ag_news", "csv", ("test",), test="test.csv", classes="classes.txt", formats={"classes": "lines"}),
    _set("dbpedia14_subset", "tsv", ("test", "test_sample"), dev="dev.tsv", test="test.tsv",
         test_sample="hf_test_sample100.jsonl", classes="classes.txt",
         formats={"test_sample": "jsonl", "classes": "lines"}),
    _set("yahoo_answers_topics_subset", "jsonl", ("test_sample",), test_sample="hf_test_sample100.jsonl"),
    _set("trec", "lines", train="train.txt", test="test.txt"),
    _set("banking77", "csv", train="train.csv", test="test.csv", categories="categories.json",
         formats={"categories": "json"}),
    _set("clinc150", "json", all="data_full.json", domains="domains.json"),
    _set("hwu64", "csv", train="train.csv", val="val.csv", test="test.csv", categories="categories.json",
         formats={"categories": "json"}),
    _set("snips_nlu", "json", train="train_*_full.json", validate="validate_*.json"),
    _set("reuters_r8", "tsv", train="train.txt", test="test.txt"),
    # ---- similarity, paraphrase, retrieval
    _set("stsb", "tsv", ("test",), train="sts-train.tsv", dev="sts-dev.tsv", test="sts-test.tsv"),
    _set("mrpc", "tsv", train="msr_paraphrase_train.txt", test="msr_paraphrase_test.txt"),
    _set("wikiqa", "tsv", ("test",), test="WikiQA-test.tsv"),
    _set("beir_scifact", "tsv", ("test",), corpus="corpus.jsonl", queries="queries.jsonl",
         train="qrels/train.tsv", test="qrels/test.tsv", formats={"corpus": "jsonl", "queries": "jsonl"}),
    # ---- multiple choice and prompts
    _set("commonsenseqa", "jsonl", ("dev",), train="train_rand_split.jsonl", dev="dev_rand_split.jsonl"),
    _set("openbookqa", "openbookqa", ("test",), train="train.tsv", dev="dev.tsv", test="test.tsv"),
    _set("winogrande", "jsonl", ("dev",), train="train_l.jsonl", dev="dev.jsonl"),
    _set("promptsource_templates", "jsonl", all="templates.jsonl"),
    # ---- round-3 label sets (training/datasets/labelsets.py)
    _set("goemotions", "tsv", ("test",), train="train.tsv", dev="dev.tsv", test="test.tsv", labels="labels.txt",
         formats={"labels": "lines"}),
    _set("semeval2018_ec", "tsv", train="2018-E-c-En-train.txt", dev="2018-E-c-En-dev.txt"),
    _set("olid", "tsv", ("test_a", "test_b", "test_c"), train="olid-training-v1.0.tsv",
         **{f"test_{x}": (f"testset-level{x}.tsv", f"labels-level{x}.csv") for x in "abc"}),
    _set("davidson_hate_offensive", "csv", all="labeled_data.csv"),
    _set("stanford_politeness", "csv", wikipedia="wikipedia.annotated.csv",
         stack_exchange="stack-exchange.annotated.csv"),
    _set("clickbait", "lines", clickbait="clickbait_data.txt", news="non_clickbait_data.txt"),
    _set("sms_spam", "tsv", all="SMSSpamCollection"),
    _set("tweeteval_irony", "lines", ("test",), train=("train_text.txt", "train_labels.txt"),
         val=("val_text.txt", "val_labels.txt"), test=("test_text.txt", "test_labels.txt"), mapping="mapping.txt"),
    _set("crisisnlp_sandy", "csv", all="data-gold.csv"),
    # `dialogue|speaker|utterance|tag` lines; val is not EVAL but no converter reads it (kept for tuning)
    _set("swda", "lines", ("test",), train="train_subset450.txt", val="val.txt", test="test.txt",
         label_map="label_map.txt"),
    _set("dailydialog", "lines", ("test",),
         **{s: tuple(f"{s}/dialogues{f}.txt" for f in ("", "_act", "_emotion")) for s in ("validation", "test")}),
    _set("atis", "lines", ("test",), intents="intent_label.txt", slots="slot_label.txt",
         **{s: tuple(f"{s}/{f}" for f in ("seq.in", "seq.out", "label")) for s in ("train", "dev", "test")}),
    # whole sets EVAL: zero-shot topic, stance and medical label families (INDEX.md)
    _set("bbc_news", "csv", ("val", "test"), val="val.csv", test="test.csv"),
    _set("tweeteval_stance", "lines", ("train", "val", "test"), mapping="mapping.txt",
         **{s: tuple(f"{t}/{s}_{f}.txt" for t in STANCE_TARGETS for f in ("text", "labels"))
            for s in ("train", "val", "test")}),
    _set("symptom2disease", "csv", ("all",), all="Symptom2Disease.csv"),
    # ---- relations (conditional extraction: "Find the {relation} of {head}.")
    _set("fewrel", "json", ("val_pubmed",), val_wiki="val_wiki.json", val_nyt="val_nyt.json",
         val_pubmed="val_pubmed.json", names="pid2name.json"),
    _set("ade_re", "json", ("test",), train="train.ADE0.json", valid="valid.ADE0.json", test="test.ADE0.json"),
    _set("redocred", "json", dev="dev_revised.json"),
    # ---- large inventories of label names (training/datasets/typing_sets.py)
    _set("broad_twitter_corpus", "bio", ("test",), train="btc.train", dev="btc.dev", test="btc.test"),
    _set("ufet_crowd", "jsonl", ("test",), train="train.json", dev="dev.json", test="test.json",
         types="types.txt", definitions="types_definition.txt", formats={"types": "lines", "definitions": "lines"}),
    _set("smart_answer_types", "jsonl", ("dbpedia_test", "wikidata_test_gold"), dbpedia_train="dbpedia_train.jsonl",
         dbpedia_test="dbpedia_test.jsonl", dbpedia_types="dbpedia_types.tsv",
         wikidata_train="wikidata_train_2020-03_minus_test.jsonl", wikidata_test_gold="wikidata_test_gold.jsonl",
         qald9_train="qald9_train_answer_types.tsv", formats={"dbpedia_types": "tsv", "qald9_train": "tsv"}),
    _set("stackexchange_tags", "csv", cooking="cooking.csv", robotics="robotics.csv", travel="travel.csv"),
    _set("keyphrase_liaad", "jsonl", **{n: f"{n}.jsonl" for n in ("inspec", "semeval2017", "kpcrowd500n", "kdd", "www")}),
    # dev / test schemas describe the services of SGD's unseen-service evaluation (their dialogues are not here)
    _set("sgd_schema_guided", "json", ("schema_dev", "schema_test"), train_turns="train_user_turns_sample.jsonl",
         schema_train="schema_train.json", sgd_x_train="sgd_x_train_schemas/schema_train_v*.json",
         schema_dev="schema_dev.json", schema_test="schema_test.json", formats={"train_turns": "jsonl"}),
]}


def dataset(name: str) -> Dataset:
    """KeyError naming the known sets for an unknown one."""
    if name not in DATASETS:
        raise KeyError(f"No raw set {name!r} in the registry; known: {', '.join(sorted(DATASETS))}")
    return DATASETS[name]


def train_files(raw_dir: Path, name: str, split: str) -> List[Path]:
    """The files of a split a converter may read. Raises EvalSplitError for an EVAL split."""
    data = dataset(name)
    if split in data.eval:
        raise EvalSplitError(f"{name} {split} is an EVAL split (corpus/raw/INDEX.md): "
                             "it is never read for training")
    return data.paths(raw_dir, split)


def train_file(raw_dir: Path, name: str, split: str) -> Path:
    """The one file of a non-EVAL split (ValueError if it has several)."""
    return _single(name, split, train_files(raw_dir, name, split))


def eval_files(raw_dir: Path, name: str, split: str) -> List[Path]:
    """The files of any split, for evaluation, tuning and the leakage guard; never for training."""
    return dataset(name).paths(raw_dir, split)


def eval_file(raw_dir: Path, name: str, split: str) -> Path:
    return _single(name, split, eval_files(raw_dir, name, split))


def read_train(raw_dir: Path, name: str, split: str, **options):
    """The set's reader over the one file of a non-EVAL split (options: the reader's, e.g. encoding)."""
    return dataset(name).reader(split)(train_file(raw_dir, name, split), **options)


def read_eval(raw_dir: Path, name: str, split: str, **options):
    """The set's reader over the one file of any split; never for training."""
    return dataset(name).reader(split)(eval_file(raw_dir, name, split), **options)


def eval_splits() -> Iterator[Tuple[str, str]]:
    """(set, split) of every EVAL split, in declaration order."""
    for data in DATASETS.values():
        yield from ((data.name, split) for split in data.splits if split in data.eval)


def _single(name: str, split: str, paths: List[Path]) -> Path:
    if len(paths) != 1:
        raise ValueError(f"{name} {split} has {len(paths)} files, not one")
    return paths[0]
