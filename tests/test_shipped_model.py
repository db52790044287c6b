"""Quality smoke test of the shipped default model (cortex-mini-en), loaded by name as a
user gets it: a few unambiguous cases every release must get right."""
import pytest
import spacy

from spacy_cortex import answer, classify, entail, extract, load_model
from spacy_cortex.core.checkpoints import DEFAULT_CHECKPOINT, resolve_checkpoint


@pytest.fixture(scope="module")
def nlp():
    assert (resolve_checkpoint(DEFAULT_CHECKPOINT) / "model.safetensors").exists()
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": {"PERSON": "person", "LOC": "location"}})
    nlp.add_pipe("cortex_textcat", config={"labels": ["sports", "business", "politics"]})
    return nlp


def test_ner_finds_people_and_places(nlp):
    doc = nlp("Barack Obama visited Paris last week.")
    found = {(e.text, e.label_) for e in doc.ents}
    assert ("Barack Obama", "PERSON") in found
    assert ("Paris", "LOC") in found
    assert all(0.3 <= e._.cortex_score <= 1.0 for e in doc.ents)  # the default threshold


def test_textcat_picks_the_topic(nlp):
    doc = nlp("The team won the championship game last night after a late goal.")
    assert max(doc.cats, key=doc.cats.get) == "sports"


def test_extractive_answer():
    context = "Microsoft was founded by Bill Gates and Paul Allen in 1975 in Albuquerque."
    result = answer("In which year was Microsoft founded?", context)[0]
    assert result["text"] == "1975"


def test_entailment():
    probs = entail("A man is playing a guitar on stage.", "A man is playing an instrument.")[0]
    assert max(probs, key=probs.get) == "entailment"
    probs = entail("A man is playing a guitar on stage.", "Nobody is playing music.")[0]
    assert max(probs, key=probs.get) == "contradiction"


def test_default_model_is_cached():
    assert load_model() is load_model()


SPECIFIC_LABELS = ["person", "writer", "politician", "location"]


def test_ner_prefers_the_more_specific_label():
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": SPECIFIC_LABELS})
    found = {(e.text, e.label_) for text in ("The novel Oliver Twist was written by Charles Dickens.",
                                             "Senator Elizabeth Warren introduced the bill.") for e in nlp(text).ents}
    assert {("Charles Dickens", "writer"), ("Elizabeth Warren", "politician")} <= found
    assert {("writer", "person"), ("politician", "person")} <= nlp.get_pipe("cortex_ner").task.subtypes


@pytest.mark.xfail(strict=True, reason="cortex-mini-en v3 marks every person name as writer and politician "
                                       "(inside-probability >= 0.95; model card, Limitations), so the more "
                                       "specific label wins where only person is right")
def test_a_plain_person_stays_a_person():
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": SPECIFIC_LABELS})
    assert [(e.text, e.label_) for e in nlp("My neighbour Tom Jones fixed the car.").ents] == [("Tom Jones", "person")]


# --- issue 10: the faults replayed from public bug reports, with their right values -------


def ner_found(labels, text):
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_ner", config={"labels": labels})
    return [(e.text, e.label_) for e in nlp(text).ents]


def test_a_symbol_glued_to_a_word_does_not_hide_the_entity():
    assert ner_found(["organization"], "Thanks Apple🍎 for the update.") == [("Apple", "organization")]
    assert ("Apple", "organization") in ner_found(["organization"], "Thanks Apple™ for the update.")


def test_an_emoji_does_not_enter_the_span():
    assert ner_found(["PERSON"], "😀 Margaret Okafor visited us.") == [("Margaret Okafor", "PERSON")]


def test_names_one_per_line_are_one_entity_each():
    found = ner_found(["PERSON"], "Attendees:\nMargaret Okafor\nJohn Smith\nPriya Patel")
    assert found == [("Margaret Okafor", "PERSON"), ("John Smith", "PERSON"), ("Priya Patel", "PERSON")]


def test_qa_answer_and_span_agree():
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_qa", config={"questions": ["What is the username?"]})
    doc = nlp("Username: m_okafor99 was locked.")
    [entry] = doc._.cortex_answers
    [span] = doc.spans["cortex_qa"]
    assert (entry["text"], entry["start_char"], entry["end_char"]) == ("m_okafor99", 10, 20)
    assert (span.text, span.start_char, span.end_char) == ("m_okafor99", 10, 20)


HISTORY = [
    "The Normans were the people who in the 10th and 11th centuries gave their name to Normandy.",
    "The Roman Empire reached its greatest extent under the emperor Trajan in 117 AD.",
    "The printing press was developed by Johannes Gutenberg around 1440 in Mainz.",
    "The Treaty of Westphalia in 1648 ended the Thirty Years' War in the Holy Roman Empire.",
    "The Ming dynasty ruled China for nearly three centuries before the Qing took power.",
    "The French Revolution began in 1789 with the storming of the Bastille in Paris.",
    "The Ottoman Empire captured Constantinople in 1453, ending the Byzantine Empire.",
    "The Industrial Revolution started in Britain in the late 18th century with textile mills.",
]


def test_a_category_does_not_fade_as_unrelated_text_follows():
    request = "I was charged twice this month; please refund the duplicate payment."
    long_text = request + "\n\n" + "\n\n".join(HISTORY[i % len(HISTORY)] + " " + HISTORY[(i + 3) % len(HISTORY)]
                                               for i in range(32))
    alone, followed = classify([request, long_text], ["refund request", "sports", "history"], exclusive=False)
    assert alone["refund request"] > 0.9
    assert followed["refund request"] > 0.9  # was 0.20: per-window [CLS] scores were averaged


