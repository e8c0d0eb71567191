"""Seed data of the web tests: a review (protocol from reviews/ldh_resorption), users, queued
records, baseline studies with data, an included record with a machine proposal."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    Extraction,
    ExtractionProposal,
    Membership,
    Record,
    Review,
    ReviewRecord,
    Study,
    User,
)
from services.accounts import hash_password
from services.protocol import parse_protocol
from services.screening import on_extraction_confirmed

ROOT = Path(__file__).resolve().parents[3]
PROTOCOL = ROOT / "reviews" / "ldh_resorption" / "protocol.toml"
PASSWORD = "correct horse battery"
XSS = "<script>alert('x')</script><img src=x onerror=alert(1)>"
BASELINE = [
    ("Alpha et al., 2019", 40, 30),
    ("Beta et al., 2020", 60, 30),
    ("Gamma et al., 2021", 50, 40),
]
PROPOSAL_ABSTRACT = (
    "BACKGROUND: Herniations may regress. METHODS: We followed 80 patients with lumbar disc "
    "herniation treated conservatively for 12 months. RESULTS: Resorption was seen in 20 of "
    "80 patients (25%). CONCLUSION: Resorption is common."
)


@dataclass
class Seed:
    """Ids of what was seeded."""

    review_id: int
    other_review_id: int
    slug: str
    queued: list[int] = field(default_factory=list)  # review_record ids by priority, highest first
    xss_rr: int = 0
    included_study: int = 0
    baseline_studies: list[int] = field(default_factory=list)
    users: dict[str, int] = field(default_factory=dict)


@functools.cache
def password_hash() -> str:
    """One argon2 hash of PASSWORD for all seeded users (hashing is slow on purpose)."""
    return hash_password(PASSWORD)


def protocol_dict(reviewers_per_record: int = 1) -> dict:
    protocol = parse_protocol(PROTOCOL.read_text(encoding="utf-8"), source=str(PROTOCOL))
    data = protocol.model_dump(mode="json")
    data["screening"]["reviewers_per_record"] = reviewers_per_record
    return data


def seed_database(
    factory: sessionmaker[Session], *, reviewers_per_record: int = 1, n_queued: int = 6
) -> Seed:
    """Commit a small review: three baseline studies with data, queued records, users."""
    with factory() as session, session.begin():
        protocol = protocol_dict(reviewers_per_record)
        review = Review(
            slug="ldh_resorption", title=protocol["title"], protocol=protocol, protocol_hash="t"
        )
        other = Review(
            slug="other_review",
            title="Another review",
            protocol=protocol_dict(1) | {"slug": "other_review"},
            protocol_hash="o",
        )
        session.add_all([review, other])
        session.flush()
        seed = Seed(review.id, other.id, review.slug)
        for i, (label, total, events) in enumerate(BASELINE, start=1):
            study = Study(review_id=review.id, ref_no=i, label=label, source="baseline")
            session.add(study)
            session.flush()
            session.add(
                Extraction(
                    study_id=study.id,
                    kind="outcome",
                    status="published",
                    source="seed:table1",
                    data={"n_total": total, "n_resorbed": events, "design": "Prospective"},
                )
            )
            seed.baseline_studies.append(study.id)
        for i in range(n_queued):
            title = f"Record {i}: spontaneous resorption of lumbar disc herniation"
            abstract = f"Abstract {i} about regression on MRI follow-up."
            if i == 1:
                title, abstract = f"Record 1 {XSS}", f"{XSS} resorption"
            record = Record(
                pmid=30_000_000 + i,
                title=title,
                abstract=abstract,
                abstract_sections=[{"label": "RESULTS", "category": "RESULTS", "text": abstract}],
                journal="Spine",
                year=2024,
                languages=["eng"],
                publication_types=["Journal Article"],
                first_author=f"Author{i}",
                content_hash=f"h{i}",
                doi=f"10.1000/rec{i}",
            )
            session.add(record)
            session.flush()
            rr = ReviewRecord(
                review_id=review.id,
                record_id=record.id,
                state="queued",
                stage="title_abstract",
                priority=1.0 - i / 100,
                score=0.9 - i / 10,
                model_version="test-1",
            )
            session.add(rr)
            session.flush()
            seed.queued.append(rr.id)
            if i == 1:
                seed.xss_rr = rr.id
        seed.included_study = _included_with_proposal(session, review)
        for name, role, target in (
            ("admin", "admin", review),
            ("alice", "reviewer", review),
            ("bob", "reviewer", review),
            ("carol", "reviewer", other),
        ):
            user = User(
                email=f"{name}@example.org", name=name.title(), password_hash=password_hash()
            )
            session.add(user)
            session.flush()
            session.add(Membership(user_id=user.id, review_id=target.id, role=role))
            seed.users[name] = user.id
        on_extraction_confirmed(session, review.id)
    return seed


def _included_with_proposal(session: Session, review: Review) -> int:
    record = Record(
        pmid=31_000_000,
        title="Conservative care and resorption of LDH",
        abstract=PROPOSAL_ABSTRACT,
        journal="Eur Spine J",
        year=2025,
        first_author="Delta",
        content_hash="p",
        languages=["eng"],
    )
    session.add(record)
    session.flush()
    study = Study(
        review_id=review.id,
        record_id=record.id,
        label="Delta et al., 2025",
        source="screening",
        title=record.title,
        year=2025,
    )
    session.add(study)
    session.flush()
    session.add(
        ReviewRecord(
            review_id=review.id,
            record_id=record.id,
            state="included",
            stage="full_text",
            study_id=study.id,
        )
    )
    evidence = "Resorption was seen in 20 of 80 patients (25%)."
    start = PROPOSAL_ABSTRACT.index(evidence)
    session.add(
        ExtractionProposal(
            review_id=review.id,
            record_id=record.id,
            extractor_version="rules-1",
            fields={
                "n_total": {
                    "value": 80,
                    "unit": "patients",
                    "start": start,
                    "end": start + len(evidence),
                    "evidence": evidence,
                    "confidence": 0.9,
                    "method": "rule",
                },
                "n_resorbed": {
                    "value": 20,
                    "unit": "patients",
                    "start": start,
                    "end": start + len(evidence),
                    "evidence": evidence,
                    "confidence": 0.85,
                    "method": "rule",
                },
            },
        )
    )
    session.flush()
    return study.id
