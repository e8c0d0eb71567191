"""Pre-screening in the update: rules with reasons, cold start, then a stored model."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from harvest_helpers import init_review, ldh_protocol, options, update
from sqlalchemy import select

from classifiers import persistence
from db.models import ClassifierModel, Record, ReviewRecord, ScreeningDecision, SearchRun
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import synthetic_articles, write_article_set

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
        assert links[99000103].state == "auto_excluded" and links[99000103].rule == "publication_type"
        assert links[99000105].state == "auto_excluded" and "ger" in (links[99000105].reason or "")
        assert links[99000110].state == "queued" and "no_abstract" in links[99000110].flags
        assert first.steps["prescreen"]["mode"] == "cold_start"
        # the prospective resorption cohort outranks the discectomy trial
        pmids = sorted((p for p, x in links.items() if x.state == "queued"),
                       key=lambda p: -links[p].priority)
        assert pmids.index(99000101) < pmids.index(99000107)
        with session_factory.begin() as session:
            for pmid in (99000107, 99000109):  # a reviewer excludes two records
                link = session.scalars(select(ReviewRecord).join(Record).where(Record.pmid == pmid)).one()
                link.state = "excluded"
                session.add(ScreeningDecision(review_record_id=link.id, decision="exclude",
                                              source="human", reason="Not about resorption"))
        second = update(session_factory, protocol, options(server.url), dt.date(2024, 1, 14))
    summary = second.steps["prescreen"]
    assert summary["mode"] == "model" and summary["model_version"]
    with session_factory() as session:
        model_row = session.scalars(select(ClassifierModel)).one()
        assert model_row.version == summary["model_version"]
        assert model_row.n_train >= 60 and model_row.n_positive >= 58
        assert "roc_auc" in model_row.metrics
        assert persistence.loads(model_row.blob).version == model_row.version
        queued = session.scalars(select(ReviewRecord).where(
            ReviewRecord.search_run_id == second.run_id, ReviewRecord.state == "queued")).all()
        assert queued and all(link.model_version == model_row.version and link.score is not None
                              for link in queued)


def test_the_model_auto_excludes_off_topic_records_through_the_update(
        session_factory, tmp_path: Path) -> None:
    """Enough human exclusions for the recall bound: the next update's model really excludes.

    Stands for a review some months in: reviewers have excluded many off-topic records, and the
    next window brings more of the same kind (synthetic abstracts of random words).
    """
    protocol = ldh_protocol()
    init_review(session_factory, protocol)  # 59 included baseline studies: the positives
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for name, start, first_pmid, seed in (("earlier", dt.date(2023, 10, 2), 91_000_000, 3),
                                          ("later", dt.date(2024, 1, 2), 92_000_000, 4)):
        write_article_set(folder / f"{name}.xml",
                          synthetic_articles(150, start, 20, first_pmid=first_pmid, seed=seed))
    with ReplayServer(folder) as server:
        first = update(session_factory, protocol, options(server.url), dt.date(2023, 12, 31))
        assert (first.new, first.steps["prescreen"]["mode"]) == (150, "cold_start")
        with session_factory.begin() as session:  # reviewers exclude every one of them
            for link in session.scalars(select(ReviewRecord).where(ReviewRecord.state == "queued")):
                link.state = "excluded"
                session.add(ScreeningDecision(review_record_id=link.id, decision="exclude",
                                              source="human", reason="Not about resorption"))
        second = update(session_factory, protocol, options(server.url), dt.date(2024, 1, 31))
    summary = second.steps["prescreen"]
    assert (second.new, summary["mode"]) == (150, "model")
    assert summary["model_excluded"] >= 100, summary
    with session_factory() as session:
        model_row = session.scalars(select(ClassifierModel)).one()
        excluded = session.scalars(select(ReviewRecord).where(
            ReviewRecord.search_run_id == second.run_id, ReviewRecord.rule == "model_threshold")).all()
        assert len(excluded) == summary["model_excluded"]
        assert model_row.threshold is not None
        assert all(link.state == "auto_excluded" and link.score is not None
                   and link.score < model_row.threshold for link in excluded)
        decisions = session.scalars(select(ScreeningDecision).where(
            ScreeningDecision.source == "model")).all()
        assert len(decisions) == len(excluded)


def test_a_record_included_by_a_reviewer_gets_its_extraction_proposal(session_factory, demo_snapshot) -> None:
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
        link = session.scalars(select(ReviewRecord).join(Record).where(Record.pmid == 99000101)).one()
        for stage in ("title_abstract", "full_text"):
            record_decision(session=session, review=review, user=user, review_record_id=link.id,
                            stage=stage, decision="include")
    with session_factory() as session:
        link = session.get_one(ReviewRecord, link.id)
        assert link.state == "included"
        assert session.get_one(Study, link.study_id).source == "screening"
        proposal = session.scalars(select(ExtractionProposal).where(
            ExtractionProposal.record_id == link.record_id)).one()
        # "Of 62 patients, 41 (66.1%) showed resorption" in the demo abstract
        assert proposal.fields["n_total"]["value"] == 62
        assert proposal.fields["n_resorbed"]["value"] == 41


def test_prescreen_writes_in_chunks_and_a_rerun_after_a_crash_counts_each_once(
        session_factory, tmp_path: Path) -> None:
    """Stands for an update pre-screening a large window whose process dies part-way through
    the writes (here: the third chunk's commit fails): what was committed stays, the run is not
    ``screened``, and the re-run writes the rest, counting every record once."""
    from sqlalchemy import event, func

    from services import runs
    from services import update as steps

    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    folder = tmp_path / "snapshot"
    folder.mkdir()
    write_article_set(folder / "window.xml",
                      synthetic_articles(230, dt.date(2024, 1, 2), 5, first_pmid=93_000_000, seed=5))
    with session_factory.begin() as session:
        run_id = runs.begin(session, protocol, dt.date(2024, 1, 10)).id
    with ReplayServer(folder) as server:
        steps.harvest(session_factory, run_id, options(server.url).make_client())
    engine = session_factory.kw["bind"]
    commits: list[int] = []

    def crash_on_the_third(_connection) -> None:  # type: ignore[no-untyped-def]
        commits.append(1)
        if len(commits) == 3:
            raise RuntimeError("the process died")

    def left_new() -> int:
        with session_factory() as session:
            return int(session.scalar(select(func.count(ReviewRecord.id)).where(
                ReviewRecord.state == "new")) or 0)

    event.listen(engine, "commit", crash_on_the_third)
    with pytest.raises(RuntimeError, match="died"):
        steps.prescreen(session_factory, run_id, chunk=50)
    event.remove(engine, "commit", crash_on_the_third)
    assert left_new() == 230 - 2 * 50  # two chunks of 50 were committed, the third was not
    with session_factory() as session:
        run = session.get_one(SearchRun, run_id)
        assert run.status == "harvested"
        assert run.stats["prescreen_partial"]["records"] == 100
    summary = steps.prescreen(session_factory, run_id, chunk=50)
    assert left_new() == 0
    assert summary["records"] == 230
    assert summary["rule_excluded"] + summary["model_excluded"] + summary["queued"] == 230
    with session_factory() as session:
        run = session.get_one(SearchRun, run_id)
        assert run.status == "screened" and "prescreen_partial" not in run.stats
        machine = session.scalar(select(func.count(ScreeningDecision.id)).where(
            ScreeningDecision.source.in_(("rule", "model"))))
        assert machine == summary["rule_excluded"] + summary["model_excluded"]
    assert steps.prescreen(session_factory, run_id) == summary  # asked again: what it did
