"""What the extractor returns: one :class:`FieldProposal` per supported field.

``Proposal.to_dict()`` is the stable JSON shape (``living-review extract --json`` prints it and
``extraction_proposals.fields`` stores it)::

    {"extractor_version": "rules-1",
     "fields": {"<field>": {"value": ..., "unit": str | null, "start": int | null,
                            "end": int | null, "evidence": str, "confidence": float,
                            "method": "<rule id>", "source": "abstract" | "title" | "metadata",
                            "note": str | null}}}

``start``/``end`` are character offsets into the abstract (null when the support is in the title
or the metadata); ``evidence`` is the supporting sentence (or affiliation / title).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXTRACTOR_VERSION = "rules-1"

FIELD_ORDER: tuple[str, ...] = (
    "n_total",
    "n_resorbed",
    "percent",
    "design",
    "country",
    "follow_up",
    "age",
    "sex",
    "herniation_type",
    "predictors",
    "predictor_findings",
    "mechanisms",
)


@dataclass(frozen=True)
class FieldProposal:
    """One proposed value with its support."""

    value: Any
    evidence: str
    confidence: float
    method: str
    unit: str | None = None
    start: int | None = None
    end: int | None = None
    source: str = "abstract"
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (keys documented in the module docstring)."""
        return {
            "value": self.value,
            "unit": self.unit,
            "start": self.start,
            "end": self.end,
            "evidence": self.evidence,
            "confidence": round(self.confidence, 3),
            "method": self.method,
            "source": self.source,
            "note": self.note,
        }


@dataclass
class Proposal:
    """Field name -> proposal; fields with no support are absent."""

    fields: dict[str, FieldProposal] = field(default_factory=dict)
    extractor_version: str = EXTRACTOR_VERSION

    def value(self, name: str) -> Any:
        """The proposed value of ``name`` or None."""
        found = self.fields.get(name)
        return None if found is None else found.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping in a stable field order."""
        ordered = {k: self.fields[k].to_dict() for k in FIELD_ORDER if k in self.fields}
        return {"extractor_version": self.extractor_version, "fields": ordered}
