"""The transactional outbox: digest rows written with the snapshot they report.

:func:`queue_digest` runs inside the caller's transaction (the one that stores the estimate
snapshot), so a digest exists if and only if its snapshot does. One row per recipient, unique per
(snapshot, recipient), with a Message-ID derived from the review, the snapshot and the recipient:
writing the digest again (a redelivered task) adds nothing, and any resend of a row is the same
email. Delivery is :mod:`services.digest.mailer`'s job.

An update whose re-check of older records (``run.stats["recheck"]["changes"]``, see
:mod:`services.recheck`) or whose window (``run.stats["deletions"]``) found a retraction, a new
notice, a deletion or a revision sends a digest even when the estimate did not move, and lists
each change.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from email.utils import parseaddr
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import EstimateSnapshot, OutboxEmail, Record, Review, ReviewRecord, SearchRun, Study
from db.upsert import insert_missing
from services.digest.compose import (
    OLDER_TITLE,
    DigestContent,
    older_line,
    render_html,
    render_text,
    subject,
)
from services.digest.plot import forest_png
from services.digest.triggers import notify_reasons
from services.reviews import protocol_of

logger = logging.getLogger(__name__)

SNAPSHOT_FIELDS = ("estimate", "ci_low", "ci_high", "pi_low", "pi_high", "i2", "tau2", "k")


def message_id(review_slug: str, snapshot_id: int, recipient: str, domain: str) -> str:
    """The stable Message-ID of one digest for one recipient."""
    who = hashlib.sha256(recipient.strip().lower().encode()).hexdigest()[:16]
    return f"<digest.{review_slug}.{snapshot_id}.{who}@{domain}>"


def snapshot_dict(snapshot: EstimateSnapshot) -> dict[str, Any]:
    """The numbers of a snapshot the digest shows."""
    data: dict[str, Any] = {name: getattr(snapshot, name) for name in SNAPSHOT_FIELDS}
    data["study_ids"] = list(snapshot.study_ids or [])
    return data


def previous_snapshot(session: Session, snapshot: EstimateSnapshot) -> EstimateSnapshot | None:
    """The review's snapshot of the same outcome before this one."""
    query = (
        select(EstimateSnapshot)
        .where(EstimateSnapshot.review_id == snapshot.review_id)
        .where(EstimateSnapshot.outcome == snapshot.outcome)
        .where(EstimateSnapshot.id < snapshot.id)
        .order_by(EstimateSnapshot.id.desc())
        .limit(1)
    )
    return session.scalars(query).first()


def build_content(
    session: Session,
    review: Review,
    snapshot: EstimateSnapshot,
    reasons: list[str],
    *,
    base_url: str = "",
    changed: bool = True,
) -> DigestContent:
    """Gather what the digest of ``snapshot`` shows, from the database (``changed=False``: a
    note that nothing passed the thresholds)."""
    old = previous_snapshot(session, snapshot)
    old_ids = set(old.study_ids or []) if old else set()
    new_ids = set(snapshot.study_ids or [])
    now_retracted = set((snapshot.result or {}).get("retracted_ids") or [])
    before_retracted = set((old.result or {}).get("retracted_ids") or []) if old else set()
    retracted = _retracted(session, review.id, old_ids) | (now_retracted - before_retracted)
    refs = _refs(session, old_ids | new_ids | retracted)
    labels = {i: label for i, (label, _) in refs.items()}
    new_labels = [labels[i] for i in sorted(new_ids - old_ids) if i in labels]
    result = snapshot.result or {}
    older = older_changes(session, snapshot.search_run_id)
    return DigestContent(
        review_slug=review.slug,
        review_title=review.title,
        old=snapshot_dict(old) if old else None,
        new=snapshot_dict(snapshot),
        reasons=reasons,
        new_studies=new_labels,
        retractions=[labels[i] for i in sorted(retracted) if i in labels],
        prisma=prisma_counts(session, review.id, snapshot.search_run_id),
        queue_size=queue_size(session, review.id),
        queue_url=f"{base_url.rstrip('/')}/reviews/{review.slug}/screen" if base_url else "",
        forest_png=forest_png(result, title=review.title, new=new_labels),
        links={label: url for label, url in refs.values() if url} | dict(older),
        changed=changed,
        sensitivity=result.get("sensitivity"),
        hypotheses=[str(h.get("sentence")) for h in result.get("hypotheses") or []
                    if h.get("sentence")],
        older_changes=[line for line, _ in older],
    )


