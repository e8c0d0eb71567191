"""When does an update deserve an email: reading the "what changed" dict of a recompute.

The meta-analysis helper's ``compare()`` applies the protocol's thresholds and lists the reasons
(estimate moved, CI no longer overlaps, k changed, heterogeneity class changed, a study retracted
or corrected). This module turns that dict into the human sentences the digest starts with; an
empty list means "no change, no email".
"""

from __future__ import annotations

from typing import Any


def notify_reasons(changes: dict[str, Any], thresholds: dict[str, Any]) -> list[str]:
    """The reasons to notify, as sentences; empty when nothing passed the thresholds."""
    del thresholds  # compare() applied them already; kept for a protocol-level override later
    if changes.get("notify") is False:
        return []
    reasons = changes.get("reasons")
    if isinstance(reasons, list):
        return [text for text in (_reason_text(r) for r in reasons) if text]
    if changes.get("changed") or changes.get("notify"):
        return [str(changes.get("summary") or "The pooled estimate changed.")]
    return []


def _reason_text(reason: Any) -> str:
    if isinstance(reason, str):
        return reason
    if isinstance(reason, dict):
        for key in ("message", "text", "summary", "kind", "code"):
            if reason.get(key):
                return str(reason[key])
    return ""
