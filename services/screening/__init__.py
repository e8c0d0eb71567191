"""Screening services the web app calls: queue, decisions, conflicts, agreement, extraction.

Every function takes ``*, session``, may flush and never commits. Errors: see
:mod:`services.screening.errors` (ScreeningError > NotFoundError, ConflictError,
InvalidInputError).
"""

from services.screening.agreement import PairAgreement, cohen_kappa, pair_agreements
from services.screening.conflicts import Conflict, list_conflicts, resolve_conflict
from services.screening.decisions import record_decision, undo_last
from services.screening.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ScreeningError,
)
from services.screening.extraction import confirm_extraction, form_fields
from services.screening.queue import next_record, progress
from services.screening.recompute import on_extraction_confirmed

__all__ = [
    "Conflict",
    "ConflictError",
    "InvalidInputError",
    "NotFoundError",
    "PairAgreement",
    "ScreeningError",
    "cohen_kappa",
    "confirm_extraction",
    "form_fields",
    "list_conflicts",
    "next_record",
    "on_extraction_confirmed",
    "pair_agreements",
    "progress",
    "record_decision",
    "resolve_conflict",
    "undo_last",
]
