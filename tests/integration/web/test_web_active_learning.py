"""Active learning in Chromium: after a few decisions the queue is refitted in the background and
the next records come in the refit model's order, with its score and version shown.

The app runs under uvicorn on PostgreSQL with the refit on (0.3 s debounce). The seeded queue
interleaves records about the review's question (spontaneous resorption of lumbar disc
herniation) with records about something else (cervical fusion surgery) in a fixed priority
order; the test screens the first three as a reviewer would and waits for the refit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from test_web_browser import ARTIFACTS, browser, current_record, expect, free_port, press  # noqa: F401
from web_seed import PASSWORD, password_hash, protocol_dict

from db.models import Membership, Record, Review, ReviewRecord, User
from db.session import make_engine, make_sessionmaker
from services.settings import Settings
from services.web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.postgres]
ON_TOPIC = ("Spontaneous resorption of lumbar disc herniation on follow-up MRI in {n} patients",
            "Conservative care; the herniated disc regressed or disappeared on MRI follow-up.")
OFF_TOPIC = ("Anterior cervical fusion with a titanium cage: {n}-case surgical series",
             "Operative time, fusion rate and dysphagia after anterior cervical surgery.")
# seeded order (highest priority first): on-topic records are R, off-topic are O
ORDER = "ROOOROOROR"


def seed(factory: sessionmaker[Session]) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = {"R": [], "O": [], "order": []}
    with factory.begin() as session:
        protocol = protocol_dict(1)
        review = Review(slug="ldh_resorption", title=protocol["title"], protocol=protocol,
                        protocol_hash="t")
        session.add(review)
        session.flush()
        for i, kind in enumerate(ORDER):
            title, abstract = ON_TOPIC if kind == "R" else OFF_TOPIC
            record = Record(pmid=31_000_000 + i, title=title.format(n=20 + i), abstract=abstract,
                            abstract_sections=[], languages=["eng"], year=2024,
                            publication_types=["Journal Article"], content_hash=f"a{i}")
            session.add(record)
            session.flush()
            rr = ReviewRecord(review_id=review.id, record_id=record.id, state="queued",
                              stage="title_abstract", priority=1.0 - i / 100, score=0.5,
                              model_version="prescreen-1")
            session.add(rr)
            session.flush()
            ids[kind].append(rr.id)
            ids["order"].append(rr.id)
        user = User(email="alice@example.org", name="Alice", password_hash=password_hash())
        session.add(user)
        session.flush()
        session.add(Membership(user_id=user.id, review_id=review.id, role="reviewer"))
    return ids


@pytest.fixture
def refitting_server(pg_url: str) -> Iterator[tuple[str, dict[str, list[int]], sessionmaker[Session]]]:
    engine = make_engine(pg_url)
    factory: sessionmaker[Session] = make_sessionmaker(engine)
    ids = seed(factory)
    settings = Settings(database_url=pg_url, secret_key="al-test-" + "z" * 40,
                        environment="test", base_url="http://127.0.0.1", queue_refit_seconds=0.3)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", ids, factory
    server.should_exit = True
    thread.join(10)
    engine.dispose()


def wait_for_refit(factory: sessionmaker[Session], timeout: float = 60) -> str:
    """The refit's model version once it has written the queue (polled, not slept)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            version = session.scalar(select(ReviewRecord.model_version).where(
                ReviewRecord.state == "queued", ReviewRecord.model_version.like("refit-%")))
        if version:
            return version
        time.sleep(0.1)
    raise AssertionError("no queue refit within the time allowed")


def test_queue_order_follows_the_refit_model(refitting_server, browser) -> None:  # noqa: F811
    base, ids, factory = refitting_server
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/reviews/ldh_resorption/screen")
    page.fill("input[name=email]", "alice@example.org")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    assert current_record(page) == ids["order"][0]
    press(page, "i")  # the on-topic record: include
    press(page, "2")  # off-topic: exclude (reason 2)
    press(page, "2")
    version = wait_for_refit(factory)
    assert version.startswith("refit-3-")
    page.reload()
    shown = current_record(page)
    static_next = ids["order"][3]  # without the refit: the third off-topic record
    assert shown != static_next
    assert shown in ids["R"], "the refit should rank the on-topic records first"
    expect(page.locator(".classifier")).to_contain_text(f"model {version}")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "web-queue-refit.png"), full_page=True)
    # the next two are the remaining on-topic records, in the refit's order
    seen = [shown]
    for _ in range(2):
        press(page, "i")
        seen.append(current_record(page))
    assert set(seen) == set(ids["R"][1:])
    expect(page.locator("#recall")).to_contain_text("95% interval")
