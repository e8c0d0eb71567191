"""Machine-proposed extractions: read the numbers and facts a study reports in its abstract.

``propose(title, abstract, metadata=..., schema=...)`` returns a :class:`Proposal`: proposed
fields, and in ``Proposal.abstained`` the counts withheld on purpose with the reason (an
:class:`Abstention`). The schema (outcome and condition terms, vocabularies, ``min_confidence``)
comes from the review protocol (:func:`schema_of`, :func:`load_schema`); :func:`default_schema`
is the empty one. Pure: no database; storing is
:func:`services.extraction.store.store_proposal`. How counts are read: ``segments`` (number
candidates with role features) and ``sample`` (the weighted scorer).

Exceptions::

    ExtractionError          base class
    ├── SchemaError          the protocol's [extraction] table is malformed (names the key)
    └── InputError           the passage given cannot be read (e.g. empty text file)
"""

from services.extraction.core import propose
from services.extraction.errors import ExtractionError, InputError, SchemaError
from services.extraction.proposal import (
    EXTRACTOR_VERSION,
    Abstention,
    Candidate,
    FieldProposal,
    Proposal,
)
from services.extraction.schema import (
    ExtractionSchema,
    default_schema,
    load_schema,
    schema_from_mapping,
    schema_of,
)

__all__ = [
    "EXTRACTOR_VERSION",
    "Abstention",
    "Candidate",
    "ExtractionError",
    "ExtractionSchema",
    "FieldProposal",
    "InputError",
    "Proposal",
    "SchemaError",
    "default_schema",
    "load_schema",
    "propose",
    "schema_from_mapping",
    "schema_of",
]
