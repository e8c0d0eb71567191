"""Conflicts of dual screening: records whose reviewers disagree, and their adjudication.

An adjudication is a ScreeningDecision with ``source="resolution"`` by an admin (or a third
reviewer); it settles the stage. Functions take ``*, session``, flush, never commit.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Record, Review, ReviewRecord, ScreeningDecision, User
from services.screening.decisions import (
    active_decisions,
    audit,
    changed_flag,
    lock_review_record,
    outcome,
    record_name,
    settle,
    validate_decision,
)
from services.screening.errors import ConflictError
from services.screening.rules import rules_of


@dataclass(frozen=True)
class Conflict:
    """A record waiting for adjudication with the disagreeing decisions."""

    review_record: ReviewRecord
    record: Record
    decisions: list[tuple[ScreeningDecision, str]]  # decision and the reviewer's name
    changed: bool = False  # a decision was changed after the other reviewer's


def list_conflicts(*, session: Session, review: Review, limit: int = 200) -> list[Conflict]:
    """Queued records with enough human decisions at their stage that disagree, oldest first."""
    needed = rules_of(review).reviewers_per_record
    if needed < 2:
        return []
    counted = (
        select(ScreeningDecision.review_record_id)
        .join(ReviewRecord, ReviewRecord.id == ScreeningDecision.review_record_id)
        .where(
            ReviewRecord.review_id == review.id,
            ReviewRecord.state == "queued",
            ScreeningDecision.stage == ReviewRecord.stage,
            ScreeningDecision.source == "human",
            ScreeningDecision.undone_at.is_(None),
        )
        .group_by(ScreeningDecision.review_record_id)
        .having(func.count(ScreeningDecision.id) >= needed)
    )
    ids = list(session.scalars(counted.order_by(ScreeningDecision.review_record_id).limit(limit)))
    conflicts = []
    for rr_id in ids:
        rr = session.get(ReviewRecord, rr_id)
        if rr is None:
            continue
        decisions = active_decisions(session, rr.id, rr.stage)
        changed = changed_flag(rr.stage) in (rr.flags or [])
        if outcome(decisions, needed, changed=changed) is not None:
            continue
        names = {
            u.id: u.name or u.email
            for u in session.scalars(
                select(User).where(User.id.in_([d.user_id for d in decisions if d.user_id]))
            )
        }
        conflicts.append(
            Conflict(
                rr,
                rr.record,
                [(d, names.get(d.user_id or 0, "?")) for d in decisions],
                changed,
            )
        )
    return conflicts


def resolve_conflict(
    *,
    session: Session,
    review: Review,
    user: User,
    review_record_id: int,
    decision: str,
    reason: str | None = None,
    note: str | None = None,
) -> ScreeningDecision:
    """Adjudicate a disagreement at the record's current stage and settle the record.

    Raises ConflictError when the record is not (or no longer) in conflict, InvalidInputError
    for a bad decision or reason, NotFoundError for a record outside the review.
    """
    rr = lock_review_record(session, review, review_record_id)
    reason, note = validate_decision(review, rr.stage, decision, reason, note)
    needed = rules_of(review).reviewers_per_record
    decisions = active_decisions(session, rr.id, rr.stage)
    humans = [d for d in decisions if d.source == "human"]
    changed = changed_flag(rr.stage) in (rr.flags or [])
    settled = outcome(decisions, needed, changed=changed) is not None
    if rr.state != "queued" or len(humans) < needed or settled:
        raise ConflictError(
            f"{record_name(rr)} is not in conflict (it may have been resolved)"
        )
    row = ScreeningDecision(
        review_record_id=rr.id,
        user_id=user.id,
        stage=rr.stage,
        decision=decision,
        reason=reason,
        note=note,
        source="resolution",
    )
    session.add(row)
    session.flush()
    settle(session, review, rr)
    audit(
        session,
        review,
        user,
        "resolve",
        row.id,
        decision=decision,
        stage=row.stage,
        record_id=rr.record_id,
        reason=reason,
    )
    return row
