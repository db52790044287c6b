"""The round-3 label sets of spacy_cortex.evaluation.evaluate (issue 24): their row readers on
fixture files in the raw layouts, the prompts they give cortex_textcat, their metrics, and
a tiny end-to-end run of every new set."""
import json
import zlib
from pathlib import Path

import numpy as np
import pytest

from spacy_cortex.evaluation import evaluate as E
from spacy_cortex.evaluation import rows as ROWS
from spacy_cortex.evaluation.evaluator import Evaluator, eval_labels
from spacy_cortex.evaluation.metrics import macro_f1, micro_f1
from spacy_cortex.templates import TEMPLATES_DIR

FIXTURES = Path(__file__).parents[1] / "fixtures" / "evaluate"
CLASSIFICATION = ("bbc_news", "tweeteval_stance", "symptom2disease", "goemotions", "olid", "tweeteval_irony", "atis",
                  "swda", "dailydialog_act", "dailydialog_emotion")
ROUND3 = CLASSIFICATION + ("broad_twitter_corpus",)


class WordsBiencoder:
    """Embeds a text as its hashed bag of lower-cased words: cosine is word overlap (a text
    sharing no word with any option picks the first)."""

    def embed(self, texts, layer=-1):
        out = np.zeros((len(texts), 64))
        for i, text in enumerate(texts):
            for word in text.lower().split():
                out[i, zlib.crc32(word.strip(".,!?").encode()) % 64] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def words_biencoder(monkeypatch):
    monkeypatch.setattr(Evaluator, "biencoder", WordsBiencoder())


def test_readers_of_the_round3_sets():
    raw = FIXTURES
    assert ROWS.stance_rows(raw) == [
        ("abortion", "Every life deserves protection from the start. #SemST", "against"),
        ("abortion", "My body, my choice, always. #SemST", "favor"),
        ("atheism", "Faith gives my days meaning. #SemST", "against"),
        ("feminist", "Lovely weather for a walk today. #SemST", "none"),
        ("hillary", "Hillary has my vote in November. #SemST", "favor")]
    # the multi-intent row is left out
    assert ROWS.atis_rows(raw) == [("show me flights from boston to denver", "atis_flight"),
                                   ("what is the fare from dallas to atlanta", "atis_airfare"),
                                   ("what does the code ap mean", "atis_abbreviation")]
    assert ROWS.goemotions_rows(raw)[1] == ("What a great goal, I love this team.", ("admiration", "love"))
    assert ROWS.olid_rows(raw) == [("@USER you are a clown and a liar URL", "OFF"),
                                   ("@USER Have a nice weekend everyone!", "NOT"),
                                   ("Nobody asked for your opinion @USER", "OFF")]
    assert [g for _, g in ROWS.irony_rows(raw)] == ["irony", "non_irony"]
    assert ROWS.symptom2disease_rows(raw)[1] == ("I am always thirsty and I pee a lot.", "diabetes")
    assert [g for _, g in ROWS.bbc_news_rows(raw)] == ["business", "sport", "tech"]
    # the 'Other' turn is left out but stays the next turn's context; spaces collapsed
    assert ROWS.swda_rows(raw) == [("Okay, uh,\ndo you like camping?", "qy"), ("do you like camping?\nYes.", "ny"),
                                   ("Yes.\nI think it is great fun.", "sv"), ("Well, bye now.", "fc")]
    # detokenized turns below the one before; the dialogue with more codes than turns is left out
    assert ROWS.dailydialog_rows(raw, 1) == [
        ("Can you help me?", "2"), ("Can you help me?\nSure, what do you need?", "2"),
        ("Sure, what do you need?\nPlease close the door.", "3"), ("I am so happy today!", "1"),
        ("I am so happy today!\nWhy?", "2")]
    assert [g for _, g in ROWS.dailydialog_rows(raw, 2)] == ["0", "0", "0", "4", "6"]
    # BTC: the blank token left out, spaces stripped, the '@' entity before a name dropped
    assert ROWS.btc_sentences(raw / "broad_twitter_corpus" / "btc.test")[1] == (
        ["@", "sarah_j", "loves", "the", "BBC", ":)"], ["O", "B-PER", "O", "O", "B-ORG", "O"])


def test_eval_templates_are_not_training_templates():
    """Evaluation prompts are the sets' own: no template of the training label sets or prompts."""
    labels = eval_labels()["labels"]
    training = json.loads((TEMPLATES_DIR / "label_sets.json").read_text())["templates"]
    prompts = json.loads((TEMPLATES_DIR / "training_prompts.json").read_text())
    used = {t for family in training.values() for t in family}
    used |= {t for family in prompts.values() if isinstance(family, list) for t in family}
    for key, spec in labels.items():
        assert spec["template"] not in used, key
        assert "{label}" in spec["template"]
    assert set(ROWS.id_names(FIXTURES, "tweeteval_stance").values()) == {"none", *eval_labels()["stance"]["stances"]}
    assert set(eval_labels()["stance"]["targets"]) == set(ROWS.STANCE_TARGETS)


