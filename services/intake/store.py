"""Planning and writing imports: included studies and prior screening decisions.

``plan_*`` reads the database (and, through a resolver, PubMed) and returns a plan whose
``report()`` is the dry-run report; a plan with unmatched rows or rows naming another review's
records raises before anything is written. ``apply_*`` writes a plan inside the caller's
transaction (flush, never commit). Imported records come in through the harvest's own store
(:func:`services.harvest.store_records`) under a finished search run of the baseline period
(``stats = {"import": true}``), so they are versioned and de-duplicated like harvested ones.

Imported decisions are stored with ``source = "import"`` (never a person's decision in this
service): an exclusion settles the record as excluded, an inclusion at title/abstract sends it to
full-text screening, a conflict or "maybe" leaves it for the queue. A record a reviewer of this
review already decided keeps that decision.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import (
    AuditLog,
    Record,
    Review,
    ReviewRecord,
    ScreeningDecision,
    SearchRun,
    Study,
    utcnow,
)
from services.harvest import Matchable, StudyIndex, store_records
from services.intake.errors import ForeignRecordError, UnmatchedRowsError
from services.intake.formats import Row
from services.intake.resolve import Resolution
from services.pubmed.parse import PubMedRecord, title_key
from services.reviews import protocol_of
from services.runs import RunStatus

Resolver = Callable[[Sequence[Row]], Resolution]
SHOWN = 5
FINAL_STATES = ("included", "excluded")


def rows_line(rows: Sequence[Row]) -> str:
    shown = "; ".join(r.describe() for r in rows[:SHOWN])
    return shown + (f"; and {len(rows) - SHOWN} more" if len(rows) > SHOWN else "")


def surname(name: str | None) -> str:
    return (name or "").split(" ")[0].split(",")[0].lower()


def import_run(session: Session, review_id: int, what: str) -> SearchRun:
    """The search run imported records are stored under: a finished run of the baseline period
    (dated the day before the protocol's start date, as a backfill is), so it never moves the
    living search's window (:func:`services.runs.next_window` ignores it)."""
    review = session.get(Review, review_id)
    if review is None:
        raise LookupError(f"no review with id {review_id}")
    day = protocol_of(review).search.start_date - dt.timedelta(days=1)
    run = SearchRun(
        review_id=review_id, status=RunStatus.SUCCEEDED, query=what, window_start=day,
        window_end=day, finished_at=utcnow(), windows=[], stats={"import": True},
    )
    session.add(run)
    session.flush()
    return run


# --- included studies -----------------------------------------------------------------------


@dataclass
class IncludesPlan:
    """What importing included studies will do."""

    source: str
    resolved: list[tuple[Row, PubMedRecord]] = field(default_factory=list)
    unresolved: list[Row] = field(default_factory=list)
    known: list[Row] = field(default_factory=list)

    def report(self) -> list[str]:
        lines = [
            f"{self.source}: {len(self.resolved) + len(self.unresolved) + len(self.known)} "
            f"included studies read; {len(self.resolved)} resolved to PubMed records, "
            f"{len(self.unresolved)} not found in PubMed (kept with their metadata), "
            f"{len(self.known)} already among the review's studies"
        ]
        if self.unresolved:
            lines.append(f"  not found in PubMed: {rows_line(self.unresolved)}")
        return lines


def plan_includes(
    session: Session, review_id: int, rows: list[Row], resolve: Resolver, source: str
) -> IncludesPlan:
    """Resolve the rows and sort them into new (resolved or not) and already known."""
    index = StudyIndex(session.scalars(select(Study).where(Study.review_id == review_id)))
    plan = IncludesPlan(source=source)
    resolution = resolve(rows)
    for row in rows:
        record = resolution.records.get(row.number)
        key = _matchable(record, row)
        if index.match(key) is not None:
            plan.known.append(row)
        elif record is None:
            plan.unresolved.append(row)
        else:
            plan.resolved.append((row, record))
    return plan


def _matchable(record: PubMedRecord | None, row: Row) -> Matchable:
    if record is not None:
        return Matchable(-1, record.doi and record.doi.lower(), title_key(record.title),
                         record.year, record.first_author)
    return Matchable(-1, row.doi, title_key(row.title) if row.title else None, row.year,
                     row.first_author)


def apply_includes(session: Session, review_id: int, plan: IncludesPlan) -> int:
    """Create the studies and store their records linked to them; returns studies created."""
    studies: list[tuple[Study, PubMedRecord | None]] = []
    for row, record in [*plan.resolved, *((r, None) for r in plan.unresolved)]:
        study = _study(review_id, row, record)
        session.add(study)
        studies.append((study, record))
    session.flush()
    records = [record for _row, record in plan.resolved]
    if records:
        run = import_run(session, review_id, f"import included studies: {plan.source}")
        store_records(session, review_id=review_id, run=run, records=records)
        _link_known(session, review_id, [(s, r) for s, r in studies if r is not None])
    session.add(AuditLog(review_id=review_id, action="import.includes", entity="review",
                         entity_id=review_id, detail={"file": plan.source,
                                                      "resolved": len(plan.resolved),
                                                      "unresolved": len(plan.unresolved)}))
    session.flush()
    return len(studies)


def _study(review_id: int, row: Row, record: PubMedRecord | None) -> Study:
    title = record.title if record else row.title
    year = record.year if record else row.year
    first = record.first_author if record else row.first_author
    names = (
        "; ".join(a.get("last", "") + " " + a.get("initials", "") for a in record.authors
                  if isinstance(a, dict))
        if record else row.authors
    )
    label = f"{(first or 'Study').split(' ')[0]} {year or ''}".strip()
    return Study(
        review_id=review_id, label=label, title=title or None, authors=names or None,
        first_author=first, journal=(record.journal if record else row.journal), year=year,
        doi=(record.doi.lower() if record and record.doi else row.doi),
        title_key=title_key(title) if title else None, source="import", status="included",
        flags=[] if record else [{"flag": "not_in_pubmed", "row": row.number}],
    )


def _link_known(session: Session, review_id: int, pairs: list[tuple[Study, PubMedRecord]]) -> None:
    """Records the review knew before (screened, say) are linked to their new study."""
    ids = dict(session.execute(select(Record.pmid, Record.id).where(
        Record.pmid.in_([r.pmid for _s, r in pairs]))).all())
    links = {rr.record_id: rr for rr in session.scalars(select(ReviewRecord).where(
        ReviewRecord.review_id == review_id, ReviewRecord.record_id.in_(list(ids.values()))))}
    for study, record in pairs:
        record_id = ids[record.pmid]
        study.record_id = record_id
        link = links.get(record_id)
        if link is not None and link.study_id is None:
            link.state, link.study_id = "linked", study.id
            link.reason = f"same study as {study.label} (imported included study)"


# --- prior decisions ------------------------------------------------------------------------


@dataclass
class DecisionsPlan:
    """What importing prior decisions will do."""

    source: str
    matched: list[tuple[Row, int, str]] = field(default_factory=list)  # row, review record, how
    fetched: list[tuple[Row, PubMedRecord]] = field(default_factory=list)
    undecided: list[Row] = field(default_factory=list)

    def report(self) -> list[str]:
        counts: dict[str, int] = {}
        hows = [how for _row, _rr, how in self.matched] + [_how(r) for r, _rec in self.fetched]
        for how in hows:
            counts[how] = counts.get(how, 0) + 1
        decided = [r for r, _i, _h in self.matched] + [r for r, _rec in self.fetched]
        tally = {d: sum(1 for r in decided if r.decision == d) for d in ("include", "exclude",
                                                                        "maybe")}
        by = ", ".join(f"{n} by {how}" for how, n in sorted(counts.items()))
        return [
            f"{self.source}: {len(decided) + len(self.undecided)} rows; {len(decided)} decisions "
            f"({tally['include']} include, {tally['exclude']} exclude, {tally['maybe']} maybe or "
            f"in conflict); matched {by or 'none'} ({len(self.fetched)} of them fetched from "
            f"PubMed, new to the review); {len(self.undecided)} rows without a decision skipped"
        ]


def _how(row: Row) -> str:
    return "PMID" if row.pmid else "DOI" if row.doi else "title+year+first author"


@dataclass
class _ReviewIndex:
    by_pmid: dict[int, int]
    by_doi: dict[str, int]
    by_title: dict[tuple[str, int | None, str], int]


def _review_index(session: Session, review_id: int) -> _ReviewIndex:
    index = _ReviewIndex({}, {}, {})
    rows = session.execute(
        select(ReviewRecord.id, Record.pmid, Record.doi, Record.title_key, Record.year,
               Record.first_author)
        .join(Record, Record.id == ReviewRecord.record_id)
        .where(ReviewRecord.review_id == review_id)
    )
    for rr_id, pmid, doi, key, year, first in rows:
        index.by_pmid[pmid] = rr_id
        if doi:
            index.by_doi[doi.lower()] = rr_id
        if key:
            index.by_title[(key, year, surname(first))] = rr_id
    return index


def _find(index: _ReviewIndex, row: Row) -> tuple[int, str] | None:
    if row.pmid and row.pmid in index.by_pmid:
        return index.by_pmid[row.pmid], "PMID"
    if row.doi and row.doi in index.by_doi:
        return index.by_doi[row.doi], "DOI"
    if row.title:
        found = index.by_title.get((title_key(row.title) or "", row.year, surname(row.first_author)))
        if found is not None:
            return found, "title+year+first author"
    return None


def plan_decisions(
    session: Session, review_id: int, review_slug: str, rows: list[Row], resolve: Resolver,
    source: str,
) -> DecisionsPlan:
    """Match every decided row to a record of the review (PMID, DOI, title+year+first author);
    rows with an identifier the review does not hold yet are resolved through PubMed.

    Raises ForeignRecordError for a row naming another review's record and UnmatchedRowsError
    for rows matching nothing; in both cases nothing is written.
    """
    plan = DecisionsPlan(source=source)
    index = _review_index(session, review_id)
    missing: list[Row] = []
    for row in rows:
        if row.decision is None:
            plan.undecided.append(row)
            continue
        found = _find(index, row)
        if found is not None:
            plan.matched.append((row, *found))
        else:
            missing.append(row)
    _refuse_foreign(session, review_id, review_slug, missing, source)
    resolution = resolve(missing)
    unmatched = [r for r in missing if r.number not in resolution.records]
    if unmatched:
        raise UnmatchedRowsError(
            f"{source}: {len(unmatched)} of {len(rows)} rows match no record of the review nor "
            f"any PubMed record ({rows_line(unmatched)}); nothing was imported — fix or remove "
            "those rows"
        )
    plan.fetched = [(r, resolution.records[r.number]) for r in missing]
    _refuse_foreign(session, review_id, review_slug,
                    [Row(number=r.number, pmid=rec.pmid) for r, rec in plan.fetched], source)
    return plan


def _refuse_foreign(session: Session, review_id: int, slug: str, rows: list[Row], source: str
                    ) -> None:
    """A row whose record is in the database only for other reviews was exported from one."""
    pmids = {r.pmid for r in rows if r.pmid}
    dois = {r.doi for r in rows if r.doi}
    if not pmids and not dois:
        return
    found = session.execute(
        select(Record.pmid, Record.doi, ReviewRecord.review_id)
        .join(ReviewRecord, ReviewRecord.record_id == Record.id)
        .where(Record.pmid.in_(pmids) | Record.doi.in_(dois))
    ).all()
    owners: dict[int, set[int]] = {}
    for pmid, _doi, owner in found:
        owners.setdefault(pmid, set()).add(owner)
    foreign = [pmid for pmid, who in owners.items() if review_id not in who]
    if foreign:
        from db.models import Review

        names = sorted({s for s in session.scalars(select(Review.slug).join(
            ReviewRecord, ReviewRecord.review_id == Review.id).join(
            Record, Record.id == ReviewRecord.record_id).where(Record.pmid.in_(foreign)))})
        raise ForeignRecordError(
            f"{source}: {len(foreign)} decision(s) are on records of another review "
            f"({', '.join(names)}), not of {slug} (PMID {', '.join(map(str, sorted(foreign)[:SHOWN]))}"
            "): is this file exported from another review? Nothing was imported"
        )


def apply_decisions(session: Session, review_id: int, plan: DecisionsPlan) -> dict[str, int]:
    """Write the decisions; returns counts (decided, kept_included, kept_reviewer)."""
    targets = [(row, rr_id) for row, rr_id, _how in plan.matched]
    if plan.fetched:
        run = import_run(session, review_id, f"import prior decisions: {plan.source}")
        store_records(session, review_id=review_id, run=run, records=[r for _x, r in plan.fetched])
        ids = dict(session.execute(
            select(Record.pmid, ReviewRecord.id)
            .join(ReviewRecord, ReviewRecord.record_id == Record.id)
            .where(ReviewRecord.review_id == review_id,
                   Record.pmid.in_([r.pmid for _x, r in plan.fetched]))).all())
        targets += [(row, ids[record.pmid]) for row, record in plan.fetched]
    counts = {"decided": 0, "kept_included": 0, "kept_reviewer": 0}
    links = {rr.id: rr for rr in session.scalars(
        select(ReviewRecord).where(ReviewRecord.id.in_([t for _r, t in targets])))}
    reviewed = set(session.scalars(select(ScreeningDecision.review_record_id).where(
        ScreeningDecision.review_record_id.in_(list(links)),
        ScreeningDecision.source.in_(("human", "resolution")),
        ScreeningDecision.undone_at.is_(None))))
    for row, rr_id in targets:
        link = links[rr_id]
        if link.id in reviewed:
            counts["kept_reviewer"] += 1
            continue
        session.add(ScreeningDecision(
            review_record_id=link.id, stage="title_abstract", decision=row.decision,
            reason=row.reason, note=f"imported from {plan.source} {row.describe()}"
            + (f" ({row.note})" if row.note else ""), source="import"))
        if link.state == "linked":
            counts["kept_included"] += 1
            continue
        _settle_imported(link, row)
        counts["decided"] += 1
    session.add(AuditLog(review_id=review_id, action="import.decisions", entity="review",
                         entity_id=review_id, detail={"file": plan.source, **counts}))
    session.flush()
    return counts


def _settle_imported(link: ReviewRecord, row: Row) -> None:
    if row.decision == "exclude":
        link.state, link.stage = "excluded", "title_abstract"
        link.reason = row.reason or "excluded in the review's prior screening (imported)"
    elif row.decision == "include":
        link.state, link.stage = "queued", "full_text"
        link.reason = "included at title/abstract in the prior screening (imported)"
    elif link.state in ("inferred_excluded",):
        link.state = "new"  # a conflict or maybe: pre-screening queues it
