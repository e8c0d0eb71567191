"""Pre-screening in the update: rules with reasons, cold start, then a stored model."""

from __future__ import annotations

import datetime as dt

import pytest
from harvest_helpers import init_review, ldh_protocol, options, update
from sqlalchemy import select

from classifiers import persistence
from db.models import ClassifierModel, Record, ReviewRecord, ScreeningDecision
from services.pubmed.replay import ReplayServer

pytestmark = pytest.mark.integration


def states(factory) -> dict[int, ReviewRecord]:  # type: ignore[no-untyped-def]
    with factory() as session:
        rows = session.execute(select(Record.pmid, ReviewRecord).join(ReviewRecord)).all()
        return {pmid: link for pmid, link in rows}


def test_rules_then_cold_start_then_a_model(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    with ReplayServer(demo_snapshot) as server:
        first = update(session_factory, protocol, options(server.url), dt.date(2024, 1, 7))
        links = states(session_factory)
        assert (
            links[99000103].state == "auto_excluded" and links[99000103].rule == "publication_type"
        )
        assert links[99000105].state == "auto_excluded" and "ger" in (links[99000105].reason or "")
        assert links[99000110].state == "queued" and "no_abstract" in links[99000110].flags
        assert first.steps["prescreen"]["mode"] == "cold_start"
        # the prospective resorption cohort outranks the discectomy trial
        pmids = sorted(
            (p for p, x in links.items() if x.state == "queued"), key=lambda p: -links[p].priority
        )
        assert pmids.index(99000101) < pmids.index(99000107)
        with session_factory.begin() as session:
            for pmid in (99000107, 99000109):  # a reviewer excludes two records
                link = session.scalars(
                    select(ReviewRecord).join(Record).where(Record.pmid == pmid)
                ).one()
                link.state = "excluded"
                session.add(
                    ScreeningDecision(
                        review_record_id=link.id,
                        decision="exclude",
                        source="human",
                        reason="Not about resorption",
                    )
                )
        second = update(session_factory, protocol, options(server.url), dt.date(2024, 1, 14))
    summary = second.steps["prescreen"]
    assert summary["mode"] == "model" and summary["model_version"]
    with session_factory() as session:
        model_row = session.scalars(select(ClassifierModel)).one()
        assert model_row.version == summary["model_version"]
        assert model_row.n_train >= 60 and model_row.n_positive >= 58
        assert "roc_auc" in model_row.metrics
        assert persistence.loads(model_row.blob).version == model_row.version
        for link in session.scalars(
            select(ReviewRecord).where(ReviewRecord.search_run_id == second.run_id)
        ):
            if link.state == "queued":
                assert link.model_version == model_row.version and link.score is not None
            if link.state == "auto_excluded" and link.rule == "model_threshold":
                assert link.score is not None and model_row.threshold is not None
                assert link.score < model_row.threshold


def test_a_record_included_by_a_reviewer_gets_its_extraction_proposal(
    session_factory, demo_snapshot
) -> None:
    from db.models import ExtractionProposal, Review, Study, User
    from services.screening.decisions import record_decision

    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    with ReplayServer(demo_snapshot) as server:
        update(session_factory, protocol, options(server.url), dt.date(2024, 1, 7))
    with session_factory.begin() as session:
        review = session.scalars(select(Review)).one()
        user = User(email="r@example.org", name="R", password_hash="x")
        session.add(user)
        session.flush()
        link = session.scalars(
            select(ReviewRecord).join(Record).where(Record.pmid == 99000101)
        ).one()
        for stage in ("title_abstract", "full_text"):
            record_decision(
                session=session,
                review=review,
                user=user,
                review_record_id=link.id,
                stage=stage,
                decision="include",
            )
    with session_factory() as session:
        link = session.get_one(ReviewRecord, link.id)
        assert link.state == "included"
        assert session.get_one(Study, link.study_id).source == "screening"
        proposal = session.scalars(
            select(ExtractionProposal).where(ExtractionProposal.record_id == link.record_id)
        ).one()
        # "Of 62 patients, 41 (66.1%) showed resorption" in the demo abstract
        assert proposal.fields["n_total"]["value"] == 62
        assert proposal.fields["n_resorbed"]["value"] == 41
