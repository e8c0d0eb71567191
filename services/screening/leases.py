"""Screening leases: in single screening, a record served to one reviewer is skipped by the others.

With one reviewer per record, two reviewers asking for their next record at the same moment
would be served the same one, and the second decision would be refused (409). Instead, serving
a record leases it to the reviewer for a short time (``SCREENING_LEASE_SECONDS``); the other
reviewers' next record skips records leased to someone else. A lease ends when a decision is
recorded on the record (by anyone), when it expires, or when its holder asks for their next
record again (a reviewer holds at most one lease per review and stage).

A lease only orders the work: a decision on a record leased to someone else is still accepted
when nobody has decided the record (no work is lost); the second decision of a record is
refused as before. Leases live in the database (``screening_leases``, one row per record), so
several web processes agree: a claim is one ``INSERT … ON CONFLICT DO UPDATE … WHERE`` the
lease has expired or is already the claimer's, which PostgreSQL serialises on the row and SQLite
on its write lock; a claim that finds the record taken returns nothing and the caller tries the
next candidate.

Functions take ``*, session`` (or a session first), flush nothing themselves and never commit.
No errors of their own.
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import ColumnElement, and_, delete, exists
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from db.models import ReviewRecord, ScreeningLease

logger = logging.getLogger(__name__)


def held_by_others(
    user_id: int | ColumnElement[int], now: dt.datetime | ColumnElement[dt.datetime]
) -> ColumnElement[bool]:
    """Condition on ReviewRecord: a lease of another user that has not expired holds it."""
    return exists().where(
        and_(
            ScreeningLease.review_record_id == ReviewRecord.id,
            ScreeningLease.user_id != user_id,
            ScreeningLease.expires_at > now,
        )
    )


def release_mine(session: Session, *, review_id: int, user_id: int, stage: str) -> None:
    """End ``user_id``'s leases in the review at ``stage`` (they ask for their next record)."""
    session.execute(
        delete(ScreeningLease).where(
            ScreeningLease.review_id == review_id,
            ScreeningLease.user_id == user_id,
            ScreeningLease.stage == stage,
        )
    )


def release_record(session: Session, review_record_id: int) -> None:
    """End the lease on a record, whoever holds it (a decision was recorded on it)."""
    session.execute(
        delete(ScreeningLease).where(ScreeningLease.review_record_id == review_record_id)
    )


def claim(
    session: Session,
    *,
    review_id: int,
    review_record_id: int,
    user_id: int,
    stage: str,
    now: dt.datetime,
    seconds: float,
) -> bool:
    """Lease a record to ``user_id`` until ``now + seconds``; False when someone else holds an
    unexpired lease on it (then nothing changed)."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    values = {
        "review_record_id": review_record_id,
        "review_id": review_id,
        "user_id": user_id,
        "stage": stage,
        "leased_at": now,
        "expires_at": now + dt.timedelta(seconds=seconds),
    }
    statement = insert(ScreeningLease).values(**values)
    current = statement.excluded
    upsert = statement.on_conflict_do_update(
        index_elements=[ScreeningLease.review_record_id],
        set_={
            "user_id": current.user_id,
            "review_id": current.review_id,
            "stage": current.stage,
            "leased_at": current.leased_at,
            "expires_at": current.expires_at,
        },
        where=(ScreeningLease.expires_at <= now) | (ScreeningLease.user_id == user_id),
    ).returning(ScreeningLease.user_id)
    return session.execute(upsert).first() is not None
