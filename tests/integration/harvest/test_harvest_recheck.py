"""Each update re-checks the review's older records (issue 18, items 2 and 3), on SQLite and
PostgreSQL, against the replay server over real HTTP.

The first update harvests records created ten days before its end; the second update's window
(the protocol's 3-day overlap) no longer covers them, so only the re-check can see what PubMed
changed in them meanwhile. The fixtures are our own words and numbers; each stands for a real
PubMed structure, named where it is built.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from harvest_helpers import init_review, ldh_protocol, options, update
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditLog,
    EstimateSnapshot,
    OutboxEmail,
    Record,
    RecordVersion,
    Review,
    ReviewRecord,
    SearchRun,
    Study,
    User,
)
from services import update as steps
from services.pipeline import PipelineOptions
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import Article, write_article_set
from services.screening.prisma import prisma_counts
from services.screening.queue import next_record, progress

pytestmark = pytest.mark.integration
END1 = dt.date(2024, 1, 6)  # the first update's window ends here ...
OLD = END1 - dt.timedelta(days=10)  # ... the records it brings were created here ...
END2 = dt.date(2024, 1, 26)  # ... and the second window starts at END1 - 3 days
REVISED = dt.date(2024, 1, 16)  # when PubMed revised them (DateRevised, read as [mdat])
DAI, KESIKBURUN, SUCUOGLU = 99300001, 99300002, 99300006  # records of included studies 20, 21, 19
QUEUED, ABSENT, CORRECTED = 99300003, 99300004, 99300005  # records the first update queues
FRESH = 99300020  # created inside the second window
NOTICE, ERRATUM = 99300010, 99300011  # the retraction notice and the erratum (not harvested)


def cohort(pmid: int, title: str, abstract: str, **more: Any) -> Article:
    return Article(
        pmid=pmid,
        created=OLD,
        title=title,
        abstract=[("", abstract)],
        authors=[("Okafor", "Ada", "")],
        **more,
    )


def first_set() -> list[Article]:
    return [
        cohort(DAI, "Conservative care of ruptured lumbar disc herniation with a herbal decoction",
               "Of 60 patients followed by MRI, 41 showed resorption of the herniated disc.",
               doi="10.1186/s12891-020-03723-2", year=2020),
        cohort(KESIKBURUN, "Spontaneous regression of extruded lumbar disc herniation",
               "Thirty of 40 extruded herniations regressed on follow-up MRI.",
               doi="10.12669/pjms.35.4.346", year=2019),
        cohort(SUCUOGLU, "Resorption of lumbar disc herniation after conservative treatment",
               "Of 50 herniations, 44 resorbed within a year of conservative treatment.",
               doi="10.1159/000515308", year=2021),
        cohort(QUEUED, "Spontaneous resorption of lumbar disc herniation: a prospective cohort",
               "We followed 80 patients with sciatica; 52 herniations resorbed on repeat MRI."),
        cohort(ABSENT, "Regression of sequestered lumbar disc herniation on magnetic resonance",
               "Sequestered fragments regressed in 21 of 25 patients treated conservatively."),
        cohort(CORRECTED, "Macrophage infiltration and resorption of herniated lumbar discs",
               "In 33 patients, resorption followed rim enhancement on MRI (version one)."),
    ]


def second_set() -> list[Article]:
    """What PubMed holds at the second update: every change is dated REVISED, outside the
    second update's create-date window."""
    dai, kesikburun, _, _, _, corrected = first_set()
    return [
        # an included study's record retracted: PubMed adds the publication type
        # "Retracted Publication" and a CommentsCorrections RefType="RetractionIn" naming the notice
        dataclasses.replace(
            dai, revised=REVISED,
            publication_types=["Journal Article", "Retracted Publication"],
            corrections=[("RetractionIn", "Demo J Spine Res. 2024", NOTICE)],
        ),
        # an erratum published for an included study: CommentsCorrections RefType="ErratumIn"
        dataclasses.replace(
            kesikburun, revised=REVISED,
            corrections=[("ErratumIn", "Demo J Spine Res. 2024", ERRATUM)],
        ),
        # a queued record's abstract corrected by the publisher (same PMID, new DateRevised)
        dataclasses.replace(
            corrected, revised=REVISED,
            abstract=[("", "In 34 patients, resorption followed rim enhancement on MRI.")],
        ),
        Article(pmid=FRESH, created=END2 - dt.timedelta(days=2),
                title="Resorption of lumbar disc herniation in adolescents",
                abstract=[("", "Twelve of 15 adolescents showed resorption on MRI.")]),
    ]


