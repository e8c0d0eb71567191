"""SQLAlchemy 2.0 typed models: the whole state of the service.

The same schema runs on SQLite (embedded default) and PostgreSQL. JSON columns use JSONB on
PostgreSQL. Schema changes go through Alembic migrations in ``db/migrations``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

JSONType = JSON().with_variant(JSONB(), "postgresql")

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


RUN_STATES = ("started", "harvested", "screened", "recomputed", "succeeded", "failed", "held")
RUN_STATES_SQL = ", ".join(f"'{state}'" for state in RUN_STATES)


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Timestamped:
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), default=utcnow, server_default=func.now()
    )


class Review(Timestamped, Base):
    """A living review: its protocol (as loaded) and its identity."""

    __tablename__ = "reviews"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(100), unique=True)
    title: Mapped[str] = mapped_column(Text)
    protocol: Mapped[dict[str, Any]] = mapped_column(JSONType)
    protocol_hash: Mapped[str] = mapped_column(String(64))


class SearchRun(Base):
    """One harvest of a review: the create-date window asked for, counts and outcome."""

    __tablename__ = "search_runs"
    __table_args__ = (
        CheckConstraint(f"status IN ({RUN_STATES_SQL})", name="status"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    # the states of services.runs.RunStatus (db/ imports no services: the names are repeated here)
    status: Mapped[str] = mapped_column(String(20), default="started")
    query: Mapped[str] = mapped_column(Text)
    protocol_hash: Mapped[str | None] = mapped_column(String(64))
    window_start: Mapped[dt.date] = mapped_column(Date)
    window_end: Mapped[dt.date] = mapped_column(Date)
    started_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    n_found: Mapped[int] = mapped_column(Integer, default=0)
    n_fetched: Mapped[int] = mapped_column(Integer, default=0)
    n_new: Mapped[int] = mapped_column(Integer, default=0)
    n_updated: Mapped[int] = mapped_column(Integer, default=0)
    n_linked: Mapped[int] = mapped_column(Integer, default=0)
    n_deleted: Mapped[int] = mapped_column(Integer, default=0)
    n_requests: Mapped[int] = mapped_column(Integer, default=0)
    windows: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    error: Mapped[str | None] = mapped_column(Text)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class Record(Base):
    """One PubMed record, keyed by PMID; the current version (older ones in RecordVersion)."""

    __tablename__ = "records"
    __table_args__ = (CheckConstraint("pmid > 0", name="pmid_positive"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    pmid: Mapped[int] = mapped_column(BigInteger, unique=True)
    doi: Mapped[str | None] = mapped_column(Text, index=True)  # as PubMed writes it (case kept)
    title: Mapped[str] = mapped_column(Text, default="")
    abstract: Mapped[str] = mapped_column(Text, default="")
    abstract_sections: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    journal: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    pub_date: Mapped[str | None] = mapped_column(Text)
    create_date: Mapped[dt.date | None] = mapped_column(Date)
    authors: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    affiliations: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    languages: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    publication_types: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    mesh: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    keywords: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    comments_corrections: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    vernacular_title: Mapped[str | None] = mapped_column(Text)
    other_abstracts: Mapped[list[Any]] = mapped_column(
        JSONType, default=list, server_default=text("'[]'")
    )
    is_retracted: Mapped[bool] = mapped_column(Boolean, default=False)
    is_deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    title_key: Mapped[str | None] = mapped_column(String(255), index=True)
    first_author: Mapped[str | None] = mapped_column(Text)
    pubmed_version: Mapped[int] = mapped_column(Integer, default=1)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    content_hash: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    versions: Mapped[list[RecordVersion]] = relationship(back_populates="record")


class QuarantinedRecord(Timestamped, Base):
    """An article of a harvest that could not be read: its raw XML and why, for a person."""

    __tablename__ = "quarantined_records"
    __table_args__ = (UniqueConstraint("review_id", "xml_hash"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    search_run_id: Mapped[int | None] = mapped_column(ForeignKey("search_runs.id"))
    pmid: Mapped[str | None] = mapped_column(Text)  # as written, which may be what is wrong
    reason: Mapped[str] = mapped_column(Text)
    xml: Mapped[str] = mapped_column(Text)
    xml_hash: Mapped[str] = mapped_column(String(64))


class HarvestStaging(Base):
    """What a run's harvest fetched, staged batch by batch before it is applied to ``records``.

    ``kind`` is ``record`` (``data``: the parsed record), ``deleted`` (a DeleteCitation PMID),
    ``quarantined`` (``data``: PMID as written, reason, XML) or ``skipped`` (PMID, reason);
    ``key`` is the PMID, or the XML's hash (quarantined) or the item's hash (skipped), so a
    record fetched twice in a window is staged once. ``notice``: the record retracts others.
    Chunks are applied in key order; the last key applied of each kind is kept on the run
    (``stats["applied"]["through"]``), so applying never rewrites a staged row. The rows of a
    run are deleted once it is harvested.
    """

    __tablename__ = "harvest_staging"
    search_run_id: Mapped[int] = mapped_column(
        ForeignKey("search_runs.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    pmid: Mapped[int | None] = mapped_column(BigInteger)
    notice: Mapped[bool] = mapped_column(Boolean, default=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)


class RecordVersion(Base):
    """A superseded content of a record: kept when PubMed revises it."""

    __tablename__ = "record_versions"
    __table_args__ = (UniqueConstraint("record_id", "revision"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    revision: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    superseded_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    search_run_id: Mapped[int | None] = mapped_column(ForeignKey("search_runs.id"))

    record: Mapped[Record] = relationship(back_populates="versions")


class Study(Timestamped, Base):
    """A study of the review: a baseline reference of the seed paper, or a record included later."""

    __tablename__ = "studies"
    __table_args__ = (
        UniqueConstraint("review_id", "ref_no"),
        UniqueConstraint("review_id", "record_id"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id"))
    ref_no: Mapped[int | None] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(Text)
    authors: Mapped[str | None] = mapped_column(Text)
    first_author: Mapped[str | None] = mapped_column(String(255))
    journal: Mapped[str | None] = mapped_column(Text)
    year: Mapped[int | None] = mapped_column(Integer)
    doi: Mapped[str | None] = mapped_column(String(255), index=True)
    title_key: Mapped[str | None] = mapped_column(String(255), index=True)
    source: Mapped[str] = mapped_column(String(20))  # baseline|screening
    status: Mapped[str] = mapped_column(
        String(20), default="included"
    )  # included|reference|retracted
    flags: Mapped[list[Any]] = mapped_column(JSONType, default=list)


class ReviewRecord(Timestamped, Base):
    """A record as seen by one review: its screening state and why."""

    __tablename__ = "review_records"
    __table_args__ = (
        UniqueConstraint("review_id", "record_id"),
        # The screening queue: pending records of a review at a stage in priority order
        # (priority DESC, id), and the progress counts (score included: index-only on PostgreSQL).
        Index(
            "ix_review_records_pending",
            "review_id",
            "state",
            "stage",
            text("priority DESC"),
            "id",
            postgresql_include=["score"],
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    # new → (linked | auto_excluded | queued) → included | excluded ; maybe stays queued;
    # new | queued → deleted when PubMed deletes the record (services.harvest)
    state: Mapped[str] = mapped_column(String(20), default="new")
    stage: Mapped[str] = mapped_column(String(20), default="title_abstract")
    study_id: Mapped[int | None] = mapped_column(ForeignKey("studies.id"))
    search_run_id: Mapped[int | None] = mapped_column(ForeignKey("search_runs.id"))
    score: Mapped[float | None] = mapped_column(Float)
    priority: Mapped[float] = mapped_column(Float, default=0.0)
    reason: Mapped[str | None] = mapped_column(Text)
    rule: Mapped[str | None] = mapped_column(String(60))
    model_version: Mapped[str | None] = mapped_column(String(60))
    audit_sample: Mapped[bool] = mapped_column(Boolean, default=False)
    flags: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    record: Mapped[Record] = relationship()


class ScreeningDecision(Timestamped, Base):
    """One decision on a review record, by a person, a protocol rule or the model."""

    __tablename__ = "screening_decisions"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_record_id: Mapped[int] = mapped_column(
        ForeignKey("review_records.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    stage: Mapped[str] = mapped_column(String(20), default="title_abstract")
    decision: Mapped[str] = mapped_column(String(20))  # include|exclude|maybe
    reason: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # human|rule|model|baseline
    model_version: Mapped[str | None] = mapped_column(String(60))
    score: Mapped[float | None] = mapped_column(Float)
    undone_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    review_record: Mapped[ReviewRecord] = relationship()


class ScreeningLease(Base):
    """A record served to one reviewer in single screening: other reviewers' next record skips
    it until ``expires_at``. One lease per record; it ends on a decision, on expiry, or when
    the same reviewer asks for their next record again (:mod:`services.screening.leases`)."""

    __tablename__ = "screening_leases"
    __table_args__ = (Index("ix_screening_leases_holder", "review_id", "user_id", "stage"),)
    review_record_id: Mapped[int] = mapped_column(
        ForeignKey("review_records.id", ondelete="CASCADE"), primary_key=True
    )
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    stage: Mapped[str] = mapped_column(String(20))
    leased_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


OUTCOME_KIND = "outcome"  # the extraction kind of the protocol's [outcome] fields


class Extraction(Timestamped, Base):
    """Data extracted from a study for one table (prevalence, predictors, mechanisms).

    Rows are never edited: a correction adds a row that supersedes the previous one, so the
    history stays. The current extraction of a study and kind is the one not superseded.
    """

    __tablename__ = "extractions"
    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # outcome, or a table of the baseline
    data: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(20))  # published|confirmed
    source: Mapped[str] = mapped_column(String(40))  # e.g. seed:table1, reviewer
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("extractions.id"))
    superseded: Mapped[bool] = mapped_column(Boolean, default=False)


class ExtractionProposal(Timestamped, Base):
    """What the machine proposes for a record, shown pre-filled in the extraction form."""

    __tablename__ = "extraction_proposals"
    __table_args__ = (UniqueConstraint("review_id", "record_id", "extractor_version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"))
    extractor_version: Mapped[str] = mapped_column(String(40))
    fields: Mapped[dict[str, Any]] = mapped_column(JSONType)


class ClassifierModel(Timestamped, Base):
    """A trained screening model: version, training size, cross-validated figures, bytes."""

    __tablename__ = "classifier_models"
    __table_args__ = (UniqueConstraint("review_id", "version"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(60))
    n_train: Mapped[int] = mapped_column(Integer)
    n_positive: Mapped[int] = mapped_column(Integer)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    threshold: Mapped[float | None] = mapped_column(Float)
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)


class EstimateSnapshot(Timestamped, Base):
    """A pooled estimate as computed at one moment, with its study set and audit findings."""

    __tablename__ = "estimate_snapshots"
    # one snapshot per update run (NULL run ids, init and confirmations, do not collide)
    __table_args__ = (UniqueConstraint("search_run_id", "trigger"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    search_run_id: Mapped[int | None] = mapped_column(ForeignKey("search_runs.id"))
    trigger: Mapped[str] = mapped_column(String(20))  # init|update|confirmation|manual
    outcome: Mapped[str] = mapped_column(String(60))
    method: Mapped[str] = mapped_column(String(40))
    transform: Mapped[str] = mapped_column(String(20))
    k: Mapped[int] = mapped_column(Integer)
    study_ids: Mapped[list[Any]] = mapped_column(JSONType)
    estimate: Mapped[float | None] = mapped_column(Float)
    ci_low: Mapped[float | None] = mapped_column(Float)
    ci_high: Mapped[float | None] = mapped_column(Float)
    pi_low: Mapped[float | None] = mapped_column(Float)
    pi_high: Mapped[float | None] = mapped_column(Float)
    tau2: Mapped[float | None] = mapped_column(Float)
    i2: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    audit: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    changes: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class OutboxEmail(Timestamped, Base):
    """A digest email written in the same transaction as the snapshot it reports."""

    __tablename__ = "outbox_emails"
    __table_args__ = (UniqueConstraint("snapshot_id", "recipient"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    snapshot_id: Mapped[int | None] = mapped_column(ForeignKey("estimate_snapshots.id"))
    recipient: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(String(255), unique=True)
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|sending|sent
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # while ``sending``: which sender holds the row and since when (services.digest.mailer)
    claim_token: Mapped[str | None] = mapped_column(String(32))
    claimed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class User(Timestamped, Base):
    """A person who screens or administers reviews."""

    __tablename__ = "users"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False)
    # Sessions carry the version current when they started; bumping it (sign-out, password
    # change, deactivation) revokes every session of the user.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class Membership(Base):
    """A user's role in a review: admin or reviewer."""

    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("user_id", "review_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    role: Mapped[str] = mapped_column(String(20))  # admin|reviewer


class AuditLog(Timestamped, Base):
    """Who did what, when: decisions, confirmations, runs, settings changes."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int | None] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(60))
    entity: Mapped[str | None] = mapped_column(String(60))
    entity_id: Mapped[int | None] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class LoginAttempt(Base):
    """One sign-in attempt (email as typed, client address): the web app's rate limiter reads these."""

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_key", "email", "ip", "created_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    ip: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EvidenceSnapshot(Timestamped, Base):
    """The predictor and mechanism evidence and the certainty ratings at one recompute.

    Taken with each estimate snapshot; the next one is compared with it to tell followers what
    changed ("Modic change: 3 → 4 studies, 3 against resorption").
    """

    __tablename__ = "evidence_snapshots"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    estimate_snapshot_id: Mapped[int | None] = mapped_column(
        ForeignKey("estimate_snapshots.id", ondelete="SET NULL")
    )
    predictors: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    mechanisms: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    grade: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    changes: Mapped[list[Any]] = mapped_column(JSONType, default=list)


class RobRating(Timestamped, Base):
    """One reviewer's risk-of-bias assessment of one study with the protocol's tool.

    ``role`` is ``rater`` (blind to the other rater) or ``consensus`` (the admin's resolution of
    a conflict between the two raters). A rater re-rating a study updates their row.
    """

    __tablename__ = "rob_ratings"
    __table_args__ = (UniqueConstraint("study_id", "user_id", "tool", "role"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    tool: Mapped[str] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(20), default="rater")  # rater|consensus
    answers: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    overall: Mapped[str] = mapped_column(String(20))
    note: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class GradeJudgement(Timestamped, Base):
    """A reviewer's confirmation of one GRADE domain of an outcome (history: newest wins).

    ``proposed`` is the machine's downgrade when the reviewer confirmed; ``downgrade`` the
    reviewer's (0, 1 or 2 levels).
    """

    __tablename__ = "grade_judgements"
    id: Mapped[int] = mapped_column(primary_key=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id", ondelete="CASCADE"), index=True)
    outcome: Mapped[str] = mapped_column(String(60))
    domain: Mapped[str] = mapped_column(String(40))
    proposed: Mapped[int | None] = mapped_column(Integer)
    downgrade: Mapped[int] = mapped_column(Integer)
    reason: Mapped[str] = mapped_column(Text, default="")
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
