"""Errors of the extraction service.

ExtractionError          base class
├── SchemaError          the protocol's [extraction] table is malformed (names the key)
└── InputError           the passage given cannot be read (e.g. empty text file)
"""


class ExtractionError(Exception):
    """Base class of extraction errors."""


class SchemaError(ExtractionError):
    """The extraction schema (protocol ``[extraction]``) is malformed."""


class InputError(ExtractionError):
    """The input passage cannot be used."""
