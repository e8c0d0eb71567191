"""Browser test: headless Debian Chromium (Playwright, no browser download) against the app
served by uvicorn on a real PostgreSQL database. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker
from web_seed import PASSWORD, Seed, seed_database

from db.session import make_engine, make_sessionmaker
from services.settings import Settings
from services.web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.postgres]
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[tuple[str, Seed]]:
    import uvicorn

    engine = make_engine(pg_url)
    factory: sessionmaker[Session] = make_sessionmaker(engine)
    seed = seed_database(factory, reviewers_per_record=2, n_queued=6)
    settings = Settings(
        database_url=pg_url,
        secret_key="browser-test-" + "y" * 20,
        environment="test",
        base_url="http://127.0.0.1",
        queue_refit_seconds=None,  # asserts the seeded order; test_web_active_learning refits
        data_dir=tmp_path / "var",
        recompute_debounce_seconds=0,
    )
    port = free_port()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    seed.app = app  # type: ignore[attr-defined]
    yield f"http://127.0.0.1:{port}", seed
    uv.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.fixture
def browser(chromium_path: str):  # type: ignore[no-untyped-def]
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=chromium_path, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def sign_in(browser, base: str, who: str):  # type: ignore[no-untyped-def]
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(f"{base}/reviews/ldh_resorption/screen")
    assert "/login" in page.url
    page.fill("input[name=email]", f"{who}@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(r".*/reviews/ldh_resorption/screen.*"))
    return page


def expect(locator):  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def current_record(page) -> int:  # type: ignore[no-untyped-def]
    return int(page.get_attribute("#record", "data-review-record"))


def press(page, key: str) -> None:  # type: ignore[no-untyped-def]
    with page.expect_navigation():
        page.keyboard.press(key)


def test_screen_undo_resolve_confirm_in_chromium(server, browser):
    base, seed = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice = sign_in(browser, base, "alice")
    assert current_record(alice) == seed.queued[0]
    assert alice.locator("#record-title mark.kw").count() >= 1
    expect(alice.locator(".progress")).to_have_attribute("data-loaded", "1")
    alice.screenshot(path=str(ARTIFACTS / "web-queue.png"), full_page=True)
    # three records with the keyboard: include, exclude with reason 4 (Case report), maybe
    press(alice, "i")
    assert current_record(alice) == seed.queued[1]
    # the record with <script> in its title is shown as text
    assert "<script>alert('x')</script>" in alice.inner_text("#record-title")
    press(alice, "4")
    press(alice, "m")
    assert current_record(alice) == seed.queued[3]
    expect(alice.locator("#done")).to_have_text("Done by you: 3")
    # undo the last one (maybe on record 2): it comes back, named by title and PMID
    press(alice, "u")
    assert "Undone: maybe" in alice.inner_text(".flash")
    assert re.search(r"PMID 3000000\d", alice.inner_text(".flash"))
    assert current_record(alice) == seed.queued[2]
    expect(alice.locator("#done")).to_have_text("Done by you: 2")
    expect(alice.locator("#left")).to_have_text("Left for you: 4")
    # note via keyboard: n focuses the note, Escape leaves it, then exclude with reason 1
    alice.keyboard.press("n")
    alice.keyboard.type("no disc herniation")
    alice.keyboard.press("Escape")
    press(alice, "1")
    # Bob screens record 0 the other way: a conflict
    bob = sign_in(browser, base, "bob")
    assert current_record(bob) == seed.queued[0]
    press(bob, "2")
    # carol screened nothing; bob's decided records wait for alice or the admin: his queue says so
    for _ in range(5):
        if bob.locator("#record").count() == 0:
            break
        press(bob, "i")
    assert "wait for the other reviewer or for an admin" in bob.inner_text("#queue-empty") or (
        "waits for the other reviewer or for an admin" in bob.inner_text("#queue-empty")
    )
    # the admin resolves it on the conflicts page
    admin = sign_in(browser, base, "admin")
    admin.goto(f"{base}/reviews/ldh_resorption/conflicts")
    conflict = admin.locator(f"article.conflict[data-review-record='{seed.queued[0]}']")
    assert "Alice: include" in conflict.inner_text() and "Bob: exclude" in conflict.inner_text()
    assert "Abstract 0 about regression" in conflict.locator(".abstract").inner_text()
    assert "maybe counts with include" in admin.inner_text("#kappa-rule")
    admin.screenshot(path=str(ARTIFACTS / "web-conflicts.png"), full_page=True)
    with admin.expect_navigation():
        conflict.locator("button.include").click()
    assert "Resolved “Record 0: spontaneous resorption" in admin.inner_text(".flash")
    assert "(PMID 30000000): include" in admin.inner_text(".flash")
    assert admin.locator(f"article.conflict[data-review-record='{seed.queued[0]}']").count() == 0
    # confirm an extraction and see the pooled estimate on the dashboard change
    admin.goto(f"{base}/reviews/ldh_resorption")
    before = admin.inner_text("#pooled")
    assert "k = 3" in admin.inner_text("#estimate")
    admin.goto(f"{base}/reviews/ldh_resorption/studies/{seed.included_study}/extraction")
    assert admin.input_value("#in-n_total") == "80"
    assert admin.locator("mark.evidence").count() >= 1
    admin.fill("#in-n_resorbed", "95")
    with admin.expect_navigation():
        admin.click("#confirm")
    assert "95 is more than the total (80)" in admin.inner_text("#field-n_resorbed")
    admin.fill("#in-n_resorbed", "20")
    admin.select_option("#in-design", "Prospective")
    with admin.expect_navigation():
        admin.click("#confirm")
    assert "being recomputed" in admin.inner_text(".flash")
    admin.screenshot(path=str(ARTIFACTS / "web-extraction.png"), full_page=True)
    assert seed.app.state.recompute.wait_idle(60)  # the recompute runs after the response
    admin.goto(f"{base}/reviews/ldh_resorption")
    after = admin.inner_text("#pooled")
    assert "k = 4" in admin.inner_text("#estimate")
    assert after != before and float(after.rstrip("%")) < float(before.rstrip("%"))
    admin.wait_for_selector("img.plot")
    admin.screenshot(path=str(ARTIFACTS / "web-dashboard.png"), full_page=True)
    for name in ("web-queue.png", "web-conflicts.png", "web-extraction.png", "web-dashboard.png"):
        assert (ARTIFACTS / name).stat().st_size > 10_000
