"""PRISMA 2020 flow counts of a living review (the flow for updated reviews), from the database.

Every box is a count of rows, and the boxes add up (``PrismaCounts.checks`` lists the sums):

- previous version: the seed review's included studies (baseline studies that were included,
  retracted since or not; its cited-only references are not studies), one report each;
- identified: every record the updates brought (``review_records``), per update run;
- removed before screening: linked to a known study (duplicates), excluded by a protocol rule or
  by the classifier (automation tools), not yet pre-screened (awaiting automation), removed for
  other reasons (deleted from PubMed while waiting: state ``deleted``);
- screened (title/abstract) = excluded at title/abstract + awaiting title/abstract + sought;
- reports sought for retrieval (records that reached full text) = not retrieved (full-text
  exclusions whose reason says the full text is missing) + assessed + awaiting full text;
- assessed = excluded with reasons + new studies + new studies retracted (left out);
- total = previous still included + new studies (retracted studies are counted apart);
- pooled: of the total, the studies with outcome data, and the k of the latest estimate.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import (
    OUTCOME_KIND,
    EstimateSnapshot,
    Extraction,
    Review,
    ReviewRecord,
    ScreeningDecision,
    SearchRun,
    Study,
)
from services.screening.rules import FULL_TEXT, TITLE_ABSTRACT

NOT_RETRIEVED = re.compile(r"full[ -]?text|not retrieved|unavailable", re.IGNORECASE)


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
    previous_reports: int = 0
    previous_retracted: int = 0
    identified: int = 0
    per_update: list[UpdateCount] = field(default_factory=list)
    duplicates: int = 0
    auto_excluded_rule: int = 0
    auto_excluded_model: int = 0
    awaiting_automation: int = 0
    removed_deleted: int = 0
    screened: int = 0
    awaiting: int = 0
    excluded_title_abstract: int = 0
    sought: int = 0
    not_retrieved: int = 0
    awaiting_full_text: int = 0
    full_text_assessed: int = 0
    excluded_full_text: dict[str, int] = field(default_factory=dict)
    new_studies: int = 0
    new_reports: int = 0
    new_retracted: int = 0
    total_studies: int = 0
    total_reports: int = 0
    with_outcome_data: int = 0
    pooled_k: int | None = None

    def checks(self) -> dict[str, tuple[int, int]]:
        """Each sum of the flow: name → (box, sum of the boxes it splits into)."""
        return {
            "identified": (
                self.identified,
                self.duplicates
                + self.auto_excluded_rule
                + self.auto_excluded_model
                + self.awaiting_automation
                + self.removed_deleted
                + self.screened,
            ),
            "per update": (self.identified, sum(u.identified for u in self.per_update)),
            "screened": (
                self.screened,
                self.excluded_title_abstract + self.awaiting + self.sought,
            ),
            "sought": (
                self.sought,
                self.not_retrieved + self.full_text_assessed + self.awaiting_full_text,
            ),
            "assessed": (
                self.full_text_assessed,
                sum(self.excluded_full_text.values()) + self.new_studies + self.new_retracted,
            ),
            "total": (
                self.total_studies,
                self.previous_studies - self.previous_retracted + self.new_studies,
            ),
        }


def prisma_counts(*, session: Session, review: Review) -> PrismaCounts:
    """Count every box of the flow diagram for ``review``."""
    counts = PrismaCounts()
    by_state = _by_state(session, review)
    counts.identified = sum(by_state.values())
    counts.duplicates = _sum(by_state, "linked")
    counts.awaiting_automation = _sum(by_state, "new")
    counts.removed_deleted = _sum(by_state, "deleted")
    auto = dict(
        session.execute(
            select(ReviewRecord.rule.is_(None), func.count())
            .where(ReviewRecord.review_id == review.id, ReviewRecord.state == "auto_excluded")
            .group_by(ReviewRecord.rule.is_(None))
        ).all()
    )
    counts.auto_excluded_rule = auto.get(False, 0)
    counts.auto_excluded_model = auto.get(True, 0)
    counts.awaiting = by_state.get(("queued", TITLE_ABSTRACT), 0)
    counts.excluded_title_abstract = by_state.get(("excluded", TITLE_ABSTRACT), 0)
    counts.awaiting_full_text = by_state.get(("queued", FULL_TEXT), 0)
    reasons = _reasons(session, review, FULL_TEXT)
    counts.not_retrieved = sum(n for r, n in reasons.items() if NOT_RETRIEVED.search(r))
    counts.excluded_full_text = {r: n for r, n in reasons.items() if not NOT_RETRIEVED.search(r)}
    # an excluded full text without a settled exclusion decision still needs a box: "no reason"
    missing = by_state.get(("excluded", FULL_TEXT), 0) - sum(reasons.values())
    if missing > 0:
        counts.excluded_full_text["no reason given"] = (
            counts.excluded_full_text.get("no reason given", 0) + missing
        )
    studies = _studies(session, review)
    counts.new_studies = studies.get(("screening", "included"), 0)
    counts.new_retracted = studies.get(("screening", "retracted"), 0)
    included_at_ft = by_state.get(("included", FULL_TEXT), 0) + by_state.get(
        ("included", TITLE_ABSTRACT), 0
    )
    # an included record whose study was withdrawn counts with the exclusions, not silently
    orphans = included_at_ft - counts.new_studies - counts.new_retracted
    if orphans > 0:
        counts.excluded_full_text["study withdrawn by an admin"] = orphans
    counts.full_text_assessed = (
        sum(counts.excluded_full_text.values()) + counts.new_studies + counts.new_retracted
    )
    counts.sought = counts.not_retrieved + counts.full_text_assessed + counts.awaiting_full_text
    counts.screened = counts.excluded_title_abstract + counts.awaiting + counts.sought
    counts.previous_studies = studies.get(("baseline", "included"), 0) + studies.get(
        ("baseline", "retracted"), 0
    )
    counts.previous_retracted = studies.get(("baseline", "retracted"), 0)
    counts.previous_reports = counts.previous_studies
    counts.new_reports = counts.new_studies
    counts.total_studies = studies.get(("baseline", "included"), 0) + counts.new_studies
    counts.total_reports = counts.total_studies
    counts.with_outcome_data = _with_data(session, review)
    counts.pooled_k = session.scalar(
        select(EstimateSnapshot.k)
        .where(EstimateSnapshot.review_id == review.id)
        .order_by(EstimateSnapshot.id.desc())
        .limit(1)
    )
    counts.per_update = _per_update(session, review)
    return counts


def _sum(by_state: dict[tuple[str, str], int], state: str) -> int:
    return sum(n for (s, _), n in by_state.items() if s == state)


def _by_state(session: Session, review: Review) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(ReviewRecord.state, ReviewRecord.stage, func.count())
        .where(ReviewRecord.review_id == review.id)
        .group_by(ReviewRecord.state, ReviewRecord.stage)
    )
    return {(state, stage): n for state, stage, n in rows}


def _studies(session: Session, review: Review) -> dict[tuple[str, str], int]:
    rows = session.execute(
        select(Study.source, Study.status, func.count())
        .where(Study.review_id == review.id)
        .group_by(Study.source, Study.status)
    )
    return {(source, status): n for source, status, n in rows}


def _with_data(session: Session, review: Review) -> int:
    return int(
        session.scalar(
            select(func.count(func.distinct(Study.id)))
            .join(Extraction, Extraction.study_id == Study.id)
            .where(
                Study.review_id == review.id,
                Study.status == "included",
                Extraction.kind == OUTCOME_KIND,
                Extraction.superseded.is_(False),
            )
        )
        or 0
    )


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
