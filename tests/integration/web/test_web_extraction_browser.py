"""The extraction form in headless Chromium: the real extractor's abstention is an empty field
with its reason, and the winning number is highlighted inside its evidence sentence."""

from __future__ import annotations

import pytest
from test_web_browser import ARTIFACTS, browser, expect, server, sign_in  # noqa: F401
from test_web_extraction_abstain import _included_record

from db.session import make_engine, make_sessionmaker

pytestmark = [pytest.mark.integration, pytest.mark.browser, pytest.mark.postgres]


def test_abstention_and_winner_in_chromium(server, browser, pg_url):  # noqa: F811
    base, seed = server
    engine = make_engine(pg_url)
    try:
        study_id, reason = _included_record(make_sessionmaker(engine), seed.slug)
    finally:
        engine.dispose()
    page = sign_in(browser, base, "alice")
    page.goto(f"{base}/reviews/{seed.slug}/studies/{study_id}/extraction")
    expect(page.locator("#in-n_total")).to_have_value("")
    expect(page.locator("#abstained-n_total")).to_be_visible()
    expect(page.locator("#abstained-n_total")).to_contain_text("No proposal: " + reason[:20])
    expect(page.locator("#in-n_resorbed")).to_have_value("61")
    winner = page.locator('mark.winner[data-field="n_resorbed"]')
    expect(winner).to_have_text("61")
    expect(winner).to_be_visible()
    inside = page.locator('mark.evidence[data-field="n_resorbed"] mark.winner')
    expect(inside).to_have_count(1)
    colour = winner.evaluate("el => getComputedStyle(el).backgroundColor")
    sentence = page.locator('mark.evidence[data-field="n_resorbed"]').evaluate(
        "el => getComputedStyle(el).backgroundColor"
    )
    assert colour != sentence  # the number stands out from its sentence
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "extraction_abstention.png"), full_page=True)
