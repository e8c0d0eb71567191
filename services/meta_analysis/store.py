"""The database side of the engine: load a review's prevalence extractions, save a snapshot.

Functions take ``session`` and never commit (the caller owns the unit of work).

- :func:`load_studies` — the review's included (and retracted) studies with their current
  prevalence extraction (a reviewer-confirmed row wins over the published one; superseded rows
  are ignored). A retracted study carries its reason; the audit leaves it out of pooling.
- :func:`latest_snapshot` — the newest ``EstimateSnapshot`` of a review and outcome.
- :func:`record_snapshot` — audit, pool, compare with the previous snapshot and add a new one.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import OUTCOME_KIND, EstimateSnapshot, Extraction, Review
from db.models import Study as StudyRow
from services.meta_analysis.analysis import Analysis, analyse
from services.meta_analysis.audit import INFO, Finding, Headline
from services.meta_analysis.moderators import HypothesisSpec, check_hypotheses, hypothesis_changes
from services.meta_analysis.snapshots import Changes, Thresholds, compare, snapshot_summary
from services.meta_analysis.studies import Study

logger = logging.getLogger(__name__)
_RANK = {"confirmed": 0, "published": 1}


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value).strip().rstrip("%"))
    except ValueError:
        return None


def study_from_row(row: StudyRow, data: Mapping[str, Any], events_field: str, total_field: str) -> Study:
    year = row.year
    if year is None:
        found = re.search(r"(19|20)\d\d", row.label or "")
        year = int(found.group(0)) if found else None
    extra = {key: value for key, value in data.items() if value is not None}
    for field in (events_field, total_field):
        if data.get(field) is not None and _number(data.get(field)) is None:
            extra[f"raw_{'events' if field == events_field else 'total'}"] = str(data[field])
    extra.setdefault("doi", row.doi)
    return Study(
        label=str(data.get("study") or row.label),
        events=_number(data.get(events_field)),
        total=_number(data.get(total_field)),
        reported_percent=_number(data.get("reported_percent")),
        year=year,
        first_author=row.first_author,
        country=data.get("country"),
        design=data.get("design"),
        age_range=data.get("age_range"),
        sex=data.get("sex_male_female") or data.get("sex"),
        study_id=row.id,
        extra=extra,
        retracted=retraction_reason(row) if row.status == "retracted" else None,
        source=row.source,
    )


def retraction_reason(row: StudyRow) -> str:
    """Why a retracted study is left out: "retracted (retraction notice PMID N)"."""
    flag = next(
        (f for f in row.flags or [] if isinstance(f, dict) and f.get("flag") == "retracted"), {}
    )
    notice = flag.get("notice_pmid")
    return f"retracted (retraction notice PMID {notice})" if notice else "retracted"


def load_studies(
    session: Session,
    review_id: int,
    *,
    events_field: str,
    total_field: str,
) -> list[Study]:
    """Included and retracted studies of ``review_id`` with their current outcome extraction,
    by year (retracted ones are marked, and left out of pooling by the analysis).

    ``events_field``/``total_field`` are the protocol's (``[outcome]``): nothing is assumed."""
    rows = session.execute(
        select(StudyRow, Extraction)
        .join(Extraction, Extraction.study_id == StudyRow.id)
        .where(
            StudyRow.review_id == review_id,
            StudyRow.status.in_(("included", "retracted")),
            Extraction.kind == OUTCOME_KIND,
            Extraction.superseded.is_(False),
        )
        .order_by(StudyRow.id, Extraction.id)
    ).all()
    best: dict[int, tuple[StudyRow, Extraction]] = {}
    for study, extraction in rows:
        held = best.get(study.id)
        if held is None or _RANK.get(extraction.status, 2) <= _RANK.get(held[1].status, 2):
            best[study.id] = (study, extraction)
    studies = [study_from_row(s, e.data or {}, events_field, total_field) for s, e in best.values()]
    return sorted(studies, key=lambda s: (s.year is None, s.year or 0, s.label))


def latest_snapshot(session: Session, review_id: int, outcome: str) -> EstimateSnapshot | None:
    """The newest snapshot of ``review_id`` for ``outcome``, or None."""
    return session.scalars(
        select(EstimateSnapshot)
        .where(EstimateSnapshot.review_id == review_id, EstimateSnapshot.outcome == outcome)
        .order_by(EstimateSnapshot.id.desc())
        .limit(1)
    ).first()


def _summary_of(row: EstimateSnapshot) -> dict[str, Any]:
    return {
        "method": row.method,
        "transform": row.transform,
        "k": row.k,
        "study_ids": list(row.study_ids or []),
        "estimate": row.estimate,
        "ci_low": row.ci_low,
        "ci_high": row.ci_high,
        "pi_low": row.pi_low,
        "pi_high": row.pi_high,
        "tau2": row.tau2,
        "i2": row.i2,
        "retracted_ids": list((row.result or {}).get("retracted_ids") or []),
    }


