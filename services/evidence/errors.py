"""Errors of the evidence services: bad input names the field; not found; conflict."""

from __future__ import annotations


class EvidenceError(Exception):
    """Base class of the evidence services' errors."""


class EvidenceInputError(EvidenceError):
    """A submitted value is not acceptable; ``errors`` maps each field to what to fix."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{key}: {why}" for key, why in self.errors.items()))


class EvidenceNotFound(EvidenceError):
    """The study, outcome or rating asked for does not exist in this review."""


class EvidenceConflict(EvidenceError):
    """The request contradicts the current state (e.g. resolving a study with no conflict)."""
