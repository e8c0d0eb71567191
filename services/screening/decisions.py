"""Screening decisions: record one, undo the last, and settle a record's state from its decisions.

A record's state is always derived from its active decisions (:func:`settle`), so recording and
undoing are symmetric. Writers first touch the review record's row (an UPDATE), which takes the
row lock on PostgreSQL and the write lock on SQLite: two reviewers deciding the same record at the
same moment are serialised, both decisions are kept in dual mode, and in single mode the second
gets a ConflictError. A decision ends the record's screening lease, whoever held it; a record
leased to another reviewer is still accepted when nobody decided it
(:mod:`services.screening.leases`). Functions take ``*, session``, flush, never commit.

Blind dual screening: a reviewer who undoes or changes a decision after the other reviewer
decided the same record at that stage cannot turn a disagreement into a silent agreement: the
record is flagged ``decision_changed:<stage>`` and the stage waits for an admin's adjudication
(it is listed with the conflicts), whatever the decisions say afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from db.models import (
    AuditLog,
    Record,
    Review,
    ReviewRecord,
    ScreeningDecision,
    User,
    utcnow,
)
from services.extraction.schema import schema_of
from services.extraction.store import propose_included
from services.reviews import protocol_of
from services.screening.errors import ConflictError, InvalidInputError, NotFoundError
from services.screening.leases import release_record
from services.screening.queue import HUMAN_SOURCES, check_stage
from services.screening.rules import (
    DECISIONS,
    FULL_TEXT,
    STAGES,
    TITLE_ABSTRACT,
    rules_of,
)
from services.screening.studies import drop_study, ensure_study

logger = logging.getLogger(__name__)
MAX_NOTE = 4000


def lock_review_record(session: Session, review: Review, review_record_id: int) -> ReviewRecord:
    """Take the write lock on a review record of ``review`` and return it fresh from the DB
    (one UPDATE ... RETURNING)."""
    rr = session.scalars(
        update(ReviewRecord)
        .where(ReviewRecord.id == review_record_id, ReviewRecord.review_id == review.id)
        .values(updated_at=utcnow())
        .returning(ReviewRecord)
        .execution_options(synchronize_session=False, populate_existing=True)
    ).first()
    if rr is None:
        raise NotFoundError(f"record {review_record_id} is not in review {review.slug}")
    return rr


def validate_decision(
    review: Review, stage: str, decision: str, reason: str | None, note: str | None
) -> tuple[str | None, str | None]:
    """Check a decision's fields; returns the cleaned (reason, note). Raises InvalidInputError."""
    check_stage(stage)
    rules = rules_of(review)
    if decision not in DECISIONS:
        raise InvalidInputError({"decision": f"must be one of {', '.join(DECISIONS)}"})
    if decision == "maybe" and stage == FULL_TEXT:
        raise InvalidInputError({"decision": "at full text, decide include or exclude"})
    reason = (reason or "").strip() or None
    if decision == "exclude":
        if reason is None and rules.exclusion_reasons:
            raise InvalidInputError({"reason": "an exclusion needs a reason from the protocol"})
        if rules.exclusion_reasons and reason not in rules.exclusion_reasons:
            raise InvalidInputError({"reason": f"unknown exclusion reason {reason!r}"})
    elif reason is not None:
        raise InvalidInputError({"reason": "only an exclusion takes a reason"})
    note = (note or "").strip() or None
    if note is not None and len(note) > MAX_NOTE:
        raise InvalidInputError({"note": f"at most {MAX_NOTE} characters"})
    return reason, note


