"""Helpers shared by the count scorer and the population rules: a rounding-aware share check and
the :class:`FieldProposal` built from normalised offsets."""

from __future__ import annotations

from services.extraction.proposal import FieldProposal
from services.extraction.text import Normalized


def consistent(k: int, n: int, p: float, digits: int) -> bool:
    """Whether ``p`` (stated with ``digits`` decimals) is k/n as a percentage, rounding allowed."""
    if n <= 0:
        return False
    tolerance = 0.5 * 10.0 ** (-digits) + 1e-9
    return abs(100.0 * k / n - p) <= max(tolerance, 0.051 if digits else 0.5)


def field(
    nz: Normalized,
    start: int,
    end: int,
    sent: tuple[int, int],
    value: object,
    confidence: float,
    method: str,
    note: str | None = None,
    unit: str | None = None,
    reason: str | None = None,
) -> FieldProposal:
    """A proposal with evidence and offsets mapped back to the original abstract."""
    o0, o1 = nz.span(start, end)
    s0, s1 = nz.span(*sent)
    return FieldProposal(
        value=value,
        evidence=nz.original[s0:s1],
        confidence=confidence,
        method=method,
        start=o0,
        end=o1,
        note=note,
        unit=unit,
        reason=reason,
    )
