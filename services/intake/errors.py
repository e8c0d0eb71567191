"""Errors of imports (see :mod:`services.intake`)."""


class IntakeError(Exception):
    """An import that cannot be done as asked; nothing was written."""


class UnknownFormatError(IntakeError):
    """The file is not in a format we read."""


class MissingColumnsError(IntakeError):
    """The file lacks the columns needed to identify records, or a mapped column."""


class UnmatchedRowsError(IntakeError):
    """Some rows match no record."""


class ForeignRecordError(IntakeError):
    """A row names a record that belongs to another review."""
