"""The extraction form's predictor findings over the HTML form (rows of <name>.<column>
inputs), the evidence page and its CSV, and the GRADE confirmation refusing a bad value."""

from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import select

from db.models import Extraction, GradeJudgement

pytestmark = pytest.mark.integration


def test_findings_rows_from_the_html_form(seed, make_client, factory):
    admin = make_client("admin")
    url = f"/reviews/{seed.slug}/studies/{seed.included_study}/extraction"
    page = admin.get(url)
    assert page.status_code == 200 and 'name="predictor_findings.factor"' in page.text
    form = {
        "n_total": "80", "n_resorbed": "20",
        "predictor_findings.factor": ["Modic change", "Size", ""],
        "predictor_findings.direction": ["against resorption", "", ""],
        "predictor_findings.measure": ["OR", "", ""],
        "predictor_findings.value": ["0.5", "", ""],
        "predictor_findings.ci_low": ["0.3", "", ""],
        "predictor_findings.ci_high": ["0.9", "", ""],
        "predictor_findings.p": ["", "", ""],
        "species": "human", "tissue": "sequestered fragment", "mechanism_method": "",
    }
    refused = admin.post(url, data=form)
    assert refused.status_code == 422
    assert "row 2: direction must be one of" in refused.text
    with factory() as session:
        assert session.scalars(
            select(Extraction).where(Extraction.study_id == seed.included_study)).first() is None
    form["predictor_findings.direction"] = ["against resorption", "favours resorption", ""]
    saved = admin.post(url, data=form)
    assert saved.status_code == 303, saved.text
    with factory() as session:
        row = session.scalars(
            select(Extraction).where(Extraction.study_id == seed.included_study)).one()
        assert row.data["predictor_findings"] == [
            {"factor": "Modic change", "direction": "against resorption", "measure": "OR",
             "value": 0.5, "ci_low": 0.3, "ci_high": 0.9, "p": None},
            {"factor": "Size", "direction": "favours resorption", "measure": None,
             "value": None, "ci_low": None, "ci_high": None, "p": None},
        ]
    # the form shows the saved rows again, and the evidence page and CSV list them
    assert admin.get(url).text.count('selected>Modic change</option>') == 1
    exported = admin.get(f"/reviews/{seed.slug}/evidence/predictors.csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["study"], r["factor"], r["direction"]) for r in rows] == [
        ("Delta et al., 2025", "Modic change", "against resorption"),
        ("Delta et al., 2025", "Size", "favours resorption"),
    ]
    assert "Delta et al., 2025" in admin.get(f"/reviews/{seed.slug}/evidence").text


def test_grade_confirmation_refuses_bad_downgrade(seed, make_client, factory):
    alice = make_client("alice")
    bad = alice.post(f"/reviews/{seed.slug}/grade/imprecision",
                     data={"proposed": "0", "downgrade": "3", "reason": ""})
    assert bad.status_code == 422 and "0, 1 or 2 levels" in bad.text
    unknown = alice.post(f"/reviews/{seed.slug}/grade/vibes",
                         data={"proposed": "0", "downgrade": "1", "reason": "x"})
    assert unknown.status_code == 422
    with factory() as session:
        assert session.scalars(select(GradeJudgement)).first() is None
