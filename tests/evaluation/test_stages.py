"""spacy_cortex.evaluation.stages: exclusive time per stage of a cortex pipeline."""
import time

from spacy_cortex.evaluation.stages import STAGES, StageTimer, stage_timer
from spacy_cortex.core.model import CortexModel

TEXTS = [f"Patient {i} was given 20 mg of atorvastatin in Boston." for i in range(12)]


def test_every_stage_of_an_ner_pipeline_is_timed_and_restored(make_nlp, varied_checkpoint):
    nlp = make_nlp(varied_checkpoint, textcat=False, qa=False)
    list(nlp.pipe(TEXTS[:2]))  # load outside the timed block
    original_run = CortexModel.run
    with stage_timer() as timer:
        start = time.perf_counter()
        docs = list(nlp.pipe(TEXTS, batch_size=4))
        wall = time.perf_counter() - start
    assert CortexModel.run is original_run  # patches undone
    assert len(docs) == len(TEXTS)
    assert all(seconds > 0 for seconds in timer.seconds.values()), timer.seconds
    assert sum(timer.seconds.values()) <= wall  # exclusive: nested calls are not counted twice
    split = timer.split(wall)
    assert set(split) == set(STAGES) | {"other"} and abs(sum(split.values()) - 100) < 1e-6


def test_nested_calls_are_charged_once():
    timer = StageTimer()
    inner = timer.wrap("encoder passes", lambda: time.sleep(0.02))

    def outer_body():
        inner()
        time.sleep(0.01)

    def steps():
        yield inner()
        yield time.sleep(0.01)

    timer.wrap("probabilities to results", outer_body)()
    for _ in timer.wrap("windows and batches", steps)():
        time.sleep(0.01)  # the consumer's time between steps is not the generator's
    assert 0.04 <= timer.seconds["encoder passes"] < 0.06
    assert 0.01 <= timer.seconds["probabilities to results"] < 0.02
    assert 0.01 <= timer.seconds["windows and batches"] < 0.02
