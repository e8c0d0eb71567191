"""The evidence of a review now, and what changed since the last recompute, for the digest.

:func:`build_report` gathers the evidence tables, the risk-of-bias standing and the GRADE
certainty of the outcome. :func:`record_evidence` (called by every recompute, in its
transaction) stores an :class:`~db.models.EvidenceSnapshot` of it and returns the sentences the
digest adds, e.g. "Modic change: 3 → 4 studies, 2 against resorption" or "certainty of the
evidence (resorption): low → very low". The first snapshot of a review returns none.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EstimateSnapshot, EvidenceSnapshot, Review
from services.evidence import rob
from services.evidence.grade import Certainty, assess
from services.evidence.tables import NOT_REPORTED, EvidenceTables, load_tables
from services.meta_analysis.analysis import Analysis, analyse
from services.meta_analysis.store import load_studies
from services.protocol import Protocol


@dataclass(frozen=True)
class EvidenceReport:
    """Everything the summary of findings shows besides the estimate itself."""

    tables: EvidenceTables
    analysis: Analysis
    certainty: Certainty
    rob_status: dict[str, int]
    rob_agreement: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (``evidence --json`` prints ``tables`` and ``certainty``)."""
        return {
            **self.tables.to_dict(),
            "certainty": self.certainty.to_dict(),
            "risk_of_bias": {"status": self.rob_status, "agreement": self.rob_agreement},
        }


def pooling_options(protocol: Protocol) -> dict[str, Any]:
    """The protocol's pooling options for the engine."""
    outcome = protocol.outcome
    return {"transform": outcome.transform, "method": outcome.method, "test": outcome.test}


def review_analysis(session: Session, review: Review) -> Analysis:
    """The review's current prevalence analysis (audit, then pooling with its protocol)."""
    protocol = Protocol.model_validate(review.protocol)
    studies = load_studies(
        session, review.id,
        events_field=protocol.outcome.events_field, total_field=protocol.outcome.total_field,
    )
    return analyse(studies, **pooling_options(protocol))


def build_report(session: Session, review: Review, analysis: Analysis | None = None) -> EvidenceReport:
    """The evidence tables, risk of bias and certainty of ``review`` as they stand."""
    protocol = Protocol.model_validate(review.protocol)
    analysis = analysis or review_analysis(session, review)
    overall = rob.resolved_overall(session, review)
    status: dict[str, int] = {}
    agreement = None
    if protocol.risk_of_bias is not None:
        for state in rob.states(session, review).values():
            status[state.status] = status.get(state.status, 0) + 1
        status["unrated"] = len(analysis.included) - sum(status.values())
        agreement = rob.agreement(session, review)
    return EvidenceReport(
        load_tables(session, review.id, review.protocol),
        analysis,
        assess(session, review, analysis, overall, pooling_options(protocol)),
        status,
        agreement,
    )


def evidence_state(report: EvidenceReport) -> dict[str, Any]:
    """The part of the report the digest compares: counts per factor and modulator, GRADE."""
    factors = {
        f.factor: {
            "k": f.k,
            "patients": f.patients,
            "directions": {d: n for d, n in f.directions.items() if n and d != NOT_REPORTED},
            "pooled_or": None if f.pooled_or is None else round(f.pooled_or["ratio"], 2),
        }
        for f in report.tables.factors
    }
    modulators = {m.modulator: m.k for m in report.tables.modulators}
    return {
        "predictors": {"studies": report.tables.predictor_studies, "factors": factors},
        "mechanisms": {"studies": len(report.tables.mechanisms), "modulators": modulators},
        "grade": {report.certainty.outcome: report.certainty.state()},
    }


def _studies(k: int) -> str:
    return f"{k} stud{'y' if k == 1 else 'ies'}"


def _directions(directions: Mapping[str, int]) -> str:
    return "".join(f", {n} {d}" for d, n in directions.items())


def describe(previous: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """Sentences for what changed from ``previous`` to ``current`` (both from evidence_state)."""
    lines: list[str] = []
    old_f = previous.get("predictors", {}).get("factors", {})
    for factor, now in current.get("predictors", {}).get("factors", {}).items():
        before = old_f.get(factor)
        if before is None:
            lines.append(f"{factor}: new predictor, {_studies(now['k'])}{_directions(now['directions'])}")
        elif before["k"] != now["k"] or before["directions"] != now["directions"]:
            lines.append(
                f"{factor}: {before['k']} → {_studies(now['k'])}{_directions(now['directions'])}"
            )
        if before is not None and before.get("pooled_or") != now.get("pooled_or") and now.get("pooled_or"):
            lines.append(f"{factor}: pooled odds ratio {before.get('pooled_or') or '–'} → {now['pooled_or']}")
    old_m = previous.get("mechanisms", {}).get("modulators", {})
    for name, k in current.get("mechanisms", {}).get("modulators", {}).items():
        if old_m.get(name) != k:
            lines.append(f"mechanism {name}: {old_m.get(name, 0)} → {_studies(k)}")
    for outcome, now in current.get("grade", {}).items():
        before = previous.get("grade", {}).get(outcome)
        if before is not None and before.get("level") != now.get("level"):
            lines.append(
                f"certainty of the evidence ({outcome}): {before['level']} → {now['level']}"
            )
    return lines


def latest_evidence(session: Session, review_id: int) -> EvidenceSnapshot | None:
    """The review's newest evidence snapshot."""
    return session.scalars(
        select(EvidenceSnapshot)
        .where(EvidenceSnapshot.review_id == review_id)
        .order_by(EvidenceSnapshot.id.desc())
        .limit(1)
    ).first()


def record_evidence(
    session: Session,
    review: Review,
    estimate: EstimateSnapshot | None,
    analysis: Analysis | None = None,
) -> list[str]:
    """Snapshot the review's evidence (flush) and return what changed since the last one."""
    state = evidence_state(build_report(session, review, analysis))
    previous = latest_evidence(session, review.id)
    lines = [] if previous is None else describe(
        {"predictors": previous.predictors, "mechanisms": previous.mechanisms, "grade": previous.grade},
        state,
    )
    session.add(
        EvidenceSnapshot(
            review_id=review.id,
            estimate_snapshot_id=None if estimate is None else estimate.id,
            predictors=state["predictors"],
            mechanisms=state["mechanisms"],
            grade=state["grade"],
            changes=lines,
        )
    )
    session.flush()
    return lines