def test_stance_prompts_name_their_target(positive_checkpoint, negative_checkpoint, words_biencoder, monkeypatch):
    """One cortex_textcat run per target with rows (climate has none), its prompts naming the
    target, 'none' as none_label. A model that says yes to everything picks the first of
    against / favor (none scores ~0); one that says no picks none."""
    configs = []
    real = Evaluator.run_component
    monkeypatch.setattr(Evaluator, "run_component",
                        lambda self, factory, config, docs: configs.append(config) or real(self, factory, config, docs))
    report = E.SETS["tweeteval_stance"](Evaluator(FIXTURES, str(positive_checkpoint), precision="fp32"))
    assert [c["labels"] for c in configs] == [
        {"against": f"Is the author against {t}?", "favor": f"Is the author in favor of {t}?"}
        for t in ("legal abortion", "atheism", "the feminist movement", "Hillary Clinton")]
    assert {c["none_label"] for c in configs} == {"none"} and all(c["exclusive"] for c in configs)
    assert report["n"] == 5 and set(report["per_target"]) == {"abortion", "atheism", "feminist", "hillary"}
    m = report["metrics"]
    assert m["accuracy"] == pytest.approx(2 / 5)  # all 'against'
    assert m["f1_against_favor"] == pytest.approx((2 * 2 / (2 * 2 + 3) + 0) / 2)  # against: 2 right, 3 wrong; favor 0
    assert 0.0 <= m["biencoder"] <= 1.0 and m["biencoder_f1_against_favor"] is not None
    refused = E.SETS["tweeteval_stance"](Evaluator(FIXTURES, str(negative_checkpoint), precision="fp32"))
    assert refused["metrics"]["accuracy"] == pytest.approx(1 / 5)  # all 'none'


def test_goemotions_single_label_rows_and_multi_label(positive_checkpoint, negative_checkpoint, words_biencoder):
    """Accuracy on the 3 single-label rows; micro-F1 on all 5 rows' 7 gold labels."""
    yes = E.SETS["goemotions"](Evaluator(FIXTURES, str(positive_checkpoint), precision="fp32"))
    assert yes["n"] == 5 and yes["single_label_n"] == 3
    assert yes["metrics"]["accuracy"] == 0.0  # all labels tie: 'admiration' (first) for every row
    assert yes["metrics"]["micro_f1"] == pytest.approx(2 * 7 / (2 * 7 + 5 * 28 - 7))  # every label predicted
    no = E.SETS["goemotions"](Evaluator(FIXTURES, str(negative_checkpoint), precision="fp32"))
    assert no["metrics"]["micro_f1"] == 0.0
    assert "Does this comment show {label}?" in yes["protocol"]


def test_label_set_prompts_and_biencoder(tiny_checkpoint, words_biencoder, monkeypatch):
    """Each label's prompt is the set's template with the label's name; the bi-encoder picks
    the label whose name shares words with the text."""
    configs = []
    real = Evaluator.run_component
    monkeypatch.setattr(Evaluator, "run_component",
                        lambda self, factory, config, docs: configs.append(config) or real(self, factory, config, docs))
    report = E.SETS["olid"](Evaluator(FIXTURES, str(tiny_checkpoint), precision="fp32"))
    assert configs[-1]["labels"] == {"NOT": "Is this tweet not offensive?", "OFF": "Is this tweet offensive?"}
    # no tweet shares a word with either name: the first, NOT, for all (1 of 3 right)
    assert report["metrics"]["biencoder"] == pytest.approx(1 / 3)
    assert report["metrics"]["biencoder_macro_f1"] == pytest.approx((2 * 1 / (2 + 2) + 0) / 2)
    E.SETS["atis"](Evaluator(FIXTURES, str(tiny_checkpoint), precision="fp32"))
    assert configs[-1]["labels"]["atis_ground_service"] == "Does the traveler ask about ground transportation?"
    assert len(configs[-1]["labels"]) == len(eval_labels()["labels"]["atis"]["labels"])


def test_round3_end_to_end(tiny_checkpoint, words_biencoder, tmp_path):
    out = tmp_path / "metrics.json"
    report = E.main([str(FIXTURES), "--model", str(tiny_checkpoint), "--output", str(out),
                     "--sets", ",".join(ROUND3), "--precision", "fp32"])
    sets = json.loads(out.read_text())["sets"]
    assert list(sets) == list(ROUND3) and sets == json.loads(json.dumps(report["sets"]))
    assert {name: sets[name]["n"] for name in ROUND3} == {
        "bbc_news": 3, "tweeteval_stance": 5, "symptom2disease": 4, "goemotions": 5, "olid": 3, "tweeteval_irony": 2,
        "atis": 3, "swda": 4, "dailydialog_act": 5, "dailydialog_emotion": 5, "broad_twitter_corpus": 3}
    for name in CLASSIFICATION:
        metrics = sets[name]["metrics"]
        assert {"accuracy", "biencoder"} <= set(metrics), name
        assert all(v is not None and 0.0 <= v <= 1.0 for v in metrics.values()), name
    for name in set(CLASSIFICATION) - {"bbc_news"}:
        assert {"macro_f1", "biencoder_macro_f1"} <= set(sets[name]["metrics"]), name
    assert set(sets["tweeteval_stance"]["metrics"]) >= {"f1_against_favor", "biencoder_f1_against_favor"}
    assert "micro_f1" in sets["goemotions"]["metrics"]
    ner = sets["broad_twitter_corpus"]
    assert ner["label_names"] == {"LOC": "location", "ORG": "organization", "PER": "person"}
    assert 0.0 <= ner["metrics"]["ents_f"] <= 1.0


def test_label_f1_metrics():
    assert macro_f1(["a", "a", "b"], ["a", "b", "b"]) == pytest.approx((2 / 3 + 2 / 3) / 2)
    assert macro_f1(["a", "a"], ["a", "a"], labels=["a", "c"]) == pytest.approx(0.5)  # c: never seen, 0
    assert micro_f1([{"x"}, set()], [{"x", "y"}, {"z"}]) == pytest.approx(2 * 1 / (2 * 1 + 2))
    assert np.isnan(micro_f1([set()], [set()]))
