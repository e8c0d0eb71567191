"""What a screening card shows beyond the record itself: its authors, the flags stored on it
(no abstract, retracted, possible duplicate, rule flags) in words, and at full text the
title/abstract decisions and notes that sent it there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import ReviewRecord, ScreeningDecision, User
from services.screening.queue import HUMAN_SOURCES
from services.screening.retractions import retraction_notice
from services.screening.rules import TITLE_ABSTRACT, author_names

MAX_AUTHORS = 12
FLAG_WORDS = {
    "retracted": "Retracted",
    "no_abstract": "No abstract",
    "duplicate": "Possible duplicate",
    "possible_duplicate": "Possible duplicate",
}


@dataclass(frozen=True)
class Earlier:
    """A title/abstract decision shown on the full-text card."""

    who: str
    decision: str
    reason: str | None
    note: str | None
    source: str


@dataclass(frozen=True)
class Card:
    authors: str
    flags: list[tuple[str, str]]  # css class, words
    retraction_notice: int | None
    earlier: list[Earlier] = field(default_factory=list)


def flag_words(rr: ReviewRecord) -> list[tuple[str, str]]:
    """The record's flags as (css class, words), retracted first; computed ones included."""
    record = rr.record
    names = list(rr.flags or [])
    if record is not None and record.is_retracted and "retracted" not in names:
        names.insert(0, "retracted")
    if record is not None and not (record.abstract or "").strip() and "no_abstract" not in names:
        names.append("no_abstract")
    shown: list[tuple[str, str]] = []
    for name in names:
        if name.startswith("decision_changed:"):
            words = "Decision changed after the other reviewer's"
        else:
            words = FLAG_WORDS.get(name, name.replace("_", " ").replace(".", " ").capitalize())
        css = "retracted" if name == "retracted" else "flag"
        if (css, words) not in shown:
            shown.append((css, words))
    shown.sort(key=lambda item: item[0] != "retracted")
    return shown


def record_card(session: Session, rr: ReviewRecord) -> Card:
    """The extra lines of ``rr``'s screening card."""
    record = rr.record
    names = author_names(record.authors if record else [])
    authors = ", ".join(names[:MAX_AUTHORS]) + (" et al." if len(names) > MAX_AUTHORS else "")
    earlier: list[Earlier] = []
    if rr.stage != TITLE_ABSTRACT:
        rows = session.execute(
            select(ScreeningDecision, User)
            .outerjoin(User, User.id == ScreeningDecision.user_id)
            .where(
                ScreeningDecision.review_record_id == rr.id,
                ScreeningDecision.stage == TITLE_ABSTRACT,
                ScreeningDecision.source.in_(HUMAN_SOURCES),
                ScreeningDecision.undone_at.is_(None),
            )
            .order_by(ScreeningDecision.id)
        ).all()
        earlier = [
            Earlier(
                (user.name or user.email) if user else "an admin",
                d.decision,
                d.reason,
                d.note,
                d.source,
            )
            for d, user in rows
        ]
    notice = retraction_notice(session, record) if record and record.is_retracted else None
    return Card(authors or "Authors not listed", flag_words(rr), notice, earlier)
