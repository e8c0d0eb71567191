"""Issue 14 item 2: a machine proposal round-trips unchanged (value and unit) from the stored
proposal to the pre-filled form to the confirmed data and the studies export, for every field
type of the protocol's schema (int, choice, text, list); a list proposed for a single choice is
not forced in but shown as a hint; the hints show values and reasons, not raw lists or rule ids."""

from __future__ import annotations

import csv
import io
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from db.models import Record, Review, ReviewRecord, Study
from services.extraction.schema import schema_of
from services.extraction.store import propose_record, store_proposal
from services.reviews import protocol_of

pytestmark = pytest.mark.integration

ABSTRACT = (
    "METHODS: In this prospective study from Japan, 58 patients aged 24 to 68 years (31 women "
    "and 27 men) with a lumbar disc extrusion were treated conservatively and re-examined with "
    "MRI at 12 months. RESULTS: Resorption was seen in 41 of 58 patients (70.7%). Rim "
    "enhancement was associated with resorption, and macrophage infiltration with TNF-α "
    "expression was found in surgical specimens."
)
TWO_TYPES = (
    "We followed 40 patients with lumbar disc protrusion or extrusion for 6 months with MRI. "
    "Regression occurred in 22 of 40 patients."
)


class FormValues(HTMLParser):
    """What a browser would submit for the form: inputs, selected options, checked boxes."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._select: str | None = None
        self._chosen: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        name = a.get("name") or ""
        if tag == "input" and a.get("type") == "checkbox":
            if "checked" in a:
                self.values.setdefault(name, []).append(a.get("value") or "")
        elif tag == "input" and name:
            self.values[name] = [a.get("value") or ""]
        elif tag == "select":
            self._select = name
            self.values.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = [a.get("value") or ""]
            self._chosen.add(self._select)
        elif tag == "option" and self._select and self._select not in self._chosen:
            # A browser submits the first option of a select where none is selected.
            self.values[self._select] = self.values[self._select] or [a.get("value") or ""]

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _study_with_proposal(factory, slug: str, pmid: int, abstract: str) -> int:
    with factory.begin() as session:
        review = session.scalar(select(Review).where(Review.slug == slug))
        record = Record(
            pmid=pmid,
            title="Resorption of lumbar disc herniation",
            abstract=abstract,
            journal="Spine",
            year=2025,
            first_author="Zeta",
            content_hash=f"rt{pmid}",
            languages=["eng"],
        )
        session.add(record)
        session.flush()
        study = Study(
            review_id=review.id,
            record_id=record.id,
            label=f"Zeta {pmid}",
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
        store_proposal(
            session=session,
            review_id=review.id,
            record_id=record.id,
            proposal=propose_record(record, schema),
        )
        return study.id


def test_proposal_round_trips_through_form_and_export(seed, make_client, factory):
    study_id = _study_with_proposal(factory, seed.slug, 33_000_001, ABSTRACT)
    alice = make_client("alice")
    url = f"/reviews/{seed.slug}/studies/{study_id}/extraction"
    page = alice.get(url)
    assert page.status_code == 200
    parser = FormValues()
    parser.feed(page.text)
    form = parser.values
    want = {
        "n_total": ["58"],  # int
        "n_resorbed": ["41"],  # int
        "design": ["Prospective"],  # choice
        "herniation_type": ["Extrusion"],  # choice: one value, not a list
        "country": ["Japan"],  # text
        "age_range": ["24-68"],  # text
        "sex_male_female": ["27/31"],  # text
        "follow_up": ["12 months"],  # text with its unit
        "predictors": ["Rim enhancement"],  # list
        "mechanisms": ["TNF-α", "Macrophage infiltration"],  # list, in the protocol's order
    }
    for name, value in want.items():
        assert form.get(name) == value, (name, form.get(name))
    assert "['" not in page.text  # no raw Python lists in the hints
    assert "vocab.herniation_type" not in page.text and "count.pair" not in page.text
    token = alice.headers.pop("X-CSRF-Token")
    post = {
        k: v if len(v) > 1 or k in ("predictors", "mechanisms") else v[0] for k, v in form.items()
    }
    post["csrf_token"] = token
    confirmed = alice.post(url, data=post)
    assert confirmed.status_code == 303, confirmed.text[:500]
    alice.headers["X-CSRF-Token"] = token
    data = alice.get(f"/api/reviews/{seed.slug}/studies/{study_id}/extractions").json()[0]["data"]
    assert data["n_total"] == 58 and data["n_resorbed"] == 41
    assert data["follow_up"] == "12 months" and data["herniation_type"] == "Extrusion"
    assert sorted(data["mechanisms"]) == ["Macrophage infiltration", "TNF-α"]
    export = alice.get(f"/reviews/{seed.slug}/export/studies.csv")
    assert export.status_code == 200
    rows = [r for r in csv.DictReader(io.StringIO(export.text)) if r.get("n_total") == "58"]
    assert len(rows) == 1
    row = rows[0]
    assert row["follow_up"] == "12 months" and row["design"] == "Prospective"
    assert row["herniation_type"] == "Extrusion" and row["age_range"] == "24-68"


def test_several_types_for_a_single_choice_are_a_hint_not_a_broken_value(
    seed, make_client, factory
):
    study_id = _study_with_proposal(factory, seed.slug, 33_000_002, TWO_TYPES)
    page = make_client("alice").get(f"/reviews/{seed.slug}/studies/{study_id}/extraction")
    parser = FormValues()
    parser.feed(page.text)
    assert parser.values["herniation_type"] == [""]  # the empty option: confirming works
    assert "not in the vocabulary" not in page.text
    assert "Not pre-filled: several named (Protrusion, Extrusion): choose one" in page.text
