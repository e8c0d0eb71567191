"""Bringing what a review already has into it: included studies, their data, prior decisions.

Files are read into plain rows (:mod:`services.intake.formats`), identifiers resolved through
Entrez (:mod:`services.intake.resolve`), then matched and written in one transaction
(:mod:`services.intake.store`). Every import is planned first: the plan is the dry-run report,
and a plan with a problem writes nothing.

Errors (one line each, naming the file, row or column to fix)::

    IntakeError
    ├── UnknownFormatError     the file's format is not one we read (or not the one named)
    ├── MissingColumnsError    no identifier columns (PMID, DOI or title), or a mapped column absent
    ├── UnmatchedRowsError     rows that match no record (listed), nothing written
    └── ForeignRecordError     a decision on a record of another review, nothing written
"""

from services.intake.errors import (
    ForeignRecordError,
    IntakeError,
    MissingColumnsError,
    UnknownFormatError,
    UnmatchedRowsError,
)

__all__ = [
    "ForeignRecordError",
    "IntakeError",
    "MissingColumnsError",
    "UnknownFormatError",
    "UnmatchedRowsError",
]
