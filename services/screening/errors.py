"""Errors of the screening services (queue, decisions, conflicts, extraction confirmation).

- :class:`ScreeningError` — base;
  - :class:`NotFoundError` — no such record/study in this review (web: 404);
  - :class:`ConflictError` — the record moved on (decided by someone else, already screened,
    not in conflict, has confirmed data): nothing was saved (web: 409);
  - :class:`InvalidInputError` — a bad value; ``errors`` maps each field to what to fix (web: 422).
"""

from __future__ import annotations


class ScreeningError(Exception):
    """Base of screening errors."""


class NotFoundError(ScreeningError):
    """The record or study asked for is not part of this review."""


class ConflictError(ScreeningError):
    """The action does not fit the record's current state; nothing was saved."""


class InvalidInputError(ScreeningError):
    """One or more fields are invalid; ``errors`` maps field name → message."""

    def __init__(self, errors: dict[str, str]) -> None:
        field, message = next(iter(errors.items()))
        super().__init__(f"{field}: {message}")
        self.errors = dict(errors)

    @property
    def field(self) -> str:
        return next(iter(self.errors))
