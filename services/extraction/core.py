"""``propose()``: every field of the extraction schema, from title, abstract and metadata.

Pure: no database, no network. Counts are not proposed for reviews and case reports (their
numbers are not a study sample).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from services.extraction.directions import propose_findings
from services.extraction.patterns import outcome_regex
from services.extraction.population import propose_age, propose_follow_up, propose_sex
from services.extraction.proposal import FieldProposal, Proposal
from services.extraction.sample import propose_counts
from services.extraction.schema import ExtractionSchema, default_schema
from services.extraction.study import propose_country, propose_design
from services.extraction.text import normalize
from services.extraction.vocab import (
    propose_herniation_types,
    propose_mechanisms,
    propose_predictors,
)

logger = logging.getLogger(__name__)

_NO_SAMPLE_DESIGNS = frozenset({"review", "case report"})


def propose(
    title: str,
    abstract: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    schema: ExtractionSchema | None = None,
) -> Proposal:
    """Propose each extraction field supported by the text; unsupported fields are absent.

    ``start``/``end`` of each field are offsets into ``abstract``. ``metadata`` may hold
    ``affiliations`` and ``publication_types`` (PubMed). Never raises on odd text.
    """
    schema = schema or default_schema()
    metadata = metadata or {}
    title = title or ""
    abstract = abstract or ""
    nz = normalize(abstract)
    found: dict[str, FieldProposal | None] = {}
    found["design"] = propose_design(title, abstract, metadata, schema.designs)
    design = found["design"].value if found["design"] is not None else None
    if design not in _NO_SAMPLE_DESIGNS:
        found.update(propose_counts(nz, outcome_regex(schema.outcome_terms)))
        found["sex"] = propose_sex(nz)
    found["country"] = propose_country(title, abstract, metadata)
    found["follow_up"] = propose_follow_up(nz)
    found["age"] = propose_age(nz) if design != "review" else None
    found["herniation_type"] = propose_herniation_types(title, abstract, schema.herniation_types)
    found["predictors"] = propose_predictors(abstract, schema.predictors)
    found["predictor_findings"] = propose_findings(abstract, schema.predictors)
    found["mechanisms"] = propose_mechanisms(title, abstract, schema.mechanisms)
    fields = {name: fp for name, fp in found.items() if fp is not None}
    logger.debug("proposed %d fields", len(fields))
    return Proposal(fields=fields)
