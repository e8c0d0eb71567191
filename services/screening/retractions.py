"""Which records are retracted, and by which notice: what every screen shows about a retraction.

A record is retracted when PubMed marks it (``Record.is_retracted``, set by the harvest from the
record's own "RetractionIn" link or from a notice naming it). The notice is found from either
side: the record's "RetractionIn" link, or a harvested notice whose "RetractionOf" names it.
Functions only read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Text, cast, select
from sqlalchemy.orm import Session

from db.models import Record

NOTICE_OF = "RetractionOf"
NOTICE_IN = ("RetractionIn", "RetractedandRepublishedIn")


def retraction_notice(session: Session, record: Record) -> int | None:
    """The PMID of the retraction notice of ``record``, when one is known."""
    for link in record.comments_corrections or []:
        if link.get("type") in NOTICE_IN and link.get("pmid"):
            return int(link["pmid"])
    return notices_of(session, [record.pmid]).get(record.pmid)


def notices_of(session: Session, pmids: Iterable[int]) -> dict[int, int]:
    """Retracted PMID → the PMID of a harvested notice retracting it, for ``pmids``."""
    wanted = {int(p) for p in pmids}
    if not wanted:
        return {}
    found: dict[int, int] = {}
    text = cast(Record.comments_corrections, Text)
    query = select(Record.pmid, Record.comments_corrections).where(text.contains(NOTICE_OF))
    for notice_pmid, links in session.execute(query):
        for link in links or []:
            target = _pmid(link)
            if link.get("type") == NOTICE_OF and target in wanted:
                found.setdefault(target, int(notice_pmid))
    return found


def _pmid(link: dict[str, Any]) -> int | None:
    try:
        return int(link.get("pmid"))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
