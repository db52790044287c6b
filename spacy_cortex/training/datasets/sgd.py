"""Converters of the Schema-Guided Dialogue set (SGD): intents as label prompts and slots as
extraction prompts, worded by their names as words or by the schemas' (and SGD-X's)
natural-language descriptions. Shares the naming, capping and grouping of typing_sets.py.
Only the train schemas and dialogues are read; the dev and test schemas are EVAL.
"""
import random
from collections import defaultdict
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

from ...corpus.readers import read_json
from ...corpus.registry import read_train, train_files
from ..records import NEG, POS, STATS, converters, fill, record
from .typing_sets import capped, checked_span, choice_group, phrase, settings, words
def sgd_labels(raw_dir: Path) -> Tuple[Dict[Tuple[str, str], dict], Dict[Tuple[str, str], dict]]:
    """({(service, intent): entry}, {(service, slot): entry}) of the TRAIN schema; an entry has
    the label's names as words and its descriptions, SGD's and the SGD-X paraphrases' (same
    list order as the train schema), and for a slot whether it is categorical (no spans)."""
    schemas = [read_train(raw_dir, "sgd_schema_guided", "schema_train")]
    schemas += [read_json(path) for path in train_files(raw_dir, "sgd_schema_guided", "sgd_x_train")]
    labels: Tuple[dict, dict] = ({}, {})
    for services in zip(*schemas):
        for kind, out in zip(("intents", "slots"), labels):
            for entries in zip(*(s[kind] for s in services)):
                out[(services[0]["service_name"], entries[0]["name"])] = {
                    "names": list(dict.fromkeys(words(e["name"]) for e in entries)),
                    "descriptions": list(dict.fromkeys(e["description"].strip() for e in entries)),
                    "categorical": entries[0].get("is_categorical", False)}
    return labels


def sgd_prompt(kind: str, entry: dict, rng: random.Random, conf: dict) -> str:
    """A name prompt or, at description_rate, a description prompt of an intent or slot."""
    if rng.random() < conf["description_rate"]:
        description = rng.choice(entry["descriptions"])
        return fill(rng, conf[f"{kind}_description"], description=description, phrase=phrase(description))
    return fill(rng, conf[kind], label=rng.choice(entry["names"]))


def intent_units(turn: dict, intents: Dict[Tuple[str, str], dict], rng: random.Random,
                 conf: dict) -> Iterator[List[dict]]:
    """For each intent the user states (INFORM_INTENT): a group of it and intent_negatives
    wrong intents, one of the same service when it has another, the others of services of
    other domains (Restaurants_1 and _2 share one: their intents may be the same)."""
    gold = [(f["service"], f["active_intent"]) for f in turn["frames"]
            if any(a["act"] == "INFORM_INTENT" for a in f["actions"]) and (f["service"], f["active_intent"]) in intents]
    domains = {f["service"].split("_")[0] for f in turn["frames"]}  # Restaurants_1 -> Restaurants
    for service, intent in gold:
        same = sorted(k for k in intents if k[0] == service and k not in gold)
        other = sorted(k for k in intents if k[0].split("_")[0] not in domains)
        wrong = rng.sample(same, 1) if same else []
        wrong += rng.sample(other, min(len(other), conf["intent_negatives"] - len(wrong)))
        if not wrong:
            STATS["sgd_intents: no wrong intent found"] += 1
            continue
        prompts = [(sgd_prompt("intent", intents[k], rng, conf), cls)
                   for k, cls in [((service, intent), POS)] + [(k, NEG) for k in wrong]]
        key = f"{turn['dialogue_id']}:{turn['turn_idx']}:{intent}"
        yield choice_group("sgd_intents", turn["utterance"], key, prompts)


def slot_unit(utterance: str, frame: dict, slots: Dict[Tuple[str, str], dict], rng: random.Random,
              conf: dict) -> List[dict]:
    """A frame's slots with spans (each checked against its value) + as many of its service's
    other non-categorical slots (empty spans); a frame without spans gives one such negative at
    empty_frame_rate."""
    spans: Dict[str, set] = defaultdict(set)
    for s in frame["slots"]:
        spans[s["slot"]].add(tuple(checked_span(utterance, s["start"], s["exclusive_end"], s["value"])))
    own = [k for k in sorted(slots) if k[0] == frame["service"] and not slots[k]["categorical"]]
    present = [k for k in own if k[1] in spans]
    absent = [k for k in own if k[1] not in spans]
    if set(spans) - {k[1] for k in present}:
        STATS["sgd_slots: span of a slot not in the schema's non-categorical slots"] += 1
    n_neg = min(len(present), len(absent))
    if not present and absent and rng.random() < conf["empty_frame_rate"]:
        n_neg = 1
    return [record("sgd_slots", sgd_prompt("slot", slots[k], rng, conf), utterance,
                   spans=[list(span) for span in sorted(spans.get(k[1], ()))])
            for k in present + rng.sample(absent, n_neg)]


def sgd_turns(raw_dir: Path) -> List[dict]:
    """The sampled train user turns (dev / test dialogues are not in the snapshot)."""
    return [t for t in read_train(raw_dir, "sgd_schema_guided", "train_turns") if t["utterance"].strip()]


@converters.register("sgd_intents")
def convert_sgd_intents(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """Intent classification of the user turns that state an intent."""
    conf = settings()["sgd"]
    intents, _ = sgd_labels(raw_dir)
    yield from capped("sgd_intents", [u for t in sgd_turns(raw_dir) for u in intent_units(t, intents, rng, conf)], rng)


@converters.register("sgd_slots")
def convert_sgd_slots(raw_dir: Path, templates: dict, rng: random.Random) -> Iterator[dict]:
    """Slot extraction on the user utterance (the spans' offsets are the utterance's)."""
    conf = settings()["sgd"]
    _, slots = sgd_labels(raw_dir)
    units = [slot_unit(t["utterance"], f, slots, rng, conf) for t in sgd_turns(raw_dir) for f in t["frames"]]
    yield from capped("sgd_slots", [u for u in units if u], rng)
