"""The estimate restricted to studies at low risk of bias pools exactly those studies."""

from __future__ import annotations

import math

from services.evidence.grade import sensitivity
from services.meta_analysis.analysis import analyse
from services.meta_analysis.pooling import pool
from services.meta_analysis.studies import Study

COUNTS = [(30, 40), (12, 30), (45, 50), (20, 26), (8, 21)]


def test_sensitivity_pools_only_low_risk_studies() -> None:
    studies = [Study(label=f"S{i}", events=x, total=n, study_id=i)
               for i, (x, n) in enumerate(COUNTS, start=1)]
    analysis = analyse(studies, transform="logit", method="REML", test="z")
    overall = {1: "low", 2: "high", 3: "low", 4: "moderate", 5: "low"}
    result = sensitivity(analysis, overall, {"transform": "logit", "method": "REML", "test": "z"})
    expected = pool([30, 45, 8], [40, 50, 21], transform="logit", method="REML")
    assert result["k"] == 3 and result["pooled"] is True
    assert math.isclose(result["estimate"], expected.estimate, rel_tol=1e-12)
    assert math.isclose(result["ci_low"], expected.ci_low, rel_tol=1e-12)
    assert result["estimate"] != analysis.result.estimate


def test_sensitivity_with_one_low_risk_study_is_not_pooled() -> None:
    studies = [Study(label=f"S{i}", events=x, total=n, study_id=i)
               for i, (x, n) in enumerate(COUNTS, start=1)]
    analysis = analyse(studies, transform="logit", method="REML", test="z")
    result = sensitivity(analysis, {2: "low"}, {"transform": "logit", "method": "REML"})
    assert result["pooled"] is False and result["k"] == 1
    assert "only one study" in result["notes"][0]
