"""The converters of the raw training sets, one module per kind of task; importing this
package registers them all in records.converters."""
from . import cappy, labels, labelsets, ner, pairs, promptsource, qa, relations, sgd, tasks, typing_sets  # noqa: F401
