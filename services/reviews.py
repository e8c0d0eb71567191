"""Reviews in the database: created or refreshed from their protocol file.

Every update refreshes the stored copy (:func:`ensure_review`), so an edited ``protocol.toml``
takes effect at the next update; steps read it typed through :func:`protocol_of`.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditLog, Review
from services.protocol import Protocol, stored_protocol


def protocol_of(review: Review) -> Protocol:
    """The protocol stored with ``review``, typed; ProtocolError if it no longer validates."""
    return stored_protocol(review.protocol, source=f"review {review.slug} (database copy)")


def ensure_review(session: Session, protocol: Protocol) -> Review:
    """The review row for ``protocol``, created or updated to the protocol's content."""
    review = session.scalars(select(Review).where(Review.slug == protocol.slug)).first()
    digest = protocol.digest_hash()
    if review is None:
        review = Review(
            slug=protocol.slug,
            title=protocol.title,
            protocol=protocol.model_dump(mode="json"),
            protocol_hash=digest,
        )
        session.add(review)
        session.flush()
        session.add(
            AuditLog(
                review_id=review.id,
                action="review.created",
                entity="review",
                entity_id=review.id,
                detail={"protocol_hash": digest},
            )
        )
    elif review.protocol_hash != digest or review.protocol != protocol.model_dump(mode="json"):
        review.title = protocol.title
        review.protocol = protocol.model_dump(mode="json")
        session.add(
            AuditLog(
                review_id=review.id,
                action="review.protocol_changed",
                entity="review",
                entity_id=review.id,
                detail={"from": review.protocol_hash, "to": digest},
            )
        )
        review.protocol_hash = digest
    session.flush()
    return review
