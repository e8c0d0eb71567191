"""Browser test (headless Debian Chromium via Playwright) on the LDH review as `living-review
init` sets it up, on PostgreSQL: two reviewers rate risk of bias blind to each other, the admin
sees Cohen's κ and resolves the conflict; the GRADE rating of the prevalence outcome is
proposed from the numbers with reasons, confirmed by a reviewer; the evidence and summary pages
show the seed's tables. Screenshots go to tests/artifacts/ (the README's picture comes from here)."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from db.models import Membership, OutboxEmail, Review, User
from db.session import make_engine, make_sessionmaker
from services.accounts import hash_password
from services.settings import Settings
from services.web import create_app

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.postgres]
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]
PASSWORD = "a long enough password"
SLUG = "ldh_resorption"
ITEMS = ("frame", "sampling", "size", "setting", "coverage", "valid_method", "reliable",
         "statistics", "follow_up")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


SERVED: dict[str, Any] = {}


@pytest.fixture
def server(pg_url: str, tmp_path: Path) -> Iterator[str]:
    import uvicorn

    env = {**os.environ, "DATABASE_URL": pg_url, "DATA_DIR": str(tmp_path / "var")}
    init = subprocess.run([sys.executable, "-m", "services.cli", "init"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert init.returncode == 0, init.stderr
    engine = make_engine(pg_url)
    with make_sessionmaker(engine).begin() as session:
        review = session.scalars(select(Review)).one()
        digest = hash_password(PASSWORD)
        for name, role in (("admin", "admin"), ("alice", "reviewer"), ("bob", "reviewer")):
            user = User(email=f"{name}@example.org", name=name.title(), password_hash=digest)
            session.add(user)
            session.flush()
            session.add(Membership(user_id=user.id, review_id=review.id, role=role))
    settings = Settings(database_url=pg_url, secret_key="evidence-browser-" + "q" * 20,
                        environment="test", base_url="http://127.0.0.1",
                        data_dir=tmp_path / "var", recompute_debounce_seconds=0)
    port = free_port()
    app = create_app(settings)
    SERVED["app"] = app  # the recompute after a confirmation runs after the response
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                       log_level="warning"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(10)
    engine.dispose()


@pytest.fixture
def browser():  # type: ignore[no-untyped-def]
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield chromium
        chromium.close()


def sign_in(browser, base: str, who: str):  # type: ignore[no-untyped-def]
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.goto(f"{base}/reviews/{SLUG}/rob")
    page.fill("input[name=email]", f"{who}@example.org")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(re.compile(rf".*/reviews/{SLUG}/rob$"))
    return page


def rate(page, base: str, study: int, overall: str, differ: dict[str, str] | None = None) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{base}/reviews/{SLUG}/rob/{study}")
    for key in ITEMS:
        answer = (differ or {}).get(key, "yes")
        page.check(f"input[name='item.{key}'][value='{answer}']")
    page.check(f"input[name='overall'][value='{overall}']")
    with page.expect_navigation():
        page.click("#save-rob")
    assert "saved" in page.inner_text(".flash")


def study_ids(page) -> list[int]:  # type: ignore[no-untyped-def]
    return [int(v) for v in page.eval_on_selector_all(
        "#rob-studies tr[data-study]", "rows => rows.map(r => r.dataset.study)")]


def test_dual_rob_kappa_and_resolution_in_chromium(server, browser):
    base = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    alice = sign_in(browser, base, "alice")
    first, second, third = study_ids(alice)[:3]
    # a form left incomplete is refused, naming the items, and nothing is saved
    alice.goto(f"{base}/reviews/{SLUG}/rob/{first}")
    alice.check("input[name='item.frame'][value='yes']")
    with alice.expect_navigation():
        alice.click("#save-rob")
    assert "Nothing was saved" in alice.inner_text("#form-errors")
    assert "required" in alice.inner_text("#item-sampling")
    assert alice.is_checked("input[name='item.frame'][value='yes']")
    rate(alice, base, first, "low")
    rate(alice, base, second, "high")
    rate(alice, base, third, "low")
    bob = sign_in(browser, base, "bob")
    # blind: Bob sees none of Alice's answers, and no state of the study
    bob.goto(f"{base}/reviews/{SLUG}/rob/{first}")
    assert bob.locator("#rob-form input[type=radio]:checked").count() == 0
    bob.goto(f"{base}/reviews/{SLUG}/rob")
    assert bob.locator("td.state").count() == 0
    rate(bob, base, first, "low")
    rate(bob, base, second, "high")
    rate(bob, base, third, "high", {"size": "no"})
    admin = sign_in(browser, base, "admin")
    # overall pairs (low, low), (high, high), (low, high): p_o = 2/3, p_e = 4/9, κ = 0.40
    assert admin.inner_text("#kappa-overall") == "0.40"
    row = admin.locator(f"#rob-studies tr[data-study='{third}']")
    assert "conflict" in row.inner_text() and "size, overall" in row.inner_text()
    assert "agreed" in admin.inner_text(f"#rob-studies tr[data-study='{first}']")
    admin.screenshot(path=str(ARTIFACTS / "web-rob.png"), full_page=True)
    with admin.expect_navigation():
        row.locator("a.resolve").click()
    raters = admin.inner_text("#raters")
    assert "Alice" in raters and "Bob" in raters and "differs" in raters
    admin.check("input[name='item.size'][value='unclear']")
    admin.check("input[name='overall'][value='moderate']")
    with admin.expect_navigation():
        admin.click("#save-rob")
    assert "resolved" in admin.inner_text(".flash")
    assert "resolved moderate" in admin.inner_text(f"#rob-studies tr[data-study='{third}']")
    assert admin.inner_text("#kappa-overall") == "0.40"  # κ compares the raters, not the consensus


def test_grade_of_ldh_prevalence_proposed_with_reasons(server, browser, pg_url):
    base = server
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = sign_in(browser, base, "alice")
    page.goto(f"{base}/reviews/{SLUG}/summary")
    assert "74.0%" in page.inner_text("#sof-prevalence")
    assert page.inner_text("#sof-predictors").startswith("What predicts it")
    assert "17" in page.inner_text("#sof-predictors") and "22" in page.inner_text("#sof-mechanisms")
    inconsistency = page.inner_text("#domain-inconsistency")
    assert "I² = 92%" in inconsistency and "−2" in inconsistency
    assert "15.4 percentage points" in page.inner_text("#domain-imprecision")
    assert "Egger's test z = 3.31" in page.inner_text("#domain-publication_bias")
    assert "not yet rated" in page.inner_text("#domain-risk_of_bias")
    assert page.inner_text("#certainty") == "very low"
    assert page.locator("#funnel svg circle").count() == 30
    # a reviewer departs from a proposal only with a reason
    form = page.locator("#domain-publication_bias form")
    form.locator("select[name=downgrade]").select_option("0")
    with page.expect_navigation():
        form.locator("button").click()
    assert "say why you depart" in page.inner_text("#domain-publication_bias")
    form = page.locator("#domain-publication_bias form")
    form.locator("select[name=downgrade]").select_option("0")
    form.locator("input[name=reason]").fill("small-study effect of proportions, not publication bias")
    with page.expect_navigation():
        form.locator("button").click()
    assert "small-study effect of proportions" in page.inner_text("#domain-publication_bias td.confirmed")
    assert page.inner_text("#certainty") == "very low"  # high − 1 (RoB) − 2 (inconsistency)
    form = page.locator("#domain-inconsistency form")
    form.locator("select[name=downgrade]").select_option("1")
    form.locator("input[name=reason]").fill("the studies agree that most herniations resorb")
    with page.expect_navigation():
        form.locator("button").click()
    assert page.inner_text("#certainty") == "low"  # high − 1 − 1
    assert SERVED["app"].state.recompute.wait_idle(60)
    page.reload()
    assert "certainty of the evidence (resorption): very low → low" in page.inner_text("#changes")
    engine = make_engine(pg_url)
    with make_sessionmaker(engine)() as session:
        digest = session.scalars(select(OutboxEmail).order_by(OutboxEmail.id.desc())).first()
        assert digest is not None
        assert "certainty of the evidence (resorption): very low → low" in digest.body_text
    engine.dispose()
    page.screenshot(path=str(ARTIFACTS / "web-summary.png"), full_page=True)
    page.goto(f"{base}/reviews/{SLUG}/evidence")
    modic = page.inner_text("#factor-summary tr[data-factor='Modic change']")
    assert "Shan et al., 2014" in modic and "1 against resorption" in modic
    assert page.locator("#mechanism-rows tbody tr").count() == 22
    page.screenshot(path=str(ARTIFACTS / "web-evidence.png"), full_page=True)
    page.goto(f"{base}/reviews/{SLUG}")
    assert page.inner_text("#dashboard-predictor-studies") == "17"
    assert page.inner_text("#dashboard-mechanism-studies") == "22"
    assert page.inner_text("#dashboard-certainty") == "low"
    assert "Modic change (3, 1 against resorption)" in page.inner_text("#evidence-card")