def record_decision(
    *,
    session: Session,
    review: Review,
    user: User,
    review_record_id: int,
    stage: str,
    decision: str,
    reason: str | None = None,
    note: str | None = None,
) -> ScreeningDecision:
    """Record ``user``'s decision on a queued record at ``stage`` and settle the record.

    Raises InvalidInputError (bad field), NotFoundError, ConflictError (record not queued at
    that stage, already decided by this user, or — single mode — by someone else).
    """
    reason, note = validate_decision(review, stage, decision, reason, note)
    rr = lock_review_record(session, review, review_record_id)
    if rr.state != "queued" or rr.stage != stage:
        raise ConflictError(
            f"{record_name(rr)} is no longer waiting for {stage.replace('_', '/')} screening"
        )
    by_stage = active_by_stage(session, rr.id)
    active = by_stage[stage]
    if any(d.user_id == user.id and d.source == "human" for d in active):
        raise ConflictError(
            f"you already screened {record_name(rr)}: change it under My decisions"
        )
    humans = [d for d in active if d.source == "human"]
    needed = rules_of(review).reviewers_per_record
    if len(humans) >= needed or any(d.source == "resolution" for d in active):
        raise ConflictError(f"{record_name(rr)} was just screened by another reviewer")
    row = ScreeningDecision(
        review_record_id=rr.id,
        review_record=rr,
        user_id=user.id,
        stage=stage,
        decision=decision,
        reason=reason,
        note=note,
        source="human",
        score=rr.score,
    )
    session.add(row)
    session.flush()
    release_record(session, rr.id)
    by_stage[stage] = [*active, row]
    settle(session, review, rr, by_stage)
    audit(
        session,
        review,
        user,
        "decision",
        row.id,
        decision=decision,
        stage=stage,
        record_id=rr.record_id,
        reason=reason,
    )
    return row


def undo_last(*, session: Session, review: Review, user: User) -> ScreeningDecision:
    """Undo ``user``'s most recent active decision in ``review`` and settle its record.

    Raises NotFoundError when there is nothing to undo, ConflictError when the record has
    since moved on (e.g. its study has a confirmed extraction).
    """
    last = session.scalars(
        select(ScreeningDecision)
        .join(ReviewRecord, ReviewRecord.id == ScreeningDecision.review_record_id)
        .where(
            ReviewRecord.review_id == review.id,
            ScreeningDecision.user_id == user.id,
            ScreeningDecision.source.in_(HUMAN_SOURCES),
            ScreeningDecision.undone_at.is_(None),
        )
        .order_by(ScreeningDecision.id.desc())
        .limit(1)
    ).first()
    if last is None:
        raise NotFoundError("nothing to undo")
    rr = lock_review_record(session, review, last.review_record_id)
    later = session.scalar(
        select(func.count(ScreeningDecision.id)).where(
            ScreeningDecision.review_record_id == rr.id,
            ScreeningDecision.id > last.id,
            ScreeningDecision.undone_at.is_(None),
            ScreeningDecision.stage != last.stage,
        )
    )
    if later:
        raise ConflictError(f"{record_name(rr)} has been screened at a later stage since")
    after_other = _flag_if_other_decided(session, review, rr, last)
    last.undone_at = utcnow()
    session.flush()
    settle(session, review, rr)
    audit(
        session, review, user, "undo", last.id, record_id=rr.record_id, stage=last.stage,
        after_other_reviewer=after_other,
    )
    return last


def changed_flag(stage: str) -> str:
    """The review-record flag of a stage whose decision changed after the other reviewer's."""
    return f"decision_changed:{stage}"


def _flag_if_other_decided(
    session: Session, review: Review, rr: ReviewRecord, decision: ScreeningDecision
) -> bool:
    """In dual mode, flag ``rr`` when another reviewer has decided it at the same stage."""
    if rules_of(review).reviewers_per_record < 2 or decision.source != "human":
        return False
    others = [
        d for d in active_decisions(session, rr.id, decision.stage)
        if d.source == "human" and d.user_id != decision.user_id
    ]
    if not others:
        return False
    flag = changed_flag(decision.stage)
    if flag not in (rr.flags or []):
        rr.flags = [*(rr.flags or []), flag]
    return True


