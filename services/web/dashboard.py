"""What the dashboard shows, in words: audit findings, the studies that moved each estimate, the
state of each update run and one page of the audit log.

Everything here reads; nothing writes. Lines derived from a snapshot are cached per snapshot by
the caller (a snapshot never changes once written).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import AuditLog, EstimateSnapshot, SearchRun, Study, User

AUDIT_LOG_PAGE = 25
LEFT_OUT = "; left out of pooling"
CODE_WORDS = {
    "retracted": "Retracted study",
    "missing_count": "Count missing",
    "negative_count": "Negative count",
    "zero_total": "Total of zero",
    "events_exceed_total": "More events than patients",
    "percent_mismatch": "Stated percentage does not match the counts",
    "percent_rounding": "Stated percentage rounded differently",
    "sex_total_mismatch": "Men and women do not add up to the total",
    "duplicate_cohort": "Possibly the same cohort twice",
    "same_first_author": "Same first author (cohorts may overlap)",
    "headline_mismatch": "Seed review's headline not reproduced",
}
FINISHED = ("succeeded", "failed", "held")


@dataclass(frozen=True)
class FindingLine:
    severity: str
    title: str
    study: str | None
    message: str
    left_out: bool


def finding_lines(audit: Iterable[Any]) -> list[FindingLine]:
    """The stored audit findings as lines a reader understands, each line once."""
    lines: list[FindingLine] = []
    for item in audit:
        if not isinstance(item, dict):
            continue
        code = str(item.get("code") or "finding")
        message = str(item.get("message") or "")
        left_out = bool(item.get("excludes")) or message.endswith(LEFT_OUT)
        line = FindingLine(
            severity=str(item.get("severity") or "info"),
            title=CODE_WORDS.get(code, code.replace("_", " ").capitalize()),
            study=item.get("study"),
            message=message.removesuffix(LEFT_OUT),
            left_out=left_out,
        )
        if line not in lines:
            lines.append(line)
    return lines


@dataclass(frozen=True)
class Moved:
    """The studies that changed between a snapshot and the one before it."""

    added: list[str]
    removed: list[str]
    retracted: list[str]


def moved_by(session: Session, history: Sequence[EstimateSnapshot]) -> dict[int, Moved]:
    """Snapshot id → the studies added, removed and retracted compared with its predecessor."""
    changes = {s.id: s.changes or {} for s in history}
    ids = {
        int(i)
        for c in changes.values()
        for key in ("studies_added", "studies_removed", "studies_retracted")
        for i in c.get(key) or []
    }
    labels = study_labels(session, ids)

    def named(values: Iterable[Any]) -> list[str]:
        return [labels.get(int(i), f"study {i}") for i in values]

    return {
        snapshot_id: Moved(
            named(c.get("studies_added") or []),
            named(c.get("studies_removed") or []),
            named(c.get("studies_retracted") or []),
        )
        for snapshot_id, c in changes.items()
    }


def study_labels(session: Session, ids: Iterable[int]) -> dict[int, str]:
    """Study id → label."""
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(session.execute(select(Study.id, Study.label).where(Study.id.in_(wanted))).all())


def run_state(run: SearchRun, now: dt.datetime, stale_after: float) -> str:
    """What a run is, as the dashboard says it: a run with an error is failed whatever its
    status column still says, and an unfinished run older than the lock's lifetime has stopped."""
    if run.status in FINISHED:
        return run.status
    if run.error:
        return "failed"
    started = run.started_at
    if started is not None and started.tzinfo is None:
        started = started.replace(tzinfo=dt.UTC)
    if started is not None and (now - started).total_seconds() > stale_after:
        return "stopped"
    return "running"


@dataclass(frozen=True)
class LogPage:
    rows: list[tuple[AuditLog, str]]
    page: int
    pages: int


def audit_log_page(session: Session, review_id: int, page: int) -> LogPage:
    """One page (newest first) of the review's audit log, with who did each action."""
    total = session.scalar(
        select(func.count(AuditLog.id)).where(AuditLog.review_id == review_id)
    ) or 0
    pages = max(1, -(-total // AUDIT_LOG_PAGE))
    page = min(max(page, 1), pages)
    rows = session.execute(
        select(AuditLog, User.email)
        .outerjoin(User, User.id == AuditLog.user_id)
        .where(AuditLog.review_id == review_id)
        .order_by(AuditLog.id.desc())
        .offset((page - 1) * AUDIT_LOG_PAGE)
        .limit(AUDIT_LOG_PAGE)
    ).all()
    return LogPage([(row, email or "system") for row, email in rows], page, pages)