@dataclass(frozen=True)
class Pooled:
    """A review's estimate and hypothesis tests computed from its studies, not yet stored."""

    analysis: Analysis
    study_ids: list[int]
    summary: dict[str, Any]
    tested: list[Any]
    retracted_ids: list[int]


def pool_studies(
    session: Session,
    review_id: int,
    *,
    options: Mapping[str, Any],
    headline: Headline | None,
    events_field: str,
    total_field: str,
    hypotheses: Sequence[HypothesisSpec] = (),
) -> Pooled:
    """Read ``review_id``'s studies, pool them and test the hypotheses; writes nothing (run it
    outside a write transaction: the GLMM and the meta-regressions are slow).

    ``options`` are :func:`services.meta_analysis.pool` keywords (transform, method, test).
    """
    studies = load_studies(session, review_id, events_field=events_field, total_field=total_field)
    analysis = analyse(studies, headline=headline, **options)
    ids = sorted(s.study_id for s in analysis.included if s.study_id is not None)
    retracted_ids = sorted(
        s.study_id for s in studies if s.retracted is not None and s.study_id is not None
    )
    summary = {**snapshot_summary(analysis.result, ids), "retracted_ids": retracted_ids}
    tested = list(check_hypotheses(analysis.included, hypotheses, **options))
    return Pooled(analysis, ids, summary, tested, retracted_ids)


def add_snapshot(
    session: Session,
    review: Review,
    pooled: Pooled,
    *,
    outcome: str,
    thresholds: Thresholds,
    trigger: str = "manual",
    search_run_id: int | None = None,
) -> tuple[EstimateSnapshot, Changes]:
    """Compare ``pooled`` with the last snapshot and add (flush) it as a new one.

    The hypotheses' results are kept in the snapshot's ``result["hypotheses"]``, a changed
    verdict is a reason to notify, and an untestable one is an audit finding.
    """
    analysis, retracted_ids = pooled.analysis, pooled.retracted_ids
    previous = latest_snapshot(session, review.id, outcome)
    changes = compare(None if previous is None else _summary_of(previous), pooled.summary,
                      thresholds)
    tested = pooled.tested
    moved = hypothesis_changes(
        None if previous is None else (previous.result or {}).get("hypotheses"), tested
    )
    if moved:
        changes = replace(changes, notify=True, reasons=(*changes.reasons, *moved))
    findings = [f.to_dict() for f in pooled.analysis.findings] + [
        Finding(INFO, "hypothesis_untestable", None, h.sentence()).to_dict()
        for h in tested
        if h.status == "untestable"
    ]
    res = pooled.analysis.result
    row = EstimateSnapshot(
        review_id=review.id,
        search_run_id=search_run_id,
        trigger=trigger,
        outcome=outcome,
        method=res.method,
        transform=res.transform,
        k=res.k,
        study_ids=pooled.study_ids,
        estimate=res.estimate,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        pi_low=res.pi_low,
        pi_high=res.pi_high,
        tau2=res.tau2,
        i2=res.i2,
        result={
            **res.to_dict(),
            "excluded": dict(analysis.excluded),
            "retracted_ids": retracted_ids,
            "sensitivity": analysis.sensitivity,
            "hypotheses": [h.to_dict() for h in tested],
        },
        audit=findings,
        changes=changes.to_dict(),
    )
    session.add(row)
    session.flush()
    logger.info(
        "review %s: snapshot %s (k=%s, notify=%s)", review.id, row.id, res.k, changes.notify
    )
    return row, changes


def record_snapshot(
    session: Session,
    review: Review,
    *,
    outcome: str,
    options: Mapping[str, Any],
    headline: Headline | None,
    thresholds: Thresholds,
    trigger: str = "manual",
    search_run_id: int | None = None,
    events_field: str,
    total_field: str,
    hypotheses: Sequence[HypothesisSpec] = (),
) -> tuple[EstimateSnapshot, Changes, Analysis]:
    """Recompute ``review``'s estimate, compare it with the last snapshot, add (flush) a new one
    (:func:`pool_studies` then :func:`add_snapshot`, in the caller's transaction)."""
    pooled = pool_studies(session, review.id, options=options, headline=headline,
                          events_field=events_field, total_field=total_field,
                          hypotheses=hypotheses)
    row, changes = add_snapshot(session, review, pooled, outcome=outcome, thresholds=thresholds,
                                trigger=trigger, search_run_id=search_run_id)
    return row, changes, pooled.analysis
