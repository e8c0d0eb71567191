"""The extraction form with the real extractor's proposal: an abstained count is an empty field
with its reason, the winning candidate's number is highlighted inside its evidence sentence, and
the pre-filled values confirm and export unchanged."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from db.models import Record, Review, ReviewRecord, Study
from services.extraction.schema import schema_of
from services.extraction.store import propose_record, store_proposal
from services.reviews import protocol_of

pytestmark = pytest.mark.integration

# Two totals of one stage (two centres): the total is abstained, the outcome count proposed.
ABSTRACT = (
    "METHODS: We included 103 patients from centre A and 87 patients from centre B with lumbar "
    "disc herniation treated conservatively. RESULTS: Regression of the herniation was seen in "
    "61 patients on the control MRI."
)


def _included_record(factory, slug: str) -> tuple[int, str]:
    with factory.begin() as session:
        review = session.scalar(select(Review).where(Review.slug == slug))
        record = Record(
            pmid=32_000_001,
            title="Regression of lumbar disc herniation in two centres",
            abstract=ABSTRACT,
            journal="Spine",
            year=2025,
            first_author="Epsilon",
            content_hash="abstain",
            languages=["eng"],
        )
        session.add(record)
        session.flush()
        study = Study(
            review_id=review.id,
            record_id=record.id,
            label="Epsilon et al., 2025",
            source="screening",
            title=record.title,
            year=2025,
        )
        session.add(study)
        session.flush()
        session.add(
            ReviewRecord(
                review_id=review.id,
                record_id=record.id,
                state="included",
                stage="full_text",
                study_id=study.id,
            )
        )
        schema = schema_of(protocol_of(review))  # as the product builds it
        proposal = propose_record(record, schema)
        store_proposal(session=session, review_id=review.id, record_id=record.id, proposal=proposal)
        return study.id, proposal.abstained["n_total"].reason


def test_abstention_is_an_empty_field_with_its_reason_and_winner_is_highlighted(
    seed, make_client, factory
):
    study_id, reason = _included_record(factory, seed.slug)
    assert reason.startswith("2 candidate totals")
    alice = make_client("alice")
    page = alice.get(f"/reviews/{seed.slug}/studies/{study_id}/extraction")
    assert page.status_code == 200
    html = page.text
    # the abstained total: an empty input and the reason beside it, with both candidates
    assert 'name="n_total" id="in-n_total" value=""' in html
    note = re.search(r'<p class="proposal abstained" id="abstained-n_total">(.*?)</p>', html, re.S)
    assert note is not None
    assert "No proposal: 2 candidate totals" in note.group(1)
    assert "103" in note.group(1) and "87" in note.group(1)
    # the outcome count: pre-filled, its reason shown, its number marked inside its sentence
    assert 'name="n_resorbed" id="in-n_resorbed" value="61"' in html
    assert re.search(
        r'<mark class="evidence" data-field="n_resorbed">[^<]*seen in '
        r'<mark class="winner" data-field="n_resorbed">61</mark>',
        html,
    )
    assert "count.bare" not in html  # the reason is shown, not a rule id


def test_confirming_the_prefilled_proposal_keeps_its_values(seed, make_client, factory):
    study_id, _ = _included_record(factory, seed.slug)
    alice = make_client("alice")
    token = alice.headers.pop("X-CSRF-Token")
    refused = alice.post(
        f"/reviews/{seed.slug}/studies/{study_id}/extraction",
        data={"csrf_token": token, "n_total": "", "n_resorbed": "61"},
    )
    assert refused.status_code == 422  # the abstained total is required: the reviewer fills it
    assert "required" in refused.text
    ok = alice.post(
        f"/reviews/{seed.slug}/studies/{study_id}/extraction",
        data={"csrf_token": token, "n_total": "190", "n_resorbed": "61"},
    )
    assert ok.status_code == 303
    alice.headers["X-CSRF-Token"] = token
    history = alice.get(f"/api/reviews/{seed.slug}/studies/{study_id}/extractions").json()
    assert history[0]["data"]["n_total"] == 190 and history[0]["data"]["n_resorbed"] == 61
