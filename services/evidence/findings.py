"""The ``findings`` field of the extraction form: one row per predictor a study reports.

A row is ``factor`` (the protocol's predictor vocabulary), ``direction`` (``[evidence]
directions``), optionally ``measure`` (``[evidence] effect_measures``), ``value``, ``ci_low``,
``ci_high`` and ``p``. Stored in the extraction's data as a list of dicts with exactly these
keys. :func:`convert_findings` validates a submitted list (rows that are entirely empty are
dropped) and raises ``ValueError`` naming the row and column to fix.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from services.protocol import EvidenceVocabulary

COLUMNS = ("factor", "direction", "measure", "value", "ci_low", "ci_high", "p")
NUMBERS = ("value", "ci_low", "ci_high", "p")
RATIOS = ("OR", "RR", "HR")
BLANK_ROWS = 2


def findings_options(protocol: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """The choices of the direction and measure columns, from the protocol's ``[evidence]``."""
    vocabulary = EvidenceVocabulary.model_validate(protocol.get("evidence") or {})
    return {
        "direction": tuple(vocabulary.directions),
        "measure": tuple(vocabulary.effect_measures),
    }


def findings_from_form(form: Any, name: str) -> list[dict[str, str]]:
    """Rows of a submitted HTML form: inputs ``<name>.<column>``, one value per row."""
    columns = {column: [str(v) for v in form.getlist(f"{name}.{column}")] for column in COLUMNS}
    count = max((len(values) for values in columns.values()), default=0)
    return [
        {column: (values[i] if i < len(values) else "") for column, values in columns.items()}
        for i in range(count)
    ]


def _number(text: str, where: str) -> float | None:
    if text == "":
        return None
    try:
        number = float(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(number):
        raise ValueError(f"{where}: {text!r} is not a finite number")
    return number


def _row(
    raw: Mapping[str, Any], number: int, factors: Sequence[str], options: Mapping[str, Sequence[str]]
) -> dict[str, Any] | None:
    text = {c: ("" if raw.get(c) is None else str(raw.get(c)).strip()) for c in COLUMNS}
    unknown = sorted(set(raw) - set(COLUMNS))
    if unknown:
        raise ValueError(f"row {number}: unknown column(s) {', '.join(unknown)}")
    if not any(text.values()):
        return None
    where = f"row {number}"
    if text["factor"] not in factors:
        raise ValueError(f"{where}: factor {text['factor']!r} is not in the protocol's list")
    if text["direction"] not in options["direction"]:
        raise ValueError(
            f"{where}: direction must be one of: {', '.join(options['direction'])}"
        )
    if text["measure"] and text["measure"] not in options["measure"]:
        raise ValueError(f"{where}: measure must be one of: {', '.join(options['measure'])}")
    row: dict[str, Any] = {c: text[c] or None for c in ("factor", "direction", "measure")}
    for column in NUMBERS:
        row[column] = _number(text[column], f"{where} {column}")
    _check_effect(row, where)
    return row


def _check_effect(row: Mapping[str, Any], where: str) -> None:
    value, low, high, p = row["value"], row["ci_low"], row["ci_high"], row["p"]
    if (low is None) != (high is None):
        raise ValueError(f"{where}: give both limits of the confidence interval or neither")
    if value is not None and row["measure"] is None:
        raise ValueError(f"{where}: a value needs its measure (OR, RR, …)")
    if row["measure"] in RATIOS and any(x is not None and x <= 0 for x in (value, low, high)):
        raise ValueError(f"{where}: a ratio and its limits must be positive")
    if value is not None and low is not None and high is not None and not low <= value <= high:
        raise ValueError(f"{where}: {value:g} is not inside its CI {low:g}–{high:g}")
    if p is not None and not 0 <= p <= 1:
        raise ValueError(f"{where}: p must be between 0 and 1")


def convert_findings(
    value: Any, factors: Sequence[str], options: Mapping[str, Sequence[str]]
) -> list[dict[str, Any]] | None:
    """Validated finding rows (None when there are none); ValueError naming row and column."""
    if value in (None, ""):
        return None
    if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
        raise ValueError("a list of rows (factor, direction, measure, value, ci_low, ci_high, p)")
    rows = [_row(raw, i, factors, options) for i, raw in enumerate(value, start=1)]
    kept = [r for r in rows if r is not None]
    seen: set[str] = set()
    for row in kept:
        key = f"{row['factor']}|{row['measure']}"
        if key in seen:
            raise ValueError(f"factor {row['factor']!r} is given twice with the same measure")
        seen.add(key)
    return kept or None
