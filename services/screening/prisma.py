"""PRISMA 2020 flow counts of a living review, computed from the database.

Previous studies are the baseline; new records per update come from review_records grouped by
search run; exclusion reasons come from the decision that settled each excluded record.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import Review, ReviewRecord, ScreeningDecision, SearchRun, Study
from services.screening.rules import FULL_TEXT, TITLE_ABSTRACT


@dataclass
class UpdateCount:
    """Records identified by one update run."""

    run_id: int | None
    date: dt.date | None
    identified: int


@dataclass
class PrismaCounts:
    """Boxes of the PRISMA 2020 flow diagram for updated reviews."""

    previous_studies: int = 0
    identified: int = 0
    per_update: list[UpdateCount] = field(default_factory=list)
    duplicates: int = 0
    auto_excluded_rule: int = 0
    auto_excluded_model: int = 0
    screened: int = 0
    awaiting: int = 0
    excluded_title_abstract: int = 0
    full_text_assessed: int = 0
    excluded_full_text: dict[str, int] = field(default_factory=dict)
    new_studies: int = 0
    total_studies: int = 0


def prisma_counts(*, session: Session, review: Review) -> PrismaCounts:
    """Count every box of the flow diagram for ``review``."""
    counts = PrismaCounts()
    in_review = ReviewRecord.review_id == review.id
    by_state: dict[tuple[str, str], int] = {}
    for state, stage, n in session.execute(
        select(ReviewRecord.state, ReviewRecord.stage, func.count())
        .where(in_review)
        .group_by(ReviewRecord.state, ReviewRecord.stage)
    ):
        by_state[(state, stage)] = n
    counts.identified = sum(by_state.values())
    counts.duplicates = sum(n for (s, _), n in by_state.items() if s == "linked")
    auto = dict(
        session.execute(
            select(ReviewRecord.rule.is_(None), func.count())
            .where(in_review, ReviewRecord.state == "auto_excluded")
            .group_by(ReviewRecord.rule.is_(None))
        ).all()
    )
    counts.auto_excluded_rule = auto.get(False, 0)
    counts.auto_excluded_model = auto.get(True, 0)
    counts.awaiting = sum(n for (s, _), n in by_state.items() if s == "queued")
    counts.screened = sum(
        n for (s, _), n in by_state.items() if s in ("queued", "included", "excluded")
    )
    counts.excluded_title_abstract = by_state.get(("excluded", TITLE_ABSTRACT), 0)
    counts.full_text_assessed = by_state.get(("excluded", FULL_TEXT), 0) + by_state.get(
        ("included", FULL_TEXT), 0
    )
    counts.excluded_full_text = _reasons(session, review, FULL_TEXT)
    counts.new_studies = sum(n for (s, _), n in by_state.items() if s == "included")
    counts.previous_studies = (
        session.scalar(
            select(func.count(Study.id)).where(
                Study.review_id == review.id, Study.source == "baseline"
            )
        )
        or 0
    )
    counts.total_studies = (
        session.scalar(
            select(func.count(Study.id)).where(
                Study.review_id == review.id, Study.status == "included"
            )
        )
        or 0
    )
    counts.per_update = _per_update(session, review)
    return counts


def _reasons(session: Session, review: Review, stage: str) -> dict[str, int]:
    rows = session.execute(
        select(ReviewRecord.id, func.max(ScreeningDecision.id))
        .join(ScreeningDecision, ScreeningDecision.review_record_id == ReviewRecord.id)
        .where(
            ReviewRecord.review_id == review.id,
            ReviewRecord.state == "excluded",
            ReviewRecord.stage == stage,
            ScreeningDecision.stage == stage,
            ScreeningDecision.decision == "exclude",
            ScreeningDecision.undone_at.is_(None),
        )
        .group_by(ReviewRecord.id)
    ).all()
    ids = [decision_id for _, decision_id in rows]
    reasons = (
        Counter(
            reason or "no reason given"
            for reason in session.scalars(
                select(ScreeningDecision.reason).where(ScreeningDecision.id.in_(ids))
            )
        )
        if ids
        else Counter()
    )
    return dict(reasons.most_common())


def _per_update(session: Session, review: Review) -> list[UpdateCount]:
    rows = session.execute(
        select(ReviewRecord.search_run_id, func.count())
        .where(ReviewRecord.review_id == review.id)
        .group_by(ReviewRecord.search_run_id)
    ).all()
    runs = {
        r.id: r for r in session.scalars(select(SearchRun).where(SearchRun.review_id == review.id))
    }
    result = []
    for run_id, n in rows:
        run = runs.get(run_id) if run_id is not None else None
        result.append(UpdateCount(run_id, run.window_end if run else None, n))
    result.sort(key=lambda u: (u.date or dt.date.min, u.run_id or 0))
    return result
