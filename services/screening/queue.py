"""The screening queue: which record a reviewer sees next, and how far the review has come.

A record is pending for a user at a stage when it is queued at that stage, the user has no
active (not undone) decision on it there, fewer reviewers than the protocol asks for have
decided it, and no adjudication settled it. Order: classifier priority (highest first), then id.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import (
    ColumnElement,
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

from db.models import Review, ReviewRecord, ScreeningDecision, User
from services.screening.active import relevant_left
from services.screening.errors import InvalidInputError
from services.screening.rules import STAGES, TITLE_ABSTRACT, rules_of

HUMAN_SOURCES = ("human", "resolution")


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
) -> ReviewRecord | None:
    """The next record ``user`` should screen at ``stage`` (its Record loaded), or None."""
    check_stage(stage)
    params = {
        "review_id": review.id,
        "user_id": user.id,
        "stage": stage,
        "needed": rules_of(review).reviewers_per_record,
        "skip": max(0, skip),
    }
    return session.scalars(_next_record_query(), params).first()


@functools.cache
def _next_record_query() -> Select:  # type: ignore[type-arg]
    """The next-record query, built once (building it costs more than running it); the review,
    user, stage, reviewers needed and offset are bound parameters."""
    stage = bindparam("stage", type_=String)
    return (
        select(ReviewRecord)
        .options(joinedload(ReviewRecord.record))
        .where(
            ReviewRecord.review_id == bindparam("review_id", type_=Integer),
            pending_condition(
                bindparam("user_id", type_=Integer), stage, bindparam("needed", type_=Integer)
            ),
        )
        .order_by(ReviewRecord.priority.desc(), ReviewRecord.id)
        .offset(bindparam("skip", type_=Integer))
        .limit(1)
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
    return Progress(stage, done, left, queued_n, decided, recall, expected, low, high)


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
