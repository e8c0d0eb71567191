"""Egger's test, funnel data and log-OR pooling against metafor (tests/reference/metafor_bias.R).

Golden values: tests/reference/metafor_bias.json, written by that script (metafor 3.8.1)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from services.meta_analysis.bias import egger_test, funnel_data
from services.meta_analysis.effects import log_ratio, pool_effects
from services.meta_analysis.errors import MetaAnalysisError
from services.meta_analysis.pooling import pool

REF = json.loads(
    (Path(__file__).resolve().parents[2] / "reference" / "metafor_bias.json").read_text()
)
RTOL = 1e-6


def close(a: float, b: float, rtol: float = RTOL) -> bool:
    return math.isclose(a, b, rel_tol=rtol, abs_tol=1e-9)


@pytest.mark.parametrize("name", sorted(REF["sets"]))
def test_egger_matches_regtest(name: str) -> None:
    ref = REF["sets"][name]
    result = egger_test(ref["yi"], ref["vi"])
    eg = ref["egger"]
    assert close(result.z, eg["zval"]), (result.z, eg["zval"])
    assert close(result.p, eg["pval"])
    assert close(result.slope, eg["slope"])
    assert close(result.slope_se, eg["se"][1])
    assert close(result.limit_estimate, eg["est"])
    assert close(result.limit_ci_low, eg["ci_lb"])
    assert close(result.limit_ci_high, eg["ci_ub"])
    assert close(result.tau2, eg["tau2"])
    # regtest's own figures (its refit stops at metafor's default 1e-5 threshold)
    assert close(result.z, eg["regtest"]["zval"], 1e-4)


@pytest.mark.parametrize("name", sorted(REF["sets"]))
def test_funnel_matches_metafor(name: str) -> None:
    ref = REF["sets"][name]
    pooled = pool(ref["xi"], ref["ni"], transform="logit", method="REML")
    assert pooled.estimate_t is not None
    assert close(pooled.estimate_t, ref["funnel"]["refline"])
    yi = [row.yi for row in pooled.studies]
    vi = [row.vi for row in pooled.studies]
    data = funnel_data(yi, vi, pooled.estimate_t)
    assert all(close(a, b) for a, b in zip(data.x, ref["funnel"]["x"], strict=True))
    assert all(close(a, b) for a, b in zip(data.y, ref["funnel"]["y"], strict=True))
    region = data.region()
    assert close(region[1][0], ref["funnel"]["refline"]) and region[1][1] == 0.0
    assert close(region[2][1], max(ref["funnel"]["y"]))


def test_log_or_pooling_matches_rma() -> None:
    ref = REF["log_or"]
    pairs = [
        log_ratio(f"s{i}", v, lo, hi)
        for i, (v, lo, hi) in enumerate(zip(ref["or"], ref["ci_low"], ref["ci_high"], strict=True))
    ]
    result = pool_effects([p[0] for p in pairs], [p[1] for p in pairs])
    for ours, key in ((result.mu, "mu"), (result.se, "se"), (result.ci_low, "ci_lb"),
                      (result.ci_high, "ci_ub"), (result.i2, "i2"), (result.q, "q")):
        assert close(ours, ref[key]), (key, ours, ref[key])
    assert math.isclose(result.tau2, ref["tau2"], rel_tol=1e-6, abs_tol=1e-10)


def test_egger_refuses_too_few_studies() -> None:
    with pytest.raises(MetaAnalysisError, match="at least 10 studies"):
        egger_test([0.1] * 9, [0.04] * 9)


def test_log_ratio_refuses_value_outside_ci() -> None:
    with pytest.raises(Exception, match="not inside its CI"):
        log_ratio("Zeta 2024", 2.0, 0.5, 1.5)
