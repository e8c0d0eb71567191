"""What changed between two estimate snapshots, judged with the protocol's digest thresholds.

A snapshot here is a plain mapping (what :func:`snapshot_summary` returns and
``EstimateSnapshot`` stores): ``method``, ``transform``, ``k``, ``study_ids``, ``estimate``,
``ci_low``, ``ci_high``, ``pi_low``, ``pi_high``, ``tau2``, ``i2`` (proportions on 0–1, I² in %),
and optionally ``retracted_ids`` (studies left out because they are retracted: a new one is
always a reason to notify).
:func:`compare` returns :class:`Changes` — the input of the email digest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from services.meta_analysis.results import PoolResult, heterogeneity_class


@dataclass(frozen=True)
class Thresholds:
    """The protocol's ``[digest.thresholds]``; unknown keys are ignored by :meth:`from_mapping`."""

    estimate_shift_pp: float = 2.0
    notify_on_k_change: bool = True
    notify_on_ci_nonoverlap: bool = True
    notify_on_heterogeneity_class_change: bool = True

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Thresholds:
        """Build from a TOML table, keeping only the keys this class knows."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})


@dataclass(frozen=True)
class Changes:
    """Differences between two snapshots and whether they cross a threshold (``notify``)."""

    first: bool
    notify: bool
    reasons: tuple[str, ...] = ()
    estimate_shift_pp: float | None = None
    ci_overlap: bool | None = None
    k_before: int | None = None
    k_after: int | None = None
    studies_added: tuple[Any, ...] = ()
    studies_removed: tuple[Any, ...] = ()
    studies_retracted: tuple[Any, ...] = ()
    heterogeneity_before: str | None = None
    heterogeneity_after: str | None = None
    method_changed: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        data = asdict(self)
        for key in ("reasons", "studies_added", "studies_removed", "studies_retracted"):
            data[key] = list(data[key])
        return data


def snapshot_summary(result: PoolResult, study_ids: list[Any]) -> dict[str, Any]:
    """The mapping :func:`compare` reads, from a pooled result and the ids of its studies."""
    return {
        "method": result.method,
        "transform": result.transform,
        "test": result.test,
        "k": result.k,
        "study_ids": list(study_ids),
        "estimate": result.estimate,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "pi_low": result.pi_low,
        "pi_high": result.pi_high,
        "tau2": result.tau2,
        "i2": result.i2,
    }


def _overlap(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool | None:
    a_low, a_high, b_low, b_high = (
        a.get("ci_low"),
        a.get("ci_high"),
        b.get("ci_low"),
        b.get("ci_high"),
    )
    if a_low is None or a_high is None or b_low is None or b_high is None:
        return None
    return bool(float(a_low) <= float(b_high) and float(b_low) <= float(a_high))


def compare(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any], thresholds: Thresholds
) -> Changes:
    """Compare ``current`` with ``previous`` (None for the first snapshot, which always notifies)."""
    if previous is None:
        return Changes(
            first=True,
            notify=True,
            reasons=("first estimate",),
            k_after=current.get("k"),
            heterogeneity_after=heterogeneity_class(current.get("i2")),
        )
    before_ids, after_ids = (
        list(previous.get("study_ids") or []),
        list(current.get("study_ids") or []),
    )
    added = tuple(i for i in after_ids if i not in before_ids)
    removed = tuple(i for i in before_ids if i not in after_ids)
    shift = None
    if previous.get("estimate") is not None and current.get("estimate") is not None:
        shift = 100.0 * (current["estimate"] - previous["estimate"])
    overlap = _overlap(previous, current)
    het_before = heterogeneity_class(previous.get("i2"))
    het_after = heterogeneity_class(current.get("i2"))
    retracted = tuple(
        i for i in current.get("retracted_ids") or [] if i not in (previous.get("retracted_ids") or [])
    )
    reasons = []
    if retracted:
        reasons.append(
            f"{len(retracted)} {'study' if len(retracted) == 1 else 'studies'} retracted "
            "(left out of pooling)"
        )
    if shift is not None and abs(shift) >= thresholds.estimate_shift_pp:
        reasons.append(
            f"estimate moved {shift:+.1f} percentage points "
            f"(threshold {thresholds.estimate_shift_pp:g})"
        )
    if (previous.get("estimate") is None) != (current.get("estimate") is None):
        reasons.append(
            "pooling became "
            + ("possible" if current.get("estimate") is not None else "impossible")
        )
    if thresholds.notify_on_k_change and (
        added or removed or previous.get("k") != current.get("k")
    ):
        reasons.append(
            f"k {previous.get('k')} → {current.get('k')} (+{len(added)} / −{len(removed)} studies)"
        )
    if thresholds.notify_on_ci_nonoverlap and overlap is False:
        reasons.append("the new confidence interval does not overlap the previous one")
    if thresholds.notify_on_heterogeneity_class_change and het_before != het_after:
        reasons.append(f"heterogeneity {het_before} → {het_after}")
    method_changed = any(
        previous.get(key) != current.get(key)
        for key in ("method", "transform", "test")
        if key in previous
    )
    if method_changed:
        reasons.append("the pooling method changed")
    return Changes(
        first=False,
        notify=bool(reasons),
        reasons=tuple(reasons),
        estimate_shift_pp=shift,
        ci_overlap=overlap,
        k_before=previous.get("k"),
        k_after=current.get("k"),
        studies_added=added,
        studies_removed=removed,
        studies_retracted=retracted,
        heterogeneity_before=het_before,
        heterogeneity_after=het_after,
        method_changed=method_changed,
    )
