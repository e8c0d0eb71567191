"""A reviewer's day on the demo (issue 14), in headless Chromium against uvicorn on PostgreSQL.

One database, one server and one browser for the module: the demo is set up with the real
command line (``init`` + the two demo updates, as ``scripts/demo`` does), then a reviewer screens
the demo's queue at 1366 px (the retracted record among it), confirms data, and every screen is
checked; the same pages are then checked at 390 px for horizontal overflow. The tests run in
file order and build on each other (the flow of one day). Screenshots go to tests/artifacts/
and docs/images/ (the README's pictures: web-queue.png, web-dashboard.png, web-phone.png).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import (
    AuditLog,
    EstimateSnapshot,
    OutboxEmail,
    Record,
    Review,
    ReviewRecord,
    SearchRun,
    Study,
)
from db.session import make_engine, make_sessionmaker
from services.accounts import add_user
from services.settings import Settings
from services.web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[3]
SCREENSHOTS = ROOT / "docs" / "images"  # the README's pictures, re-taken by this test
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "reviewer-day-password"
SLUG = "ldh_resorption"
RETRACTED_PMID = 99000102  # the demo's week-2 retraction notice (99000203) names it
INCLUDE = {99000101, RETRACTED_PMID, 99000201}  # sent on at title/abstract
FULL_TEXT_EXCLUDE = 99000201  # excluded at full text with a reason
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo_db(pg_template: str) -> Iterator[str]:
    """A PostgreSQL database set up as ``scripts/demo`` does, through the real CLI."""
    import psycopg

    admin_url = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"lr_day_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{pg_template}"')
    base = admin_url.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
    url = f"{base}/{name}"
    for args in (
        ["init", "--review", SLUG],
        ["update", "--review", SLUG, "--snapshot", "demo", "--until", "2024-01-07"],
        ["update", "--review", SLUG, "--snapshot", "demo", "--until", "2024-01-14"],
    ):
        cli(url, *args)
    yield url
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cli(url: str, *args: str) -> str:
    env = {**os.environ, "DATABASE_URL": url, "REDIS_URL": ""}
    env.pop("REDIS_URL")
    done = subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def factory(demo_db: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(demo_db)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def server(demo_db: str, factory, tmp_path_factory) -> Iterator[tuple[str, Any]]:  # type: ignore[no-untyped-def]
    import uvicorn

    with factory() as session, session.begin():
        review = session.scalars(select(Review).where(Review.slug == SLUG)).one()
        add_user(session=session, email="rita@example.org", name="Rita", password=PASSWORD,
                 role="admin", review=review)
    settings = Settings(
        database_url=demo_db,
        secret_key="reviewer-day-" + "z" * 24,
        environment="test",
        base_url="http://127.0.0.1",
        data_dir=tmp_path_factory.mktemp("var"),
        recompute_debounce_seconds=0.5,
    )
    app = create_app(settings)
    port = free_port()
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert uv.started
    yield f"http://127.0.0.1:{port}", app
    uv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def browser(chromium_path: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def rita(server, browser):  # type: ignore[no-untyped-def]
    """Rita, admin of the demo review, signed in at 1366 px."""
    base, _ = server
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{base}/login")
    page.fill("input[name=email]", "rita@example.org")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    yield page
    context.close()


def prisma(page, base: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = page.request.get(f"{base}/api/reviews/{SLUG}/prisma")
    assert response.ok
    return response.json()


def check_prisma_sums(counts: dict[str, Any], factory) -> None:  # type: ignore[no-untyped-def]
    """Every box of the flow, summed here, and against the database."""
    with factory() as session:
        review = session.scalars(select(Review).where(Review.slug == SLUG)).one()
        in_review = ReviewRecord.review_id == review.id

        def n(*conditions: Any) -> int:
            return int(session.scalar(select(func.count(ReviewRecord.id)).where(in_review, *conditions)) or 0)

        def studies(source: str, status: str) -> int:
            return int(session.scalar(select(func.count(Study.id)).where(
                Study.review_id == review.id, Study.source == source, Study.status == status)) or 0)

        latest_k = session.scalar(select(EstimateSnapshot.k).where(
            EstimateSnapshot.review_id == review.id).order_by(EstimateSnapshot.id.desc()).limit(1))
        assert counts["identified"] == n()
        assert counts["duplicates"] == n(ReviewRecord.state == "linked")
        assert counts["auto_excluded_rule"] + counts["auto_excluded_model"] == n(
            ReviewRecord.state == "auto_excluded")
        assert counts["awaiting"] == n(ReviewRecord.state == "queued", ReviewRecord.stage == "title_abstract")
        assert counts["awaiting_full_text"] == n(ReviewRecord.state == "queued", ReviewRecord.stage == "full_text")
        assert counts["excluded_title_abstract"] == n(
            ReviewRecord.state == "excluded", ReviewRecord.stage == "title_abstract")
        assert counts["previous_studies"] == studies("baseline", "included") + studies("baseline", "retracted")
        assert counts["new_studies"] == studies("screening", "included")
        assert counts["new_retracted"] == studies("screening", "retracted")
        assert counts["total_studies"] == studies("baseline", "included") + studies("screening", "included")
        assert counts["pooled_k"] == latest_k
    # the flow adds up, box by box
    assert counts["identified"] == (
        counts["duplicates"] + counts["auto_excluded_rule"] + counts["auto_excluded_model"]
        + counts["awaiting_automation"] + counts["screened"]
    )
    assert counts["identified"] == sum(u["identified"] for u in counts["per_update"])
    assert counts["screened"] == counts["excluded_title_abstract"] + counts["awaiting"] + counts["sought"]
    assert counts["sought"] == (
        counts["not_retrieved"] + counts["full_text_assessed"] + counts["awaiting_full_text"]
    )
    assert counts["full_text_assessed"] == (
        sum(counts["excluded_full_text"].values()) + counts["new_studies"] + counts["new_retracted"]
    )
    assert counts["total_studies"] == (
        counts["previous_studies"] - counts["previous_retracted"] + counts["new_studies"]
    )
    assert counts["with_outcome_data"] >= (counts["pooled_k"] or 0)


def no_overflow(page) -> None:  # type: ignore[no-untyped-def]
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], f"{page.url}: {widths[0]} px wide at {widths[1]} px"


def press(page, key: str) -> None:  # type: ignore[no-untyped-def]
    with page.expect_navigation():
        page.keyboard.press(key)


def test_prisma_adds_up_after_the_demo(server, rita, factory):
    base, _ = server
    counts = prisma(rita, base)
    assert counts["previous_studies"] == 59  # the seed's included studies, not its 90 references
    assert counts["identified"] == 19 and counts["awaiting"] == 10
    check_prisma_sums(counts, factory)


def test_screen_the_demo_queue_retraction_marked(server, rita):
    """Title/abstract then full text at 1366 px: the retracted record is flagged on its card,
    with its notice; the full-text card shows the title/abstract decision and note."""
    base, _ = server
    page = rita
    page.goto(f"{base}/reviews/{SLUG}/screen?stage=title_abstract")
    seen = []
    while page.locator("#record").count():
        pmid = int(page.get_attribute("#record", "data-pmid"))
        seen.append(pmid)
        assert page.inner_text("#authors").strip()  # authors on every card
        if pmid == RETRACTED_PMID:
            flags = page.inner_text("#flags")
            assert "Retracted" in flags and "PMID 99000203" in flags
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "web-queue.png"), full_page=True)
        if pmid == 99000110:
            assert "No abstract" in page.inner_text("#flags")
        if pmid in INCLUDE:
            page.keyboard.press("n")
            page.keyboard.type(f"note on {pmid}")
            page.keyboard.press("Escape")
            press(page, "i")
        else:
            press(page, "1")
        assert re.search(r"PMID \d+", page.inner_text(".flash"))  # named, not an internal id
    assert sorted(seen) == sorted(
        [99000101, 99000102, 99000107, 99000108, 99000109, 99000110, 99000201, 99000205,
         99000206, 99000209]
    )
    assert "Nothing left for you" in page.inner_text("#queue-empty")
    page.goto(f"{base}/reviews/{SLUG}/screen?stage=full_text")
    while page.locator("#record").count():
        pmid = int(page.get_attribute("#record", "data-pmid"))
        earlier = page.inner_text("#earlier")
        assert "Rita" in earlier and "include" in earlier and f"note on {pmid}" in earlier
        if pmid == RETRACTED_PMID:
            assert "Retracted" in page.inner_text("#flags")
        press(page, "8" if pmid == FULL_TEXT_EXCLUDE else "i")


def test_retraction_on_studies_and_extraction_and_left_out_of_pooling(server, rita, factory):
    base, app = server
    page = rita
    page.goto(f"{base}/reviews/{SLUG}/studies")
    with factory() as session:
        rows = {
            r.pmid: s for s, r in session.execute(
                select(Study, Record).join(Record, Record.id == Study.record_id)
                .where(Study.source == "screening"))
        }
    retracted, fresh = rows[RETRACTED_PMID], rows[99000101]
    assert retracted.status == "retracted" and fresh.status == "included"
    assert "retracted" in page.inner_text(f"tr[data-study='{retracted.id}']")
    assert "retracted" not in page.inner_text(f"tr[data-study='{fresh.id}']")
    for study, total, events in ((retracted, "118", "97"), (fresh, "62", "41")):
        page.goto(f"{base}/reviews/{SLUG}/studies/{study.id}/extraction")
        assert (page.locator("#retracted").count() == 1) == (study is retracted)
        page.fill("#in-n_total", total)
        page.fill("#in-n_resorbed", events)
        with page.expect_navigation():
            page.click("#confirm")
        if page.locator("#form-errors").count():
            # a proposal outside the vocabulary (issue 14 item 2, the extraction helper's):
            # the reviewer clears those fields by hand, as observed
            for field in page.locator(".field.invalid select").all():
                field.select_option("")
            with page.expect_navigation():
                page.click("#confirm")
        errors = [e.inner_text() for e in page.locator(".field-error").all()]
        assert page.locator(".flash").count(), (page.url, errors, page.content()[:3000])
        assert "being recomputed" in page.inner_text(".flash")
    assert app.state.recompute.wait_idle(120)
    with factory() as session:
        latest = session.scalars(
            select(EstimateSnapshot).order_by(EstimateSnapshot.id.desc()).limit(1)).one()
        confirmations = session.scalar(select(func.count(EstimateSnapshot.id)).where(
            EstimateSnapshot.trigger == "confirmation"))
    assert retracted.id not in latest.study_ids and fresh.id in latest.study_ids
    assert latest.k == 31  # 30 baseline studies pooled + the new one; the retracted one out
    assert latest.result["retracted_ids"] == [retracted.id]
    assert latest.result["sensitivity"]["k"] == 32
    assert any(f["code"] == "retracted" and f["excludes"] for f in latest.audit)
    assert confirmations >= 1
    page.goto(f"{base}/reviews/{SLUG}")
    sensitivity = page.inner_text("#sensitivity")
    assert retracted.label in sensitivity and "k = 32" in sensitivity
    audit = page.inner_text("#audit")
    assert "Retracted study" in audit and "PMID 99000203" in audit
    assert "percent_mismatch" not in audit and "headline_mismatch" not in audit
    assert audit.count("left out of pooling") == audit.count("(left out of pooling)")
    lines = [li.inner_text() for li in page.locator("#audit li").all()]
    assert len(lines) == len(set(lines))
    history = page.inner_text("#history")
    assert f"+ {fresh.label}" in history and "retracted" in history
    svg = page.request.get(f"{base}/reviews/{SLUG}/forest.svg").text()
    assert "Left out" in svg and "(new)" in svg
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / "web-dashboard.png"), full_page=True)


def test_digest_reports_the_retraction_and_status_counts_it(server, factory, demo_db):
    with factory() as session:
        digests = list(session.scalars(
            select(OutboxEmail).join(EstimateSnapshot, EstimateSnapshot.id == OutboxEmail.snapshot_id)
            .where(EstimateSnapshot.trigger == "confirmation").order_by(OutboxEmail.id)))
    reporting = [d for d in digests if "Retracted studies (left out of pooling)" in d.body_text]
    assert len(reporting) == 1  # reported once, when the retracted study's data arrived
    text = reporting[0].body_text
    assert "PMID 99000102" in text.split("Retracted studies (left out of pooling)")[1]
    newly = text.split("Newly included studies:")[1].split("\n\n")[0] if "Newly included" in text else ""
    assert "99000102" not in newly
    assert "The best estimate is now" in text and "With the retracted study kept it would be" in text
    new_study = next(d for d in digests if "Newly included studies" in d.body_text)
    html = new_study.body_html
    assert 'href="https://pubmed.ncbi.nlm.nih.gov/99000101/"' in html
    assert 'width="600"' in html and "max-width: 600px" in html
    assert "/queue" not in html
    status = json.loads(cli(demo_db, "status", "--json"))[0]
    assert status["studies_retracted"] == 1 and status["records_retracted"] == 1


def test_prisma_adds_up_after_screening(server, rita, factory):
    base, _ = server
    counts = prisma(rita, base)
    assert counts["new_studies"] == 1 and counts["new_retracted"] == 1
    assert counts["excluded_full_text"] == {"No usable data": 1}
    assert counts["total_studies"] == 60
    check_prisma_sums(counts, factory)
    svg = rita.request.get(f"{base}/reviews/{SLUG}/prisma.svg").text()
    assert "Reports sought for retrieval" in svg and "Reports not retrieved" in svg


def test_my_decisions_filter_search_change(server, rita, factory):
    base, _ = server
    page = rita
    page.goto(f"{base}/reviews/{SLUG}/decisions?decision=exclude&stage=title_abstract")
    cards = page.locator("article.decision")
    assert cards.count() == 7
    page.fill("input[name=q]", "99000205")
    with page.expect_navigation():
        page.click("#filters button[type=submit]")
    assert page.locator("article.decision").count() == 1
    card = page.locator("article.decision[data-pmid='99000205']")
    with page.expect_navigation():
        card.locator("button.maybe").click()
    flash = page.inner_text(".flash")
    assert "Changed to maybe" in flash and "PMID 99000205" in flash
    with factory() as session:
        rr = session.scalars(select(ReviewRecord).join(Record).where(Record.pmid == 99000205)).one()
        assert (rr.state, rr.stage) == ("queued", "full_text")
    log = page.request.get(f"{base}/api/reviews/{SLUG}/audit-log").json()
    change = next(r for r in log if r["action"] == "decision.changed")
    assert (change["detail"]["before"], change["detail"]["after"]) == ("exclude", "maybe")


def test_dashboard_runs_and_audit_log_paging(server, rita, factory):
    base, _ = server
    with factory() as session, session.begin():
        review = session.scalars(select(Review).where(Review.slug == SLUG)).one()
        session.add(SearchRun(review_id=review.id, status="harvested", error="boom: E-utilities down", query="q",
                              window_start=dt.date(2024, 1, 14), window_end=dt.date(2024, 1, 15)))
        # enough lines for two pages, each with a long detail that must wrap inside its card
        session.add_all(AuditLog(review_id=review.id, action="test.line", entity="test", entity_id=i,
                                 detail={"text": "x" * 300}) for i in range(30))
    rita.goto(f"{base}/reviews/{SLUG}")
    newest = rita.locator("#runs tbody tr").first
    assert "failed" in newest.inner_text() and "running" not in newest.inner_text()
    pager = rita.inner_text("#audit-log .pager")
    assert "Page 1 of" in pager
    pages = int(pager.split("Page 1 of")[1].split()[0])
    assert pages >= 2 and rita.locator("#audit-log tbody tr").count() == 25
    with rita.expect_navigation():
        rita.click("#audit-log a[rel=next]")
    assert "Page 2 of" in rita.inner_text("#audit-log .pager")
    card = rita.locator("#audit-log").bounding_box()
    table = rita.locator("#audit-log table").bounding_box()
    assert table["x"] + table["width"] <= card["x"] + card["width"] + 1  # no overflow of its card


def test_help_box_closes_and_covers_no_button(server, rita):
    base, _ = server
    rita.goto(f"{base}/reviews/{SLUG}/screen?stage=full_text")
    assert rita.locator("#record").count() == 1
    rita.keyboard.press("?")
    help_box = rita.locator("#help")
    assert help_box.is_visible()
    box = help_box.bounding_box()
    for button in rita.locator("#decide button").all():
        b = button.bounding_box()
        overlap = not (b["x"] + b["width"] <= box["x"] or box["x"] + box["width"] <= b["x"]
                       or b["y"] + b["height"] <= box["y"] or box["y"] + box["height"] <= b["y"])
        assert not overlap, button.inner_text()
    rita.click("#help button.close")
    assert not help_box.is_visible()


def test_api_docs_render_offline_under_the_csp(server, browser):
    base, _ = server
    context = browser.new_context(viewport=DESKTOP)
    outside: list[str] = []

    def only_local(route):  # type: ignore[no-untyped-def]
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context.route("**/*", only_local)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.goto(f"{base}/api/docs")
    page.wait_for_selector(".opblock", timeout=30_000)
    assert page.locator(".opblock").count() >= 10
    assert outside == [] and violations == []
    context.close()


def test_main_pages_fit_a_phone(server, browser, factory):
    base, _ = server
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True)
    page = context.new_page()
    page.goto(f"{base}/login")
    no_overflow(page)
    page.fill("input[name=email]", "rita@example.org")
    page.fill("input[name=password]", PASSWORD)
    with page.expect_navigation():
        page.click("button[type=submit]")
    with factory() as session:
        study = session.scalars(select(Study).where(Study.source == "screening")).first()
    paths = {
        "queue": f"/reviews/{SLUG}/screen?stage=title_abstract",
        "record": f"/reviews/{SLUG}/screen?stage=full_text",
        "extraction": f"/reviews/{SLUG}/studies/{study.id}/extraction",
        "studies": f"/reviews/{SLUG}/studies",
        "conflicts": f"/reviews/{SLUG}/conflicts",
        "decisions": f"/reviews/{SLUG}/decisions",
        "dashboard": f"/reviews/{SLUG}",
    }
    for name, path in paths.items():
        page.goto(base + path)
        no_overflow(page)
        if name == "record":
            assert page.locator("#record").count() == 1
            page.keyboard.press("?")
            no_overflow(page)
            page.screenshot(path=str(SCREENSHOTS / "web-phone.png"), full_page=True)
    context.close()
