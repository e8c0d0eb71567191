"""Pooling edge cases: cannot-pool results, bad input, notes, fallback, JSON without NaN."""

from __future__ import annotations

import json
import math

import pytest

from services.meta_analysis import InvalidStudyData, UnknownOption, estimators, pool, pool_glmm


@pytest.mark.parametrize("events,totals", [([], []), ([3], [10])])
def test_fewer_than_two_studies_cannot_pool(events: list[int], totals: list[int]) -> None:
    for fn in (pool, pool_glmm):
        res = fn(events, totals)
        assert res.pooled is False
        assert res.estimate is None and res.tau2 is None and res.i2 is None
        assert res.notes[0].startswith("cannot pool")
        text = json.dumps(res.to_dict())
        assert "NaN" not in text and json.loads(text)["k"] == len(events)


@pytest.mark.parametrize(
    "events,totals,field,fragment",
    [
        ([3, 12], [10, 11], "events", "exceed the total"),
        ([3, -1], [10, 11], "events", "negative"),
        ([3, 1], [10, 0], "total", "positive"),
        ([3, 1.5], [10, 11], "events", "whole number"),
        ([3, None], [10, 11], "events", "missing"),
        ([3, float("nan")], [10, 11], "events", "missing"),
    ],
)
def test_bad_counts_name_study_and_field(
    events: list[float], totals: list[float], field: str, fragment: str
) -> None:
    with pytest.raises(InvalidStudyData) as info:
        pool(events, totals, labels=["Alpha 2001", "Beta 2003"])
    assert info.value.study == "Beta 2003"
    assert info.value.field == field
    assert fragment in str(info.value)


def test_unknown_options_are_refused() -> None:
    for kwargs in ({"method": "SJ"}, {"transform": "probit"}, {"test": "t2"}):
        with pytest.raises(UnknownOption):
            pool([3, 4], [10, 10], **kwargs)


def test_continuity_correction_is_reported_only_where_applied() -> None:
    logit = pool([0, 5, 10], [10, 20, 10], labels=["A", "B", "C"])
    assert [s.corrected for s in logit.studies] == [True, False, True]
    assert any("continuity correction" in n and "A; C" in n for n in logit.notes)
    pft = pool([0, 5, 10], [10, 20, 10], transform="PFT")
    assert not any(s.corrected for s in pft.studies)
    assert any("harmonic mean" in n for n in pft.notes)


def test_reml_failure_falls_back_to_dl(monkeypatch: pytest.MonkeyPatch) -> None:
    events, totals = [4, 12, 9, 30, 7, 15], [20, 40, 25, 60, 35, 30]
    dl = pool(events, totals, method="DL")
    monkeypatch.setattr(estimators, "_MAX_ITER", 1)
    res = pool(events, totals, method="REML")
    assert res.method == "DL"
    assert any("REML did not converge" in n for n in res.notes)
    assert res.tau2 == pytest.approx(dl.tau2, rel=1e-12)


def test_knha_widens_interval_and_pi_contains_ci() -> None:
    events, totals = [4, 12, 9, 30, 7, 15], [20, 40, 25, 60, 35, 30]
    z = pool(events, totals)
    hk = pool(events, totals, test="hksj")
    assert hk.test == "knha" and hk.estimate == pytest.approx(z.estimate, rel=1e-12)
    for r in (z, hk):
        assert r.pi_low <= r.ci_low < r.estimate < r.ci_high <= r.pi_high
    assert z.heterogeneity_class in {"low", "moderate", "substantial", "considerable"}


def test_weights_sum_to_hundred_and_no_nan() -> None:
    res = pool([0, 5, 12, 20, 3, 0, 9], [15, 25, 30, 20, 40, 10, 9], transform="PR")
    assert sum(s.weight_random for s in res.studies) == pytest.approx(100.0)
    assert sum(s.weight_common for s in res.studies) == pytest.approx(100.0)
    assert all(math.isfinite(v) for v in (res.estimate, res.ci_low, res.pi_high, res.i2))


def test_raw_proportion_limits_outside_unit_interval_are_noted() -> None:
    res = pool([0, 1, 9], [10, 12, 10], transform="PR")
    assert res.pi_low is not None and res.pi_low < 0
    assert any("outside 0–1" in n for n in res.notes)
    assert not any("outside" in n for n in pool([0, 1, 9], [10, 12, 10]).notes)
