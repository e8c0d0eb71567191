"""``propose()``: every field of the extraction schema, from title, abstract and metadata.

Pure: no database, no network. Counts are read only from a prevalence sample of the protocol's
condition: reviews, meta-analyses, case reports and small series, animal studies, trial protocols
and studies of another spinal region get none (the reason is kept as an abstention). A count
below the protocol's ``min_confidence`` is not proposed either: it is abstained with its reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from services.extraction.directions import propose_findings
from services.extraction.patterns import outcome_regex
from services.extraction.population import propose_age, propose_follow_up, propose_sex
from services.extraction.proposal import Abstention, Candidate, FieldProposal, Proposal
from services.extraction.sample import propose_counts
from services.extraction.schema import ExtractionSchema, default_schema
from services.extraction.study import design_key, propose_country, propose_design, study_scope
from services.extraction.text import normalize
from services.extraction.vocab import (
    compile_phrases,
    propose_herniation_types,
    propose_mechanisms,
    propose_predictors,
)

logger = logging.getLogger(__name__)

COUNT_FIELDS = ("n_total", "n_resorbed", "percent")


def propose(
    title: str,
    abstract: str,
    *,
    metadata: Mapping[str, Any] | None = None,
    schema: ExtractionSchema | None = None,
) -> Proposal:
    """Propose each extraction field supported by the text; unsupported fields are absent,
    withheld counts are in ``Proposal.abstained`` with the reason.

    ``start``/``end`` of each field are offsets into ``abstract``. ``metadata`` may hold
    ``affiliations`` and ``publication_types`` (PubMed). Never raises on odd text.
    """
    schema = schema or default_schema()
    metadata = metadata or {}
    title = title or ""
    abstract = abstract or ""
    nz = normalize(abstract)
    found: dict[str, FieldProposal | None] = {}
    abstained: dict[str, Abstention] = {}
    found["design"] = propose_design(title, abstract, metadata, schema.designs)
    design = design_key(found["design"].value) if found["design"] is not None else None
    condition = compile_phrases(schema.condition_terms)
    others = {name: compile_phrases(p) for name, p in schema.other_conditions.items()}
    scope = study_scope(title, abstract, design, condition, others)
    if scope is None and schema.outcome_terms:
        counts, abstained = propose_counts(nz, outcome_regex(schema.outcome_terms))
        found.update(counts)
        found["sex"] = propose_sex(nz)
    elif scope is None:  # nothing names the outcome: no counts, the sample is still described
        reason = "the protocol lists no outcome_terms to read counts by"
        abstained = {name: Abstention(reason) for name in ("n_total", "n_resorbed")}
        found["sex"] = propose_sex(nz)
    else:
        abstained = {name: Abstention(scope) for name in ("n_total", "n_resorbed")}
    found["country"] = propose_country(title, abstract, metadata)
    found["follow_up"] = propose_follow_up(nz)
    found["age"] = propose_age(nz) if design != "review" else None
    found["herniation_type"] = propose_herniation_types(title, abstract, schema.herniation_types)
    found["predictors"] = propose_predictors(abstract, schema.predictors)
    found["predictor_findings"] = propose_findings(abstract, schema.predictors, schema.directions)
    found["mechanisms"] = propose_mechanisms(title, abstract, schema.mechanisms)
    fields = {name: fp for name, fp in found.items() if fp is not None}
    _withhold_uncertain(fields, abstained, schema.min_confidence)
    logger.debug("proposed %d fields, abstained on %d", len(fields), len(abstained))
    return Proposal(fields=fields, abstained=abstained)


def _withhold_uncertain(
    fields: dict[str, FieldProposal], abstained: dict[str, Abstention], threshold: float
) -> None:
    """Move counts below the threshold from ``fields`` to ``abstained`` (with the reason)."""
    for name in COUNT_FIELDS:
        fp = fields.get(name)
        if fp is None or fp.confidence >= threshold:
            continue
        why = fp.note or fp.reason or fp.method
        abstained[name] = Abstention(
            f"confidence {fp.confidence:.2f} is below the protocol's {threshold:.2f} ({why})",
            (Candidate(fp.value, fp.reason or fp.method, fp.start, fp.end),),
            fp.confidence,
        )
        del fields[name]