def run_changes(session: Session, search_run_id: int | None) -> list[dict[str, Any]]:
    """What changed in older records during a run: the re-check's changes, then the deletions
    the window harvest applied (each PMID and kind once)."""
    run = session.get(SearchRun, search_run_id) if search_run_id is not None else None
    if run is None:
        return []
    stats = run.stats or {}
    changes = list((stats.get("recheck") or {}).get("changes") or [])
    changes += [{"kind": "deleted", **d} for d in stats.get("deletions") or []]
    seen: set[tuple[Any, ...]] = set()
    unique = []
    for change in changes:
        key = (change.get("kind"), change.get("pmid"), change.get("notice_pmid"))
        if key not in seen:
            seen.add(key)
            unique.append(change)
    return unique


def older_changes(session: Session, search_run_id: int | None) -> list[tuple[str, str]]:
    """(line, PubMed address) for each change to an older record during the run."""
    changes = run_changes(session, search_run_id)
    study_ids = {int(c["study_id"]) for c in changes if c.get("study_id")}
    refs = _refs(session, study_ids)
    pmids = [int(c["pmid"]) for c in changes if c.get("pmid")]
    rows = session.execute(select(Record.pmid, Record.title).where(Record.pmid.in_(pmids)))
    titles: dict[int, str] = {pmid: title for pmid, title in rows} if pmids else {}
    out = []
    for change in changes:
        pmid = int(change["pmid"])
        if change.get("study_id") and int(change["study_id"]) in refs:
            label = refs[int(change["study_id"])][0]
            if f"PMID {pmid}" not in label:
                label = f"{label} (PMID {pmid})"
        else:
            title = titles.get(pmid) or ""
            short = title if len(title) <= 90 else title[:87].rstrip() + "…"
            label = f"PMID {pmid} “{short}”" if short else f"PMID {pmid}"
        out.append((older_line(change, label), study_url(pmid, None)))
    return out


def study_url(pmid: int | None, doi: str | None) -> str:
    """Where a reader finds a study: its PubMed page, else its DOI; empty when neither."""
    if pmid:
        return f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
    if doi:
        return f"https://doi.org/{doi}"
    return ""


def _refs(session: Session, ids: set[int]) -> dict[int, tuple[str, str]]:
    """Study id → (label with its PMID, address) of the studies ``ids``."""
    if not ids:
        return {}
    rows = session.execute(
        select(Study.id, Study.label, Study.doi, Record.pmid)
        .outerjoin(Record, Record.id == Study.record_id)
        .where(Study.id.in_(ids))
    )
    return {
        study_id: (f"{label} (PMID {pmid})" if pmid else label, study_url(pmid, doi))
        for study_id, label, doi, pmid in rows
    }


def _retracted(session: Session, review_id: int, ids: set[int]) -> set[int]:
    if not ids:
        return set()
    query = select(Study.id).where(
        Study.review_id == review_id, Study.id.in_(ids), Study.status != "included"
    )
    return set(session.scalars(query))


def prisma_counts(session: Session, review_id: int, search_run_id: int | None) -> dict[str, int]:
    """PRISMA-style counts of one update run: identified, new, linked, then records by state."""
    if search_run_id is None:
        return {}
    run = session.get(SearchRun, search_run_id)
    if run is None:
        return {}
    counts = {"identified": run.n_found, "new": run.n_new}
    rows = session.execute(
        select(ReviewRecord.state, func.count())
        .where(ReviewRecord.review_id == review_id, ReviewRecord.search_run_id == search_run_id)
        .group_by(ReviewRecord.state)
    )
    for state, number in rows:
        counts[state] = int(number)
    counts.setdefault("linked", run.n_linked)
    for key in ("quarantined", "skipped"):
        if (run.stats or {}).get(key):
            counts[key] = len(run.stats[key])
    return counts