def change_decision(
    *,
    session: Session,
    review: Review,
    user: User,
    decision_id: int,
    decision: str,
    reason: str | None = None,
    note: str | None = None,
) -> ScreeningDecision:
    """Replace one of ``user``'s own active decisions with another; the change is logged
    (``decision.changed`` with before and after) and the record settled again.

    Raises NotFoundError (not this user's active decision in this review), InvalidInputError,
    ConflictError (the record was screened at a later stage since, or its study has data).
    """
    old = session.get(ScreeningDecision, decision_id)
    if (
        old is None
        or old.user_id != user.id
        or old.source != "human"
        or old.undone_at is not None
    ):
        raise NotFoundError(f"decision {decision_id} is not one of your current decisions")
    reason, note = validate_decision(review, old.stage, decision, reason, note)
    rr = lock_review_record(session, review, old.review_record_id)
    later = session.scalar(
        select(func.count(ScreeningDecision.id)).where(
            ScreeningDecision.review_record_id == rr.id,
            ScreeningDecision.undone_at.is_(None),
            ScreeningDecision.stage != old.stage,
            ScreeningDecision.id > old.id,
        )
    )
    if later:
        raise ConflictError(
            f"{record_name(rr)} has been screened at a later stage since: undo that first"
        )
    after_other = _flag_if_other_decided(session, review, rr, old)
    old.undone_at = utcnow()
    row = ScreeningDecision(
        review_record_id=rr.id, review_record=rr, user_id=user.id, stage=old.stage,
        decision=decision, reason=reason, note=note if note is not None else old.note,
        source="human", score=rr.score,
    )
    session.add(row)
    session.flush()
    settle(session, review, rr)
    audit(
        session, review, user, "decision.changed", row.id, record_id=rr.record_id,
        stage=old.stage, before=old.decision, before_reason=old.reason, after=decision,
        after_reason=reason, replaces=old.id, after_other_reviewer=after_other,
    )
    return row


def record_name(rr: ReviewRecord) -> str:
    """How messages name a record: its title (shortened) and PMID, never an internal id."""
    record = rr.record
    if record is None:
        return f"record {rr.id}"
    title = record.title or "untitled"
    if len(title) > 70:
        title = title[:67].rstrip() + "…"
    return f"“{title}” (PMID {record.pmid})"


def active_decisions(
    session: Session, review_record_id: int, stage: str
) -> list[ScreeningDecision]:
    """Human and adjudication decisions at ``stage`` that are not undone, oldest first."""
    return list(
        session.scalars(
            select(ScreeningDecision)
            .where(
                ScreeningDecision.review_record_id == review_record_id,
                ScreeningDecision.stage == stage,
                ScreeningDecision.source.in_(HUMAN_SOURCES),
                ScreeningDecision.undone_at.is_(None),
            )
            .order_by(ScreeningDecision.id)
        )
    )


def active_by_stage(session: Session, review_record_id: int) -> dict[str, list[ScreeningDecision]]:
    """:func:`active_decisions` of every stage (each stage a key), in one query."""
    by_stage: dict[str, list[ScreeningDecision]] = {stage: [] for stage in STAGES}
    for row in session.scalars(
        select(ScreeningDecision)
        .where(
            ScreeningDecision.review_record_id == review_record_id,
            ScreeningDecision.source.in_(HUMAN_SOURCES),
            ScreeningDecision.undone_at.is_(None),
        )
        .order_by(ScreeningDecision.id)
    ):
        by_stage.setdefault(row.stage, []).append(row)
    return by_stage


