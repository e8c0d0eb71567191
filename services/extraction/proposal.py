"""What the extractor returns: one :class:`FieldProposal` per supported field.

``Proposal.to_dict()`` is the stable JSON shape (``living-review extract --json`` prints it and
``extraction_proposals.fields`` stores it)::

    {"extractor_version": "candidates-2",
     "fields": {"<field>": {"value": ..., "unit": str | null, "start": int | null,
                            "end": int | null, "evidence": str, "confidence": float,
                            "method": "<rule id>", "source": "abstract" | "title" | "metadata",
                            "note": str | null, "reason": str | null},
                "<abstained field>": {"value": null, "abstained": true, "reason": str,
                                      "candidates": [{"value", "label", "start", "end"}], …}}}

``start``/``end`` are character offsets into the abstract (null when the support is in the title
or the metadata); ``evidence`` is the supporting sentence (or affiliation / title); ``reason``
says why this candidate won. A field the extractor read candidates for but would not propose
(too uncertain, or not a prevalence study) is *abstained*: value null, the reason, and the
candidates it weighed, so the form can show an empty field with the reason.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

EXTRACTOR_VERSION = "candidates-2"

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
    reason: str | None = None

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
            "reason": self.reason,
        }


@dataclass(frozen=True)
class Candidate:
    """A value the scorer weighed for a field, with where it stands (original offsets)."""

    value: Any
    label: str
    start: int | None = None
    end: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping."""
        return {"value": self.value, "label": self.label, "start": self.start, "end": self.end}


@dataclass(frozen=True)
class Abstention:
    """A field left empty on purpose, with the reason and the candidates weighed."""

    reason: str
    candidates: tuple[Candidate, ...] = ()
    confidence: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping (the shape of an abstained field in the module docstring)."""
        return {
            "value": None,
            "abstained": True,
            "reason": self.reason,
            "candidates": [c.to_dict() for c in self.candidates],
            "confidence": round(self.confidence, 3),
            "unit": None,
            "start": None,
            "end": None,
            "evidence": "",
            "method": "abstain",
            "source": "abstract",
            "note": None,
        }


@dataclass
class Proposal:
    """Field name -> proposal; fields with no support are absent; ``abstained`` holds the fields
    left empty on purpose (never also in ``fields``)."""

    fields: dict[str, FieldProposal] = field(default_factory=dict)
    extractor_version: str = EXTRACTOR_VERSION
    abstained: dict[str, Abstention] = field(default_factory=dict)

    def value(self, name: str) -> Any:
        """The proposed value of ``name`` or None."""
        found = self.fields.get(name)
        return None if found is None else found.value

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready mapping in a stable field order."""
        ordered: dict[str, Any] = {}
        for name in FIELD_ORDER:
            if name in self.fields:
                ordered[name] = self.fields[name].to_dict()
            elif name in self.abstained:
                ordered[name] = self.abstained[name].to_dict()
        return {"extractor_version": self.extractor_version, "fields": ordered}
