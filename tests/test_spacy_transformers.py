"""A pipeline that holds spacy-transformers' `transformer` (with a listening tagger) and
cortex components works: both models run, train side by side and round-trip through
to_disk / spacy.load. Skipped where spacy-transformers is not installed (it pins
transformers 4.x; CI's second environment installs it, see .ci/run)."""
import pytest

spacy_transformers = pytest.importorskip("spacy_transformers")

import spacy  # noqa: E402
from spacy.training import Example  # noqa: E402

TEXT = "the patient was given 20 mg atorvastatin"
TAGGER = {
    "model": {
        "@architectures": "spacy.Tagger.v2",
        "nO": None,
        "tok2vec": {"@architectures": "spacy-transformers.TransformerListener.v1", "grad_factor": 1.0,
                    "pooling": {"@layers": "reduce_mean.v1"}, "upstream": "transformer"},
    }
}


def make_nlp(checkpoint):
    nlp = spacy.blank("en")
    # spacy-transformers reads any local Hugging Face folder: the tiny test checkpoint's encoder
    nlp.add_pipe("transformer", config={"model": {"name": str(checkpoint)}})
    nlp.add_pipe("tagger", config=TAGGER)
    nlp.add_pipe("cortex", config={"model": {"checkpoint": str(checkpoint), "precision": "fp32"}})
    nlp.add_pipe("cortex_ner", config={"labels": ["DRUG", "DOSE"], "threshold": 0.3})
    nlp.add_pipe("cortex_textcat", config={"labels": ["billing", "refund"]})
    return nlp


def test_transformer_and_cortex_share_a_pipeline(tiny_checkpoint, tmp_path):
    nlp = make_nlp(tiny_checkpoint)
    words = TEXT.split()
    examples = [Example.from_dict(nlp.make_doc(TEXT), {"tags": ["N" if i % 2 else "V" for i in range(len(words))]})]
    optimizer = nlp.initialize(lambda: examples)
    losses = nlp.update(examples, sgd=optimizer)
    assert {"transformer", "tagger", "cortex"} <= set(losses)
    doc = nlp(TEXT)
    assert doc._.trf_data is not None and all(t.tag_ for t in doc)
    assert set(doc.cats) == {"billing", "refund"}
    assert [d.to_json() for d in nlp.pipe([TEXT, TEXT])] == [doc.to_json()] * 2

    nlp.to_disk(tmp_path / "pipeline")
    loaded = spacy.load(tmp_path / "pipeline")
    again = loaded(TEXT)
    assert [t.tag_ for t in again] == [t.tag_ for t in doc]
    assert [(e.text, e.label_) for e in again.ents] == [(e.text, e.label_) for e in doc.ents]
    assert again.cats == pytest.approx(doc.cats, abs=1e-5)
