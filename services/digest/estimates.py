"""Recompute a review's pooled estimate and queue its digest in the same transaction.

This is the transactional-outbox write: :func:`recompute_and_queue` adds the estimate snapshot
(:func:`services.meta_analysis.store.record_snapshot`, which also compares it with the previous
one) and, when the changes pass the protocol's thresholds, the digest rows — all inside the
caller's transaction, so there is a digest exactly when there is a snapshot. It never commits.
The update's recompute step and the debounced recompute after confirmations both call it.

Errors: :class:`services.protocol.ProtocolError` when the stored protocol no longer validates;
:class:`services.meta_analysis.MetaAnalysisError` from the pooling.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from db.models import EstimateSnapshot, OutboxEmail, Review
from services.digest.outbox import queue_digest
from services.meta_analysis.audit import Headline
from services.meta_analysis.snapshots import Thresholds
from services.meta_analysis.store import record_snapshot
from services.protocol import Protocol


def headline_of(protocol: Protocol) -> Headline | None:
    """The published headline figure the audit checks, if the protocol gives one."""
    raw = protocol.outcome.headline
    if not raw:
        return None
    as_int = {key: int(raw[key]) for key in ("events", "total", "k") if raw.get(key) is not None}
    return Headline(percent=raw.get("percent"), **as_int)


def recompute_and_queue(
    session: Session,
    review: Review,
    *,
    trigger: str,
    search_run_id: int | None = None,
    base_url: str = "",
    mail_domain: str = "living-review.local",
    notify: bool = True,
) -> tuple[EstimateSnapshot, list[OutboxEmail]]:
    """Add a snapshot of the current estimate and, if it changed enough, its digest rows.

    ``notify=False`` (the baseline snapshot taken by ``init``) writes no digest.
    """
    protocol = Protocol.model_validate(review.protocol)
    outcome = protocol.outcome
    snapshot, changes, analysis = record_snapshot(
        session,
        review,
        outcome=outcome.name,
        options={"transform": outcome.transform, "method": outcome.method, "test": outcome.test},
        headline=headline_of(protocol),
        thresholds=Thresholds.from_mapping(protocol.digest.thresholds.model_dump()),
        trigger=trigger,
        search_run_id=search_run_id,
        events_field=outcome.events_field,
        total_field=outcome.total_field,
        hypotheses=[h.spec() for h in protocol.analysis.hypotheses],
    )
    changes_dict: dict[str, Any] = changes.to_dict()
    from services.evidence.snapshots import record_evidence  # evidence → screening → here

    evidence = record_evidence(session, review, snapshot, analysis)
    if evidence:  # the predictor/mechanism tables or the certainty changed (issue 11)
        changes_dict["reasons"] = [*changes_dict.get("reasons", []), *evidence]
        changes_dict["notify"] = True
        snapshot.changes = changes_dict
    if not notify:
        return snapshot, []
    rows = queue_digest(
        session, review, snapshot, changes_dict, base_url=base_url, mail_domain=mail_domain
    )
    return snapshot, rows
