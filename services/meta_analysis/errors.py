"""Exceptions of the meta-analysis engine.

The tree is small on purpose::

    MetaAnalysisError            base class; catch this at an entry point
    ├── InvalidStudyData         a study row cannot be read (names the study and the field)
    ├── InvalidStudyFile         a CSV of studies cannot be used as a whole (missing column, no
    │                            rows, too large, not UTF-8); the message says what to fix
    └── UnknownOption            a transform, estimator or test name that the engine does not know

"Cannot pool" (k = 0 or 1) is not an exception: :func:`services.meta_analysis.pool` returns a
result whose ``pooled`` flag is false and whose ``notes`` say why.
"""

from __future__ import annotations


class MetaAnalysisError(Exception):
    """Base class of every error raised by :mod:`services.meta_analysis`."""


class InvalidStudyData(MetaAnalysisError, ValueError):
    """A study's value is missing, non-numeric or impossible; the message names study and field."""

    def __init__(self, study: str, field: str, problem: str) -> None:
        super().__init__(f"study {study!r}, field {field!r}: {problem}")
        self.study = study
        self.field = field
        self.problem = problem


class InvalidStudyFile(MetaAnalysisError, ValueError):
    """A CSV of studies that cannot be used as a whole; the caller adds the file name."""


class UnknownOption(MetaAnalysisError, ValueError):
    """An option value outside the documented choices."""

    def __init__(self, option: str, value: str, choices: tuple[str, ...]) -> None:
        super().__init__(f"unknown {option} {value!r}; choose one of {', '.join(choices)}")
        self.option = option
        self.value = value