def snapshot(path: Path, articles: list[Article], deleted: list[int] | None = None) -> Path:
    path.mkdir()
    write_article_set(path / "set.xml", articles, deleted)
    return path


@dataclasses.dataclass
class Scenario:
    factory: sessionmaker[Session]
    second_run: int
    second_url: Path


def two_updates(factory: sessionmaker[Session], tmp_path: Path) -> Scenario:
    protocol = ldh_protocol()
    init_review(factory, protocol)
    with ReplayServer(snapshot(tmp_path / "a", first_set())) as server:
        first = update(factory, protocol, options(server.url), END1)
    assert first.status == "succeeded"
    with factory() as session:
        rows = session.execute(select(Record.pmid, ReviewRecord.state).join(ReviewRecord))
        states = {pmid: state for pmid, state in rows}
    assert {states[p] for p in (QUEUED, ABSENT, CORRECTED)} == {"queued"}
    assert {states[p] for p in (DAI, KESIKBURUN, SUCUOGLU)} == {"linked"}
    # PubMed deleted two records: a DeleteCitation element, as in PubMed's update files; the
    # ABSENT record is simply missing (PubMed answers nothing for it)
    second_dir = snapshot(tmp_path / "b", second_set(), deleted=[QUEUED, SUCUOGLU])
    with ReplayServer(second_dir) as server:
        second = update(factory, protocol, options(server.url), END2)
        windows = [e["params"]["term"] for e in server.state.log if "[crdt]" in
                   e["params"].get("term", "")]
    assert second.status == "succeeded", second.error
    assert all("2024/01/03:2024/01/26[crdt]" in t for t in windows)  # the old records: outside
    return Scenario(factory, second.run_id, second_dir)


def digest_of(factory: sessionmaker[Session], run_id: int) -> OutboxEmail:
    with factory() as session:
        return session.scalars(
            select(OutboxEmail)
            .join(EstimateSnapshot, EstimateSnapshot.id == OutboxEmail.snapshot_id)
            .where(EstimateSnapshot.search_run_id == run_id)
        ).one()


def study(session: Session, ref_no: int) -> Study:
    return session.scalars(select(Study).where(Study.ref_no == ref_no)).one()


def test_an_included_study_retracted_outside_the_overlap_is_retracted_and_in_the_digest(
    session_factory, tmp_path
) -> None:
    scene = two_updates(session_factory, tmp_path)
    with session_factory() as session:
        dai = study(session, 20)
        assert dai.status == "retracted"
        assert [(f["pmid"], f["notice_pmid"]) for f in dai.flags if f["flag"] == "retracted"] == [
            (DAI, NOTICE)
        ]
        record = session.scalars(select(Record).where(Record.pmid == DAI)).one()
        assert record.is_retracted and record.revision == 2
        assert session.scalars(select(RecordVersion).where(
            RecordVersion.record_id == record.id)).one().data["is_retracted"] is False
        audit = session.scalars(select(AuditLog).where(AuditLog.action == "study.retracted")).one()
        assert audit.entity_id == dai.id
    mail = digest_of(session_factory, scene.second_run)
    line = f"Retracted: Dai et al., 2020 (PMID {DAI}) is now a Retracted Publication"
    assert f"  - {line} (retraction notice PMID {NOTICE})" in mail.body_text
    assert f"https://pubmed.ncbi.nlm.nih.gov/{DAI}/" in mail.body_text
    assert "Changes to older records" in mail.body_html
    assert f'<a href="https://pubmed.ncbi.nlm.nih.gov/{DAI}/">{line}' in mail.body_html


