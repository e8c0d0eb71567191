"""What happens after a reviewer confirms an extraction: the pooled estimate is recomputed.

:func:`on_extraction_confirmed` is the single place the web app calls. Until the update pipeline's
``services.update.recompute`` lands it pools the current extractions itself with
``services.meta_analysis.pool`` and stores an EstimateSnapshot (trigger ``confirmation``);
the lead replaces its body with the pipeline's step (audit, compare, digest) later.
Errors: ``services.meta_analysis.MetaAnalysisError`` propagates (bad counts are refused at
confirmation, so it means stored baseline data is impossible).
"""

from __future__ import annotations

import logging

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import EstimateSnapshot, Extraction, Review, Study
from services.meta_analysis import pool
from services.screening.rules import rules_of

logger = logging.getLogger(__name__)


def on_extraction_confirmed(session: Session, review_id: int) -> EstimateSnapshot | None:
    """Recompute the review's pooled estimate from current extractions; flush, never commit."""
    review = session.get(Review, review_id)
    if review is None:
        return None
    rules = rules_of(review)
    outcome = (review.protocol or {}).get("outcome") or {}
    rows = session.execute(
        select(Study.id, Study.label, Extraction.data)
        .join(Extraction, Extraction.study_id == Study.id)
        .where(
            Study.review_id == review.id,
            Study.status == "included",
            Extraction.kind == "prevalence",
            Extraction.superseded.is_(False),
        )
        .order_by(Study.id)
    ).all()
    usable = [
        (sid, label, data)
        for sid, label, data in rows
        if isinstance(data.get(rules.events_field), int | float)
        and isinstance(data.get(rules.total_field), int | float)
        and 0 <= data[rules.events_field] <= data[rules.total_field]
        and data[rules.total_field] > 0
    ]
    result = pool(
        [d[rules.events_field] for _, _, d in usable],
        [d[rules.total_field] for _, _, d in usable],
        labels=[label for _, label, _ in usable],
        transform=str(outcome.get("transform", "logit")),
        method=str(outcome.get("method", "REML")),
        test=str(outcome.get("test", "z")),
    )
    snapshot = EstimateSnapshot(
        review_id=review.id,
        trigger="confirmation",
        outcome=str(outcome.get("name", "outcome")),
        method=result.method,
        transform=result.transform,
        k=result.k,
        study_ids=[sid for sid, _, _ in usable],
        estimate=result.estimate,
        ci_low=result.ci_low,
        ci_high=result.ci_high,
        pi_low=result.pi_low,
        pi_high=result.pi_high,
        tau2=result.tau2,
        i2=result.i2,
        result=result.to_dict(),
    )
    session.add(snapshot)
    session.flush()
    logger.info("review %s: recomputed after confirmation, k=%s", review.id, result.k)
    return snapshot
