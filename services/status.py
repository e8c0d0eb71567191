"""Where each review stands, and its past update runs (``status`` and ``runs`` commands).

The dictionaries returned here are the documented ``--json`` output; keys are stable.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Record, Review, ReviewRecord, SearchRun, Study

RECORD_STATES = ("new", "linked", "queued", "auto_excluded", "excluded", "included")


def run_dict(run: SearchRun) -> dict[str, Any]:
    """One update run: window, counts, outcome."""
    return {
        "id": run.id,
        "status": run.status,
        "window_start": run.window_start.isoformat(),
        "window_end": run.window_end.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "found": run.n_found,
        "fetched": run.n_fetched,
        "new": run.n_new,
        "updated": run.n_updated,
        "linked": run.n_linked,
        "deleted": run.n_deleted,
        "requests": run.n_requests,
        "sub_windows": len(run.windows or []),
        "protocol_hash": run.protocol_hash,
        "quarantined": list((run.stats or {}).get("quarantined") or []),
        "skipped": list((run.stats or {}).get("skipped") or []),
        "error": run.error,
    }


def review_status(session: Session, review: Review) -> dict[str, Any]:
    """Counts of the review's records by screening state, studies, and the last run."""
    states = dict(
        session.execute(
            select(ReviewRecord.state, func.count())
            .where(ReviewRecord.review_id == review.id)
            .group_by(ReviewRecord.state)
        ).all()
    )
    studies = dict(
        session.execute(
            select(Study.status, func.count())
            .where(Study.review_id == review.id)
            .group_by(Study.status)
        ).all()
    )
    last = session.scalars(
        select(SearchRun).where(SearchRun.review_id == review.id).order_by(SearchRun.id.desc())
    ).first()
    records = {state: int(states.get(state, 0)) for state in RECORD_STATES}
    return {
        "review": review.slug,
        "title": review.title,
        "records": sum(int(v) for v in states.values()),
        "records_by_state": records,
        "linked_to_baseline": records["linked"],
        "queued": records["queued"],
        "excluded": records["excluded"] + records["auto_excluded"],
        "included": records["included"],
        "studies_included": int(studies.get("included", 0)),
        "studies_retracted": int(studies.get("retracted", 0)),
        "records_retracted": int(
            session.scalar(
                select(func.count(ReviewRecord.id))
                .join(Record, Record.id == ReviewRecord.record_id)
                .where(ReviewRecord.review_id == review.id, Record.is_retracted.is_(True))
            )
            or 0
        ),
        "last_run": run_dict(last) if last else None,
    }


def all_status(session: Session) -> list[dict[str, Any]]:
    return [
        review_status(session, r) for r in session.scalars(select(Review).order_by(Review.slug))
    ]


def list_runs(session: Session, slug: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    query = select(SearchRun, Review.slug).join(Review).order_by(SearchRun.id.desc()).limit(limit)
    if slug:
        query = query.where(Review.slug == slug)
    return [{"review": s, **run_dict(run)} for run, s in session.execute(query).all()]