def outcome(
    decisions: Sequence[ScreeningDecision], needed: int, *, changed: bool = False
) -> ScreeningDecision | None:
    """The decision that settles a stage, or None (too few decisions, or a disagreement).

    An adjudication wins; otherwise ``needed`` human decisions that agree (include and maybe
    agree: both send the record on — the rule κ uses too). ``changed``: a decision of the stage
    was changed after the other reviewer's (see the module docstring), so only an adjudication
    settles it.
    """
    resolutions = [d for d in decisions if d.source == "resolution"]
    if resolutions:
        return resolutions[-1]
    if changed:
        return None
    humans = [d for d in decisions if d.source == "human"]
    if len(humans) < needed:
        return None
    if len({d.decision == "exclude" for d in humans}) > 1:
        return None
    return humans[0]


def settle(
    session: Session,
    review: Review,
    rr: ReviewRecord,
    decisions: Mapping[str, Sequence[ScreeningDecision]] | None = None,
) -> None:
    """Derive ``rr``'s state and stage from its active decisions; create/drop its study.

    ``decisions``: the record's :func:`active_by_stage`, when the caller has already read them
    under the record's lock; otherwise they are read here.
    """
    if rr.state not in ("queued", "included", "excluded"):
        return
    if decisions is None:
        decisions = active_by_stage(session, rr.id)
    needed = rules_of(review).reviewers_per_record
    flags = rr.flags or []
    first = outcome(
        decisions.get(TITLE_ABSTRACT, ()), needed,
        changed=changed_flag(TITLE_ABSTRACT) in flags,
    )
    second = None
    if first is not None and first.decision != "exclude":
        second = outcome(
            decisions.get(FULL_TEXT, ()), needed, changed=changed_flag(FULL_TEXT) in flags
        )
    if first is None:
        state, stage = "queued", TITLE_ABSTRACT
    elif first.decision == "exclude":
        state, stage = "excluded", TITLE_ABSTRACT
    elif second is None:
        state, stage = "queued", FULL_TEXT
    else:
        state, stage = ("excluded" if second.decision == "exclude" else "included"), FULL_TEXT
    if state == "included":
        ensure_study(session, review, rr)
    else:
        drop_study(session, rr)
    rr.state, rr.stage, rr.updated_at = state, stage, utcnow()
    session.flush()
    if state == "included":
        # the extraction form opens pre-filled: propose now, not at the next update
        schema = schema_of(protocol_of(review))
        propose_included(
            session=session, review_id=review.id, schema=schema, record_ids=[rr.record_id]
        )


def audit(
    session: Session,
    review: Review,
    user: User | None,
    action: str,
    entity_id: int | None,
    **detail: object,
) -> None:
    """Append one line to the audit log."""
    session.add(
        AuditLog(
            review_id=review.id,
            user_id=user.id if user else None,
            action=action,
            entity="screening_decision" if action in ("decision", "undo", "resolve") else action,
            entity_id=entity_id,
            detail=detail,
        )
    )


def my_decisions(
    *,
    session: Session,
    review: Review,
    user: User,
    decision: str | None = None,
    stage: str | None = None,
    search: str | None = None,
    limit: int = 200,
) -> list[ScreeningDecision]:
    """``user``'s current (not undone) decisions in ``review``, newest first, filtered by
    decision, stage and a search over title and PMID."""
    query = (
        select(ScreeningDecision)
        .join(ReviewRecord, ReviewRecord.id == ScreeningDecision.review_record_id)
        .join(Record, Record.id == ReviewRecord.record_id)
        .where(
            ReviewRecord.review_id == review.id,
            ScreeningDecision.user_id == user.id,
            ScreeningDecision.source == "human",
            ScreeningDecision.undone_at.is_(None),
        )
        .order_by(ScreeningDecision.id.desc())
        .limit(limit)
    )
    if decision in DECISIONS:
        query = query.where(ScreeningDecision.decision == decision)
    if stage in STAGES:
        query = query.where(ScreeningDecision.stage == stage)
    text = (search or "").strip()
    if text.isdigit():
        query = query.where(Record.pmid == int(text))
    elif text:
        query = query.where(Record.title.ilike(f"%{_like_escape(text)}%", escape="\\"))
    return list(session.scalars(query))


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
