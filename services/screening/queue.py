"""The screening queue: which record a reviewer sees next, and how far the review has come.

A record is pending for a user at a stage when it is queued at that stage, the user has no
active (not undone) decision on it there, fewer reviewers than the protocol asks for have
decided it, and no adjudication settled it. Order: classifier priority (highest first), then id.

In single screening (one reviewer per record) :func:`next_record` given ``lease_seconds``
skips records leased to another reviewer and leases the one it serves
(:mod:`services.screening.leases`); that writes, so the caller commits. Dual screening serves
every reviewer the same records, unleased.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
    DateTime,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    select,
)
from sqlalchemy.orm import Session, aliased, joinedload

from db.models import Review, ReviewRecord, ScreeningDecision, ScreeningLease, User, utcnow
from services.screening.active import relevant_left
from services.screening.errors import InvalidInputError
from services.screening.leases import claim, held_by_others, release_mine
from services.screening.rules import STAGES, TITLE_ABSTRACT, rules_of

logger = logging.getLogger(__name__)
HUMAN_SOURCES = ("human", "resolution")
LEASE_CANDIDATES = 8  # records read per claim attempt (others may take some meanwhile)
LEASE_ROUNDS = 3


@dataclass(frozen=True)
class Progress:
    """Where a user and the review stand at one stage."""

    stage: str
    done_by_user: int
    left_for_user: int
    queued: int
    decided: int
    estimated_recall: float | None
    expected_relevant_left: float | None
    relevant_left_low: float | None = None
    relevant_left_high: float | None = None
    held_by_others: int = 0  # pending records leased to other reviewers (single screening)


def active_decision(stage: str | ColumnElement[str]) -> ColumnElement[bool]:
    """Condition on ScreeningDecision: human or adjudication, at ``stage``, not undone."""
    return and_(
        ScreeningDecision.stage == stage,
        ScreeningDecision.source.in_(HUMAN_SOURCES),
        ScreeningDecision.undone_at.is_(None),
    )


def pending_condition(
    user_id: int | ColumnElement[int],
    stage: str | ColumnElement[str],
    reviewers_per_record: int | ColumnElement[int],
) -> ColumnElement[bool]:
    """SQL condition on ReviewRecord: pending for ``user_id`` at ``stage`` (values or bound
    parameters)."""
    mine = aliased(ScreeningDecision)
    others = aliased(ScreeningDecision)
    count_decided = (
        select(func.count(others.id))
        .where(
            others.review_record_id == ReviewRecord.id,
            others.stage == stage,
            others.source == "human",
            others.undone_at.is_(None),
        )
        .scalar_subquery()
    )
    settled = exists().where(
        others.review_record_id == ReviewRecord.id,
        others.stage == stage,
        others.source == "resolution",
        others.undone_at.is_(None),
    )
    mine_exists = exists().where(
        mine.review_record_id == ReviewRecord.id,
        mine.stage == stage,
        mine.user_id == user_id,
        mine.undone_at.is_(None),
    )
    return and_(
        ReviewRecord.state == "queued",
        ReviewRecord.stage == stage,
        ~mine_exists,
        ~settled,
        count_decided < reviewers_per_record,
    )


def check_stage(stage: str) -> str:
    """``stage`` if known; InvalidInputError otherwise."""
    if stage not in STAGES:
        raise InvalidInputError({"stage": f"must be one of {', '.join(STAGES)}, not {stage!r}"})
    return stage


def next_record(
    *,
    session: Session,
    review: Review,
    user: User,
    stage: str = TITLE_ABSTRACT,
    skip: int = 0,
    lease_seconds: float | None = None,
) -> ReviewRecord | None:
    """The next record ``user`` should screen at ``stage`` (its Record loaded), or None.

    ``lease_seconds`` (single screening only): end the user's own lease, skip records leased to
    other reviewers and lease the record served for that long; the caller commits. None when
    every pending record is leased to someone else.
    """
    check_stage(stage)
    params = {
        "review_id": review.id,
        "user_id": user.id,
        "stage": stage,
        "needed": rules_of(review).reviewers_per_record,
        "skip": max(0, skip),
    }
    if lease_seconds is None or params["needed"] != 1:
        return session.scalars(_next_record_query(), params).first()
    now = utcnow()
    release_mine(session, review_id=review.id, user_id=user.id, stage=stage)
    for _ in range(LEASE_ROUNDS):
        candidates: list[ReviewRecord] = list(
            session.scalars(
                _next_record_query(leased=True),
                {**params, "now": now, "limit": LEASE_CANDIDATES},
            )
        )
        if not candidates:
            return None
        for rr in candidates:
            if claim(
                session,
                review_id=review.id,
                review_record_id=rr.id,
                user_id=user.id,
                stage=stage,
                now=now,
                seconds=lease_seconds,
            ):
                return rr
    logger.info("review %s: no record could be leased to user %s; serving one unleased",
                review.slug, user.id)
    return session.scalars(_next_record_query(), params).first()


@functools.cache
def _next_record_query(leased: bool = False) -> Select:  # type: ignore[type-arg]
    """The next-record query, built once (building it costs more than running it); the review,
    user, stage, reviewers needed and offset are bound parameters. ``leased``: also skip the
    records another user's lease holds at ``now``, and read up to ``limit`` candidates."""
    stage = bindparam("stage", type_=String)
    user_id = bindparam("user_id", type_=Integer)
    conditions = [
        ReviewRecord.review_id == bindparam("review_id", type_=Integer),
        pending_condition(user_id, stage, bindparam("needed", type_=Integer)),
    ]
    if leased:
        conditions.append(~held_by_others(user_id, bindparam("now", type_=DateTime(timezone=True))))
    return (
        select(ReviewRecord)
        .options(joinedload(ReviewRecord.record))
        .where(*conditions)
        .order_by(ReviewRecord.priority.desc(), ReviewRecord.id)
        .offset(bindparam("skip", type_=Integer))
        .limit(bindparam("limit", type_=Integer) if leased else 1)
    )