def test_one_category_is_a_yes_no_question():
    nlp = spacy.blank("en")
    nlp.add_pipe("cortex_textcat", config={"labels": ["refund request"]})
    yes, no = nlp("Please refund the duplicate payment."), nlp("The weather is lovely today.")
    assert yes.cats["refund request"] > 0.5 > no.cats["refund request"]


@pytest.mark.parametrize("text,name", [
    ("👩‍💻Ada Lovelace wrote the first program.", "Ada Lovelace"), ("Elon Musk🚀 runs SpaceX.", "Elon Musk"),
    ("Thanks🙏🏼Jacinda Ardern!", "Jacinda Ardern"),
])
def test_an_emoji_beside_a_name_does_not_hide_it(text, name):
    """The model finds the name (an [UNK] beside it made the score fall below threshold).
    Doc.ents follow spaCy's tokens, and spaCy's English tokenizer keeps a skin-tone
    modifier with the next word ('🏼Jacinda'); extract() gives the exact offsets."""
    from spacy_cortex.core.encoding import is_pictograph

    [(found, label)] = ner_found(["PERSON"], text)
    assert label == "PERSON" and found.endswith(name) and is_pictograph(found[: -len(name)] or "🏼")
    assert [s["text"] for s in extract(text, "Find all person mentioned in the text.")[0]] == [name]


@pytest.mark.parametrize("context,expected", [
    ("Set the oven to 200°F please.", "200°F"), ("It was 30°C in Madrid.", "30°C"),
])
def test_units_stay_with_their_numbers(context, expected):
    assert answer("What temperature?", context)[0]["text"] == expected


def test_a_heading_does_not_change_the_paragraph_after_it():
    paragraph = ("Yesterday's match was incredible: Real Madrid came back from two goals down to beat "
                 "Bayern Munich 3-2 in the Champions League semi-final, with Vinicius Junior scoring "
                 "the winner in stoppage time.")
    for text in (paragraph, "Sports\n\n" + paragraph, paragraph + "\n\nThe central bank kept rates unchanged."):
        nlp = spacy.blank("en")
        nlp.add_pipe("cortex_ner", config={"labels": ["PERSON", "ORG"]})
        offset = text.index(paragraph)
        found = [(e.text, e.label_, e.start_char - offset) for e in nlp(text).ents  # the paragraph's own
                 if offset <= e.start_char < offset + len(paragraph)]
        if text == paragraph:
            expected = found
        assert found == expected and ("Vinicius Junior", "PERSON", paragraph.index("Vinicius")) in found


# --- issue 25: wrong NER results, replayed on the shipped model ----------------------------


def test_two_names_are_not_joined_over_the_word_between():
    text = "Report 116: Ada Lovelace met Grace Hopper to discuss the refund for invoice 116."
    assert ner_found(["PERSON"], text) == [("Ada Lovelace", "PERSON"), ("Grace Hopper", "PERSON")]
    assert ner_found(["PERSON"], "Leonardo da Vinci painted the Mona Lisa.") == [("Leonardo da Vinci", "PERSON")]
    assert ("Bank of America", "ORG") in ner_found(["ORG"], "He works at Bank of America in Charlotte.")


def test_no_entity_ends_with_a_separator():
    text = ("This Agreement is made on January 5, 2024 between Acme Inc., a Delaware corporation, "
            "and Beta LLC, for a term of two years.")
    found = ner_found(["DATE", "ORG", "DURATION"], text)
    assert ("Delaware corporation", "ORG") in found and ("Acme Inc.", "ORG") in found
    assert not any(name[-1] in ",;:" or name[0] in ",;:" for name, _ in found)


def test_a_lone_name_keeps_its_best_label():
    assert ner_found(["PERSON", "GPE"], "Obama") == [("Obama", "PERSON")]


def test_sentences_joined_by_spaces_keep_their_entities():
    """issue 25 item 3: a window of a paragraph longer than the 64-token span window holds at
    most 4 sentences (SPAN_MAX_SENTENCES); in whole 64-token windows the name fell to
    0.56-0.81 in the 4th-6th sentence."""
    found = ner_found(["PERSON", "ORG", "GPE"], " ".join(["Microsoft hired Satya Nadella in Seattle."] * 12))
    assert found.count(("Satya Nadella", "PERSON")) == 12
    [spans] = extract(" ".join(["Angela Merkel visited Siemens in Munich."] * 15), "Find all persons.")
    assert [s["text"] for s in spans].count("Angela Merkel") == 15  # the API reads as the component


def test_a_clause_tokenized_as_one_word_is_not_an_entity():
    nlp = spacy.blank("xx")
    nlp.add_pipe("cortex_ner", config={"labels": ["PERSON", "GPE"]})
    with pytest.warns(UserWarning, match="cortex_unaligned"):
        doc = nlp("山田太郎さんは東京で働いています。")
    assert list(doc.ents) == []
    assert "GPE" in {span.label_ for span in doc.spans["cortex_unaligned"]}


def test_a_byte_order_mark_stays_out_of_the_entity():
    assert ner_found(["PERSON"], "\ufeffEmma Watson is here") == [("Emma Watson", "PERSON")]
