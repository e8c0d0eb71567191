"""Dashboard, PRISMA diagram, exports and the OpenAPI document."""

from __future__ import annotations

import csv
import io

import pytest

pytestmark = pytest.mark.integration
REASON = "Case report"


def test_dashboard_prisma_and_exports(seed, make_client):
    admin = make_client("admin")
    slug = seed.slug
    admin.post(
        f"/api/reviews/{slug}/decisions",
        json={"review_record_id": seed.queued[0], "decision": "exclude", "reason": REASON},
    )
    admin.post(
        f"/api/reviews/{slug}/decisions",
        json={"review_record_id": seed.queued[2], "decision": "include"},
    )
    admin.post(
        f"/api/reviews/{slug}/decisions",
        json={
            "review_record_id": seed.queued[2],
            "stage": "full_text",
            "decision": "exclude",
            "reason": "No usable data",
        },
    )
    page = admin.get(f"/reviews/{slug}")
    assert page.status_code == 200
    assert 'id="pooled">' in page.text and "k = 3" in page.text
    prisma = admin.get(f"/api/reviews/{slug}/prisma").json()
    assert prisma["previous_studies"] == 3
    assert prisma["identified"] == 7  # 6 queued + the included record
    assert prisma["excluded_title_abstract"] == 1
    assert prisma["excluded_full_text"] == {"No usable data": 1}
    assert prisma["awaiting"] == 4 and prisma["new_studies"] == 1 and prisma["total_studies"] == 4
    svg = admin.get(f"/reviews/{slug}/prisma.svg")
    assert svg.headers["content-type"].startswith("image/svg+xml")
    assert "No usable data: 1" in svg.text and "Studies included in previous version: 3" in svg.text
    forest = admin.get(f"/reviews/{slug}/forest.svg")
    assert forest.status_code == 200 and "<svg" in forest.text
    rows = list(csv.DictReader(io.StringIO(admin.get(f"/reviews/{slug}/export/records.csv").text)))
    by_pmid = {r["pmid"]: r for r in rows}
    assert by_pmid["30000000"]["decision"] == "exclude" and by_pmid["30000000"]["reason"] == REASON
    assert by_pmid["30000002"]["stage"] == "full_text"
    assert by_pmid["30000003"]["decision"] == ""
    ris = admin.get(f"/reviews/{slug}/export/records.ris").text
    assert ris.count("TY  - JOUR") == 7  # 6 screened + the included record
    assert f"N1  - Screening: exclude (title_abstract); reason: {REASON}" in ris
    assert by_pmid["31000000"]["decision"] == "include"
    studies = list(
        csv.DictReader(io.StringIO(admin.get(f"/reviews/{slug}/export/studies.csv").text))
    )
    assert [s["n_total"] for s in studies[:3]] == ["40", "60", "50"]


def test_openapi_lists_the_api(seed, make_client):
    spec = make_client().get("/api/openapi.json").json()
    for path in (
        "/api/session",
        "/api/reviews/{slug}/queue/next",
        "/api/reviews/{slug}/decisions",
        "/api/reviews/{slug}/conflicts/{review_record_id}/resolve",
        "/api/reviews/{slug}/studies/{study_id}/extractions",
        "/api/reviews/{slug}/agreement",
    ):
        assert path in spec["paths"], path


def test_dashboard_lists_what_a_run_held_in_quarantine(seed, make_client, factory):
    import datetime as dt

    from db.models import SearchRun

    held = [{"pmid": "99000302xb", "reason": "PMID '99000302xb' is not a number written in digits 0-9"}]
    with factory.begin() as session:
        session.add(SearchRun(review_id=seed.review_id, status="succeeded", query="q",
                              window_start=dt.date(2024, 1, 1), window_end=dt.date(2024, 1, 7),
                              stats={"quarantined": held, "skipped": []}))
    page = make_client("admin").get(f"/reviews/{seed.slug}")
    assert page.status_code == 200
    assert "1 held in quarantine: PMID 99000302xb (PMID &#39;99000302xb&#39; is not a number" in page.text