def held_count(session: Session, review: Review, user: User, stage: str) -> int:
    """Pending records at ``stage`` leased to other reviewers now."""
    return (
        session.scalar(
            select(func.count(ScreeningLease.review_record_id)).where(
                ScreeningLease.review_id == review.id,
                ScreeningLease.stage == stage,
                ScreeningLease.user_id != user.id,
                ScreeningLease.expires_at > utcnow(),
            )
        )
        or 0
    )


def progress(*, session: Session, review: Review, user: User, stage: str) -> Progress:
    """Counts for the progress bar, and the estimated recall when every queued record has a score.

    Estimated recall = relevant found / (found + sum of classifier scores of what is left),
    treating scores as probabilities of relevance.
    """
    check_stage(stage)
    rules = rules_of(review)
    in_review = ReviewRecord.review_id == review.id
    done = (
        session.scalar(
            select(func.count(ScreeningDecision.id))
            .join(ReviewRecord, ReviewRecord.id == ScreeningDecision.review_record_id)
            .where(in_review, ScreeningDecision.user_id == user.id, active_decision(stage))
        )
        or 0
    )
    queued_n, scored_n, score_sum, square_sum = session.execute(
        select(
            func.count(ReviewRecord.id),
            func.count(ReviewRecord.score),
            func.sum(ReviewRecord.score),
            func.sum(ReviewRecord.score * ReviewRecord.score),
        ).where(in_review, ReviewRecord.state == "queued", ReviewRecord.stage == stage)
    ).one()
    left = queued_n - _blocked_for(session, review, user, stage, rules.reviewers_per_record)
    decided = (
        session.scalar(
            select(func.count(ReviewRecord.id)).where(
                in_review, ReviewRecord.state.in_(("included", "excluded"))
            )
        )
        or 0
    )
    found = _relevant_found(session, review, stage)
    recall = expected = low = high = None
    if queued_n and scored_n == queued_n:
        expected, low, high = relevant_left(
            float(score_sum or 0.0), float(square_sum or 0.0), queued_n
        )
        recall = found / (found + expected) if (found + expected) > 0 else None
    held = held_count(session, review, user, stage) if rules.reviewers_per_record == 1 else 0
    return Progress(stage, done, left, queued_n, decided, recall, expected, low, high, held)


def _blocked_for(session: Session, review: Review, user: User, stage: str, needed: int) -> int:
    """Queued records at ``stage`` that ``user`` cannot take: decided by them, by enough
    reviewers, or adjudicated. Driven by the (few) decisions, not by the whole queue."""
    human = case((ScreeningDecision.source == "human", 1), else_=0)
    mine = case((ScreeningDecision.user_id == user.id, 1), else_=0)
    resolved = case((ScreeningDecision.source == "resolution", 1), else_=0)
    rows = session.execute(
        select(func.sum(human), func.sum(mine), func.sum(resolved))
        .join(ReviewRecord, ReviewRecord.id == ScreeningDecision.review_record_id)
        .where(
            ReviewRecord.review_id == review.id,
            ReviewRecord.state == "queued",
            ReviewRecord.stage == stage,
            active_decision(stage),
        )
        .group_by(ScreeningDecision.review_record_id)
    ).all()
    return sum(
        1
        for n_human, n_mine, n_resolved in rows
        if n_mine or n_resolved or (n_human or 0) >= needed
    )


def _relevant_found(session: Session, review: Review, stage: str) -> int:
    """Records that passed ``stage`` (or were included)."""
    condition = ReviewRecord.state == "included"
    if stage == TITLE_ABSTRACT:
        # "a later stage" as a list of stages, so the queue index serves each branch
        later = [s for s in STAGES if s != TITLE_ABSTRACT]
        condition = condition | and_(
            ReviewRecord.state.in_(("queued", "excluded")), ReviewRecord.stage.in_(later)
        )
    return (
        session.scalar(
            select(func.count(ReviewRecord.id)).where(
                ReviewRecord.review_id == review.id, condition
            )
        )
        or 0
    )
