"""Leave-one-out and cumulative fits equal separate pools; subgroups and their Q test."""

from __future__ import annotations

import numpy as np
import pytest

from services.meta_analysis import pool
from services.meta_analysis.breakdowns import (
    cumulative,
    leave_one_out,
    publication_order,
    subgroups,
)
from services.meta_analysis.studies import Study


def _studies(k: int = 40, seed: int = 7) -> list[Study]:
    rng = np.random.default_rng(seed)
    n = rng.integers(10, 300, size=k)
    x = rng.binomial(n, 1 / (1 + np.exp(-rng.normal(0.5, 1.0, size=k))))
    x[0], x[1] = 0, n[1]  # a 0/n and an n/n study
    years = rng.integers(1980, 2025, size=k)
    return [
        Study(
            label=f"S{i}",
            events=float(x[i]),
            total=float(n[i]),
            year=int(years[i]),
            design=("P", "R", "RCT")[i % 3],
        )
        for i in range(k)
    ]


def _pool(studies: list[Study], **opts: str) -> object:
    return pool([s.events for s in studies], [s.total for s in studies], **opts)  # type: ignore[misc]


@pytest.mark.parametrize("transform", ["logit", "PFT", "PAS", "PR"])
@pytest.mark.parametrize("method", ["REML", "DL", "PM", "ML"])
def test_leave_one_out_and_cumulative_equal_separate_fits(transform: str, method: str) -> None:
    studies = _studies()
    opts = {"transform": transform, "method": method, "test": "knha"}
    loo = leave_one_out(studies, **opts)
    cum = cumulative(studies, **opts)
    ordered = publication_order(studies)
    assert [r.label for r in cum] == [s.label for s in ordered]
    assert cum[0].estimate is None and cum[0].k == 1
    for j in (0, 1, 17, len(studies) - 1):
        alone = _pool([s for i, s in enumerate(studies) if i != j], **opts)
        row = loo[j]
        assert row.label == studies[j].label and row.k == len(studies) - 1
        for got, want in (
            (row.estimate, alone.estimate),
            (row.ci_low, alone.ci_low),
            (row.ci_high, alone.ci_high),
            (row.tau2, alone.tau2),
            (row.i2, alone.i2),
        ):
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
        if j > 0:
            prefix = _pool(ordered[: j + 1], **opts)
            assert cum[j].estimate == pytest.approx(prefix.estimate, rel=1e-9)
            assert cum[j].tau2 == pytest.approx(prefix.tau2, rel=1e-9, abs=1e-12)
            assert cum[j].ci_high == pytest.approx(prefix.ci_high, rel=1e-9)


def test_subgroups_pool_each_group_and_test_the_difference() -> None:
    studies = _studies()
    res = subgroups(studies, "design")
    assert set(res.groups) == {"P", "R", "RCT"}
    assert sum(g.k for g in res.groups.values()) == res.overall.k == len(studies)
    mu = np.array([g.estimate_t for g in res.groups.values()])
    w = 1 / np.array([g.se_t for g in res.groups.values()]) ** 2
    q = float(np.sum(w * (mu - np.sum(w * mu) / np.sum(w)) ** 2))
    assert res.q_between == pytest.approx(q, rel=1e-12) and res.df_between == 2
    assert 0 <= res.p_between <= 1
    assert res.to_dict()["groups"]["P"]["k"] == res.groups["P"].k


def test_subgroup_by_decade_and_missing_values() -> None:
    studies = [*_studies(6), Study(label="no year", events=3, total=9)]
    res = subgroups(studies, "decade")
    assert "not reported" in res.groups and res.groups["not reported"].pooled is False
    assert all(name.endswith("s") for name in res.groups if name != "not reported")
