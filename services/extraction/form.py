"""Proposal fields as pre-filled values of the protocol's extraction form.

The protocol's ``[[extraction.fields]]`` of the LDH review name ``age_range`` and
``sex_male_female`` as text in the seed tables' format ("25-67", "23/32"); the other names match
the proposal's fields. :func:`prefill` turns the stored ``extraction_proposals.fields`` JSON (or
``Proposal.to_dict()["fields"]``) into ``{form field: value}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_SAME = (
    "n_total",
    "n_resorbed",
    "percent",
    "design",
    "country",
    "herniation_type",
    "predictors",
    "mechanisms",
    "predictor_findings",
)


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def age_text(value: Mapping[str, Any]) -> str:
    """ "25-67", "mean 44.5" or "25-67 (mean 44.5)"."""
    parts = []
    if "min" in value and "max" in value:
        parts.append(f"{_number(value['min'])}-{_number(value['max'])}")
    if "mean" in value:
        mean = f"mean {_number(value['mean'])}"
        parts.append(f"({mean})" if parts else mean)
    return " ".join(parts)


def follow_up_text(value: Any, unit: str | None) -> str:
    """ "12 months" or "3-24 months"."""
    if isinstance(value, list) and len(value) == 2:
        shown = f"{_number(value[0])}-{_number(value[1])}"
    else:
        shown = _number(value)
    return f"{shown} {unit}" if unit else shown


def prefill(fields: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Form field name -> pre-filled value, for the fields the proposal has (abstained fields,
    value null, are left out)."""
    fields = {k: v for k, v in fields.items() if v.get("value") is not None}
    out: dict[str, Any] = {name: fields[name]["value"] for name in _SAME if name in fields}
    if "age" in fields:
        out["age_range"] = age_text(fields["age"]["value"])
    if "sex" in fields:
        sex = fields["sex"]["value"]
        out["sex_male_female"] = f"{sex['male']}/{sex['female']}"
    if "follow_up" in fields:
        out["follow_up"] = follow_up_text(
            fields["follow_up"]["value"], fields["follow_up"].get("unit")
        )
    return out
