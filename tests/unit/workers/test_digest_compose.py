"""Digest composition: the old → new table, lists, PRISMA counts, subject, HTML escaping."""

from __future__ import annotations

from services.digest.compose import DigestContent, cell, render_html, render_text, subject
from services.digest.triggers import notify_reasons

OLD = {
    "estimate": 0.6632,
    "ci_low": 0.5821,
    "ci_high": 0.7354,
    "pi_low": 0.31,
    "pi_high": 0.89,
    "i2": 91.234,
    "k": 31,
}
NEW = {
    "estimate": 0.6412,
    "ci_low": 0.5612,
    "ci_high": 0.7140,
    "pi_low": 0.29,
    "pi_high": 0.88,
    "i2": 90.1,
    "k": 32,
}


def content(**kw: object) -> DigestContent:
    base: dict[str, object] = dict(
        review_slug="ldh",
        review_title="LDH <resorption>",
        old=OLD,
        new=NEW,
        reasons=["k changed from 31 to 32"],
        new_studies=["Smith 2025"],
        retractions=["Doe 2019 (retracted)"],
        prisma={"identified": 120, "new": 100, "auto_excluded": 90, "queued": 9, "included": 1},
        queue_size=9,
        queue_url="http://x/reviews/ldh/screen",
    )
    base.update(kw)
    return DigestContent(**base)  # type: ignore[arg-type]


def test_cells_format_percentages_and_intervals() -> None:
    assert cell(OLD, "estimate") == "66.3%"
    assert cell(OLD, "ci") == "58.2–73.5%"
    assert cell(OLD, "pi") == "31.0–89.0%"
    assert cell(OLD, "i2") == "91.2%"
    assert cell(OLD, "k") == "31"
    assert cell(None, "k") == "–"
    assert cell({"estimate": None}, "ci") == "–"


def test_text_body_has_table_lists_counts_and_link() -> None:
    text = render_text(content())
    table = [line for line in text.splitlines() if line.startswith("Pooled estimate")]
    assert table and "66.3%" in table[0] and "64.1%" in table[0]
    assert "Studies (k)" in text and " 31 " in text.replace("\n", " ")
    assert "  - Smith 2025" in text
    assert "Doe 2019 (retracted)" in text
    assert "Records identified (this update): 120" in text
    assert "Records waiting for screening: 9" in text
    assert "Screen them at http://x/reviews/ldh/screen" in text


def test_html_escapes_and_references_inline_image() -> None:
    html = render_html(content(), "forest.7@example.org")
    assert "LDH &lt;resorption&gt;" in html
    assert 'src="cid:forest.7@example.org"' in html
    assert "<td>66.3%</td><td>64.1%</td>" in html
    assert render_html(content(), None).count("<img") == 0


def test_subject_names_old_and_new() -> None:
    assert subject(content()) == "[living-review] LDH <resorption>: 66.3% (k=31) → 64.1% (k=32)"
    assert "→" not in subject(content(old=None))


def test_notify_reasons_reads_compare_output() -> None:
    assert notify_reasons({"reasons": ["a", {"message": "b"}, {}]}, {}) == ["a", "b"]
    assert notify_reasons({"reasons": []}, {}) == []
    assert notify_reasons({"changed": False}, {}) == []
    assert notify_reasons({"changed": True, "summary": "moved"}, {}) == ["moved"]


def test_meaning_sentence_links_and_phone_width() -> None:
    """Issue 14 item 3: what the change means, PubMed links, an image that fits a phone."""
    c = content(links={"Smith 2025": "https://pubmed.ncbi.nlm.nih.gov/123/"},
                sensitivity={"estimate": 0.65}, forest_png=b"png")
    text, html = render_text(c), render_html(c, "forest.1@x")
    assert ("The best estimate is now 64.1% (95% CI 56.1–71.4%) from 32 studies, 2.2 points "
            "lower than before; the intervals overlap, so the conclusion stands.") in text
    assert "With the retracted study kept it would be 65.0%." in text
    assert "Smith 2025 <https://pubmed.ncbi.nlm.nih.gov/123/>" in text
    assert '<a href="https://pubmed.ncbi.nlm.nih.gov/123/">Smith 2025</a>' in html
    assert 'width="600"' in html and "max-width: 600px" in html and "height: auto" in html
    assert "Retracted studies (left out of pooling)" in text


def test_no_screen_link_without_waiting_records_and_plain_no_change() -> None:
    c = content(queue_size=0, reasons=[], changed=False)
    text, html = render_text(c), render_html(c, None)
    assert "Screen them" not in text and "screen them" not in html
    assert "Records waiting for screening: 0" in text
    assert "The evidence changed" not in text and "The evidence changed" not in html
    assert "No change in the evidence that passes the digest's thresholds." in text
    assert "– No change" not in text
