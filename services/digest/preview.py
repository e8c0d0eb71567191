"""The next digest, composed without writing or sending anything (``digest --preview``).

If digests wait in the outbox, the next one is shown as it will be sent. Otherwise the latest
snapshot's digest is composed from its stored changes, with a note when those changes do not
pass the protocol's thresholds (then no email would go out).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EstimateSnapshot, OutboxEmail, Review
from services.digest.compose import render_text, subject
from services.digest.mailer import UNSENT
from services.digest.outbox import build_content
from services.digest.triggers import notify_reasons
from services.reviews import protocol_of


@dataclass(frozen=True)
class Preview:
    """A digest as text; ``would_send`` is False when no email would go out."""

    subject: str
    text: str
    would_send: bool
    source: str  # "outbox" or "snapshot"


def preview(session: Session, review: Review, *, base_url: str = "") -> Preview | None:
    """The next digest of ``review``; None when the review has no snapshot yet."""
    pending = session.scalars(
        select(OutboxEmail)
        .where(OutboxEmail.review_id == review.id, OutboxEmail.status.in_(UNSENT))
        .order_by(OutboxEmail.id)
        .limit(1)
    ).first()
    if pending is not None:
        return Preview(pending.subject, pending.body_text, True, "outbox")
    snapshot = session.scalars(
        select(EstimateSnapshot)
        .where(EstimateSnapshot.review_id == review.id)
        .order_by(EstimateSnapshot.id.desc())
        .limit(1)
    ).first()
    if snapshot is None:
        return None
    digest = protocol_of(review).digest
    reasons = notify_reasons(snapshot.changes or {}, digest.thresholds.model_dump())
    would_send = bool(reasons) or digest.periodic_no_change
    content = build_content(session, review, snapshot, reasons, base_url=base_url,
                            changed=bool(reasons))
    return Preview(subject(content), render_text(content), would_send, "snapshot")