def test_an_erratum_added_to_an_included_study_is_in_the_digest(session_factory, tmp_path) -> None:
    scene = two_updates(session_factory, tmp_path)
    with session_factory() as session:
        assert study(session, 21).status == "included"
        record = session.scalars(select(Record).where(Record.pmid == KESIKBURUN)).one()
        assert record.revision == 2
        assert {"type": "ErratumIn", "pmid": ERRATUM} in [
            {"type": c["type"], "pmid": c.get("pmid")} for c in record.comments_corrections
        ]
    mail = digest_of(session_factory, scene.second_run)
    line = f"Erratum added: Kesikburun et al., 2019 (PMID {KESIKBURUN}) (notice PMID {ERRATUM})"
    assert f"  - {line}" in mail.body_text
    assert line in mail.body_html
    assert "change(s) to older records" in mail.body_text  # a reason to send the digest


def test_a_deleted_queued_record_leaves_the_queue_and_is_in_the_digest(
    session_factory, tmp_path
) -> None:
    scene = two_updates(session_factory, tmp_path)
    with session_factory.begin() as session:
        review = session.scalars(select(Review)).one()
        user = User(email="ngozi@example.org", name="Ngozi", password_hash="-")
        session.add(user)
        session.flush()
        link = session.scalars(
            select(ReviewRecord).join(Record).where(Record.pmid == QUEUED)).one()
        assert link.state == "deleted" and "deleted" in link.flags
        assert session.scalars(select(Record.is_deleted).where(Record.pmid == QUEUED)).one()
        served = []
        for skip in range(10):
            row = next_record(session=session, review=review, user=user, skip=skip)
            if row is None:
                break
            served.append(row.record.pmid)
        assert QUEUED not in served and {ABSENT, CORRECTED} <= set(served)
        queued = session.scalar(select(func.count()).where(ReviewRecord.state == "queued"))
        assert progress(session=session, review=review, user=user,
                        stage="title_abstract").queued == queued == len(served)
        counts = prisma_counts(session=session, review=review)
        assert counts.removed_deleted == 1
        assert all(box == parts for box, parts in counts.checks().values()), counts.checks()
        assert session.scalars(select(AuditLog).where(
            AuditLog.action == "record.deleted", AuditLog.entity_id == link.id)).one()
    mail = digest_of(session_factory, scene.second_run)
    assert f"  - Deleted from PubMed: PMID {QUEUED} “Spontaneous resorption of lumbar disc " \
           "herniation: a prospective cohort”; it left the screening queue" in mail.body_text
    assert f"Deleted from PubMed: PMID {QUEUED}" in mail.body_html


def test_a_deleted_record_of_an_included_study_flags_the_study(session_factory, tmp_path) -> None:
    scene = two_updates(session_factory, tmp_path)
    with session_factory() as session:
        sucuoglu = study(session, 19)
        assert sucuoglu.status == "included"  # a person decides what the deletion means
        assert [f["pmid"] for f in sucuoglu.flags if f["flag"] == "deleted"] == [SUCUOGLU]
        link = session.scalars(
            select(ReviewRecord).join(Record).where(Record.pmid == SUCUOGLU)).one()
        assert link.state == "linked" and "deleted" in link.flags
    mail = digest_of(session_factory, scene.second_run)
    assert f"  - Deleted from PubMed: Sucuoglu et al., 2021 (PMID {SUCUOGLU}); its study is " \
           "flagged for a reviewer" in mail.body_text


def test_a_record_pubmed_does_not_return_is_reported_not_deleted_and_a_revision_is_kept(
    session_factory, tmp_path
) -> None:
    scene = two_updates(session_factory, tmp_path)
    with session_factory() as session:
        stats = session.get_one(SearchRun, scene.second_run).stats["recheck"]
        assert stats["not_returned"] == [ABSENT]
        assert stats["deleted"] == [QUEUED, SUCUOGLU]
        assert stats["since"] == "2024-01-03" and stats["until"] == "2024-01-26"
        absent = session.scalars(select(Record).where(Record.pmid == ABSENT)).one()
        assert not absent.is_deleted
        assert session.scalars(select(ReviewRecord.state).where(
            ReviewRecord.record_id == absent.id)).one() == "queued"
        corrected = session.scalars(select(Record).where(Record.pmid == CORRECTED)).one()
        assert corrected.revision == 2 and "In 34 patients" in corrected.abstract
        old = session.scalars(select(RecordVersion).where(
            RecordVersion.record_id == corrected.id)).one()
        assert "version one" in old.data["abstract"] and old.search_run_id == scene.second_run
    mail = digest_of(session_factory, scene.second_run)
    assert f"  - Revised abstract: PMID {CORRECTED} “Macrophage infiltration" in mail.body_text


