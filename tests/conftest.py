"""Tiny random CORTEX checkpoints built on the fly: offline and fast."""
import string
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
from transformers import BertConfig, BertForTokenClassification, BertTokenizerFast

WORDS = (
    "the a an of to and in is was were who what which where when how did does do "
    "patient given mg atorvastatin asked about refund billing shipping drug dose "
    "prescribed find all mentioned text this are medications doses"
).split()


def tiny_tokenizer() -> BertTokenizerFast:
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    pieces = list(string.ascii_lowercase + string.digits + string.punctuation)
    vocab_list = specials + pieces + ["##" + c for c in string.ascii_lowercase + string.digits] + WORDS
    vocab = {token: i for i, token in enumerate(dict.fromkeys(vocab_list))}
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    # `[CLS] a [SEP] b [SEP]` as a published BERT tokenizer.json has it: transformers 5's
    # BertTokenizer adds this itself, 4.x's BertTokenizerFast keeps a tokenizer_object as given
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    # BertTokenizerFast: 4.x's fast BERT tokenizer; in 5.x the same name for BertTokenizer
    return BertTokenizerFast(tokenizer_object=tok, model_max_length=512)


def build_checkpoint(path: Path, num_labels: int = 3, inside_bias: float = 0.0) -> Path:
    """A 2-layer BERT with a token head; inside_bias > 0 makes every token and [CLS]
    'positive', < 0 'negative' (deterministic behaviour for decoding tests)."""
    torch.manual_seed(0)
    tokenizer = tiny_tokenizer()
    config = BertConfig(
        vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=512, num_labels=num_labels,
    )
    model = BertForTokenClassification(config)
    if inside_bias:
        with torch.no_grad():
            model.classifier.weight.zero_()
            model.classifier.bias.copy_(torch.tensor([0.0, inside_bias, -inside_bias])[:num_labels])
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def positive_checkpoint(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("positive"), inside_bias=8.0)


@pytest.fixture(scope="session")
def negative_checkpoint(tmp_path_factory) -> Path:
    return build_checkpoint(tmp_path_factory.mktemp("negative"), inside_bias=-8.0)


@pytest.fixture(scope="session")
def varied_checkpoint(tmp_path_factory) -> Path:
    """Like tiny_checkpoint with a sharper random head, so inside-probabilities vary a lot
    from word to word (non-trivial entities, answers and label scores)."""
    path = build_checkpoint(tmp_path_factory.mktemp("varied"))
    model = BertForTokenClassification.from_pretrained(path)
    with torch.no_grad():
        model.classifier.weight.mul_(10.0)
    model.save_pretrained(path, safe_serialization=True)
    return path


@pytest.fixture(scope="session")
def blank_pipeline(tmp_path_factory) -> Path:
    """A saved blank English pipeline (a tokenizer only): batch-job machinery tests that
    need many documents fast."""
    import spacy

    path = tmp_path_factory.mktemp("blank") / "pipeline"
    spacy.blank("en").to_disk(path)
    return path


USER_NER_LABELS = {"DRUG": "Which medications are mentioned?", "DOSE": "What doses are given?"}
USER_TEXTCAT_LABELS = ["billing", "shipping", "refund"]
USER_QUESTIONS = ["Who was prescribed the drug?"]


@pytest.fixture
def make_nlp():
    """make_nlp(checkpoint, ner=..., textcat=..., qa=..., **model_settings): a blank English
    pipeline with cortex + the task components of the user snippet (None leaves one out)."""
    import spacy

    def make(checkpoint, ner=None, textcat=None, qa=None, **model):
        nlp = spacy.blank("en")
        nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), **model}})
        if ner is not False:
            nlp.add_pipe("cortex_ner", config=ner or {"labels": dict(USER_NER_LABELS)})
        if textcat is not False:
            nlp.add_pipe(
                "cortex_textcat",
                config=textcat or {"labels": list(USER_TEXTCAT_LABELS), "exclusive": True},
            )
        if qa is not False:
            nlp.add_pipe("cortex_qa", config=qa or {"questions": list(USER_QUESTIONS)})
        return nlp

    return make


def task_nlp(checkpoint, factory: str, config: dict):
    """A blank pipeline with a cortex on `checkpoint` and one task component."""
    import spacy

    nlp = spacy.blank("en")
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint)}})
    nlp.add_pipe(factory, config=config)
    return nlp


CONVERTER_FIXTURES = Path(__file__).resolve().parent.parent / "corpus" / "fixtures"


@pytest.fixture(scope="module")
def templates():
    """The converters' training prompt templates."""
    from spacy_cortex.training import convert

    return convert.load_templates()


def run_converter(name, templates, seed=0):
    """All records of one registered converter over the fixture files."""
    import random

    from spacy_cortex.training import convert

    return list(convert.converters.get(name)(CONVERTER_FIXTURES, templates, random.Random(seed)))
