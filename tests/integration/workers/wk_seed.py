"""Rows the workers' tests start from: the LDH review, studies, estimate snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from db.models import EstimateSnapshot, Review, Study
from services.meta_analysis import pool
from services.protocol import load_protocol

ROOT = Path(__file__).resolve().parents[3]
RECIPIENTS = ["ana@example.org", "ben@example.org"]


def add_review(
    session: Session, recipients: list[str] | None = None, slug: str = "ldh_resorption"
) -> Review:
    protocol = load_protocol(ROOT / "reviews", "ldh_resorption").model_dump(mode="json")
    protocol["digest"]["recipients"] = recipients if recipients is not None else RECIPIENTS
    review = Review(
        slug=slug, title="Spontaneous resorption of LDH", protocol=protocol, protocol_hash="x" * 64
    )
    session.add(review)
    session.flush()
    return review


def add_studies(session: Session, review: Review, labels: list[str]) -> list[Study]:
    studies = [
        Study(review_id=review.id, label=label, source="baseline", ref_no=i + 1)
        for i, label in enumerate(labels)
    ]
    session.add_all(studies)
    session.flush()
    return studies


def add_snapshot(
    session: Session,
    review: Review,
    studies: list[Study],
    estimate: float,
    changes: dict[str, Any] | None = None,
) -> EstimateSnapshot:
    """A snapshot whose stored result is a real pooling of made-up counts (for the plot);
    ``estimate`` is the headline number the digest shows."""
    events = [40 + 5 * i for i in range(len(studies))]
    result = pool(events, [100] * len(studies), labels=[s.label for s in studies]).to_dict()
    snapshot = EstimateSnapshot(
        review_id=review.id,
        trigger="update",
        outcome="resorption",
        method="REML",
        transform="logit",
        k=len(studies),
        study_ids=[s.id for s in studies],
        estimate=estimate,
        ci_low=estimate - 0.08,
        ci_high=estimate + 0.07,
        pi_low=estimate - 0.3,
        pi_high=estimate + 0.2,
        tau2=0.5,
        i2=88.0,
        result=result,
        changes=changes or {},
    )
    session.add(snapshot)
    session.flush()
    return snapshot