def changes_seen(factory: sessionmaker[Session]) -> dict[str, Any]:
    with factory() as session:
        return {
            "versions": session.scalar(select(func.count()).select_from(RecordVersion)),
            "audit": sorted(a for a in session.scalars(select(AuditLog.action))
                            if not a.startswith("run.")),  # a new run logs its own steps
            "flags": sorted(str(f) for s in session.scalars(select(Study)) for f in s.flags),
            "links": sorted(
                (rid, state, flags) for rid, state, flags in session.execute(
                    select(ReviewRecord.record_id, ReviewRecord.state, ReviewRecord.flags))
            ),
            "mails": session.scalar(select(func.count()).select_from(OutboxEmail)),
        }


def test_running_the_step_or_the_update_again_adds_nothing(session_factory, tmp_path) -> None:
    scene = two_updates(session_factory, tmp_path)
    before = changes_seen(session_factory)
    with ReplayServer(scene.second_url) as server:
        opts: PipelineOptions = options(server.url)
        with session_factory() as session:
            stats = session.get_one(SearchRun, scene.second_run).stats
        assert steps.harvest(session_factory, scene.second_run, opts.make_client()) == stats
        from services.recheck import recheck

        assert recheck(session_factory, scene.second_run, opts.make_client()) == stats["recheck"]
        assert server.state.log == []  # the run's re-check is not asked again
        third = update(session_factory, ldh_protocol(), opts, END2 + dt.timedelta(days=7))
    assert third.status == "succeeded", third.error
    assert changes_seen(session_factory) == before  # nothing twice, no digest for old news
    with session_factory() as session:
        again = session.get_one(SearchRun, third.run_id).stats["recheck"]
        assert again["changes"] == [] and again["since"] == "2024-01-23"


def test_a_deletecitation_in_the_window_answer_takes_the_record_out_of_the_queue(
    session_factory, tmp_path
) -> None:
    from services import runs, staging
    from services.digest.outbox import older_changes
    from services.pubmed.client import FetchTally
    from services.pubmed.parse import parse_article_set

    protocol = ldh_protocol()
    init_review(session_factory, protocol)
    with ReplayServer(snapshot(tmp_path / "a", first_set())) as server:
        update(session_factory, protocol, options(server.url), END1)
    with session_factory.begin() as session:
        run_id = runs.begin(session, protocol, END2).id
    # an efetch answer of the window with a DeleteCitation element beside an article, as PubMed's
    # update files carry them
    write_article_set(tmp_path / "answer.xml", second_set()[-1:], deleted=[QUEUED])
    answer = parse_article_set((tmp_path / "answer.xml").read_bytes())
    window = [{"start": "2024-01-03", "end": END2.isoformat(), "count": 1}]
    with session_factory.begin() as session:  # staged as the harvest stages an efetch batch
        staging.stage(session, run_id, answer)
    steps._mark_staged(session_factory, run_id, window, FetchTally(), 2)
    stats = steps.apply_staged(session_factory, run_id)
    assert [(d["pmid"], d["state_before"], d["state"]) for d in stats["deletions"]] == [
        (QUEUED, "queued", "deleted")
    ]
    with session_factory() as session:
        assert session.scalars(select(ReviewRecord.state).join(Record).where(
            Record.pmid == QUEUED)).one() == "deleted"
        [(line, url)] = older_changes(session, run_id)
    assert line.startswith(f"Deleted from PubMed: PMID {QUEUED} “Spontaneous resorption")
    assert line.endswith("it left the screening queue")
    assert url == f"https://pubmed.ncbi.nlm.nih.gov/{QUEUED}/"
