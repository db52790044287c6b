"""The catalogue registry of cortex tasks (`spacy_cortex.NER.v1`, ...), one entry per task
as spacy-llm registers its tasks; other packages add tasks through the `spacy_cortex_tasks`
entry point group. Named checkpoints are the core's (`spacy_cortex.core.checkpoints`)."""
import catalogue

tasks = catalogue.create("spacy_cortex", "tasks", entry_points=True)
