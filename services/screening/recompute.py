"""What happens after a reviewer confirms an extraction: the pooled estimate is recomputed.

:func:`on_extraction_confirmed` is the in-process path (no worker configured): the same
recompute as an update's (audit, pooling, snapshot, comparison with the previous snapshot, and
the digest rows in the same transaction when the thresholds say the evidence changed). With a
worker, the web app asks ``workers.tasks.request_recompute`` instead, which debounces bursts.
Errors: ``services.meta_analysis.MetaAnalysisError`` propagates.
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from db.models import EstimateSnapshot, Review
from services.digest.estimates import recompute_and_queue

logger = logging.getLogger(__name__)


def on_extraction_confirmed(
    session: Session,
    review_id: int,
    *,
    base_url: str = "",
    mail_domain: str = "living-review.local",
) -> EstimateSnapshot | None:
    """Snapshot the review's estimate after a confirmation; flush, never commit."""
    review = session.get(Review, review_id)
    if review is None:
        return None
    snapshot, rows = recompute_and_queue(
        session, review, trigger="confirmation", base_url=base_url, mail_domain=mail_domain
    )
    logger.info(
        "review %s: recomputed after confirmation, k=%s, %d digest(s) queued",
        review_id,
        snapshot.k,
        len(rows),
    )
    return snapshot