def queue_size(session: Session, review_id: int) -> int:
    """How many of the review's records wait for a reviewer."""
    query = select(func.count()).where(
        ReviewRecord.review_id == review_id, ReviewRecord.state == "queued"
    )
    return int(session.scalar(query) or 0)


def queue_digest(
    session: Session,
    review: Review,
    snapshot: EstimateSnapshot,
    changes: dict[str, Any],
    *,
    base_url: str = "",
    mail_domain: str = "living-review.local",
) -> list[OutboxEmail]:
    """Write the digest of ``snapshot`` to the outbox, one row per recipient; never commits.

    Nothing is written when the changes do not pass the protocol's thresholds (unless the
    protocol asks for periodic "no change" notes) or the protocol lists no recipients. Calling it
    again for the same snapshot adds nothing and returns the rows already there.
    """
    digest = protocol_of(review).digest
    recipients = list(digest.recipients)
    reasons = notify_reasons(changes, digest.thresholds.model_dump())
    held = _held(session, snapshot.search_run_id)
    if held:
        reasons = [*reasons, f"{held} record(s) of this update could not be read: see quarantine."]
    older = len(run_changes(session, snapshot.search_run_id))
    if older:
        reasons = [*reasons, f"{older} change(s) to older records: see “{OLDER_TITLE}”."]
    periodic = not reasons and digest.periodic_no_change
    if (not reasons and not periodic) or not recipients:
        logger.info(
            "review %s snapshot %s: no digest (no change or no recipient)", review.id, snapshot.id
        )
        return []
    existing = _existing(session, snapshot.id)
    todo = [r for r in recipients if r not in existing]
    if not todo:
        return list(existing.values())
    content = build_content(
        session, review, snapshot, reasons, base_url=base_url, changed=not periodic
    )
    attachments, cid = _attachments(content.forest_png, snapshot.id, mail_domain)
    text, html = render_text(content), render_html(content, cid)
    rows = [
        {
            "review_id": review.id,
            "snapshot_id": snapshot.id,
            "recipient": recipient,
            "subject": subject(content),
            "message_id": message_id(review.slug, snapshot.id, recipient, mail_domain),
            "body_text": text,
            "body_html": html,
            "attachments": attachments,
            "status": "pending",
            "attempts": 0,
        }
        for recipient in todo
    ]
    session.flush()
    # one digest per snapshot (so per run) and recipient: the constraint decides, not a SELECT
    added = insert_missing(session, OutboxEmail, rows, ("snapshot_id", "recipient"))
    logger.info("review %s snapshot %s: %d digest(s) queued", review.id, snapshot.id, added)
    return list(_existing(session, snapshot.id).values())


def _held(session: Session, search_run_id: int | None) -> int:
    """How many articles of the run went to quarantine."""
    run = session.get(SearchRun, search_run_id) if search_run_id is not None else None
    return len((run.stats or {}).get("quarantined") or []) if run is not None else 0


def _existing(session: Session, snapshot_id: int) -> dict[str, OutboxEmail]:
    rows = session.scalars(select(OutboxEmail).where(OutboxEmail.snapshot_id == snapshot_id))
    return {row.recipient: row for row in rows}


def _attachments(
    png: bytes | None, snapshot_id: int, domain: str
) -> tuple[list[dict[str, str]], str | None]:
    if png is None:
        return [], None
    cid = f"forest.{snapshot_id}@{domain}"
    item = {
        "cid": cid,
        "filename": "forest.png",
        "mime": "image/png",
        "data_b64": base64.b64encode(png).decode("ascii"),
    }
    return [item], cid


def mail_domain_of(mail_from: str) -> str:
    """The domain part of the sender address (for Message-IDs)."""
    address = parseaddr(mail_from)[1]
    return address.rpartition("@")[2] or "living-review.local"
