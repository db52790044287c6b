"""Converters of the newer training sets, registered in convert.converters"""
from . import ner  # noqa: F401
from . import tasks  # noqa: F401
