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
from services.meta_analysis.transforms import inverse_pft


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


def _proportion(value_t: float | None, value: float | None, transform: str, hm: float) -> float:
    """A separate fit's value as a row shows it: PFT rows use the harmonic mean of ALL the
    studies' sizes (metafor's leave1out/cumul with targs = list(ni = dat$ni))."""
    assert value_t is not None and value is not None
    return float(inverse_pft(value_t, hm)) if transform == "PFT" else value


def test_pft_rows_use_the_harmonic_mean_of_all_studies() -> None:
    # Fifteen studies with events of 1 and sizes from 6 to 1,900 (the shape of issue 15):
    # the omitted set's own harmonic mean would move the back-transformed rows by up to 30%.
    sizes = [6, 8, 9, 12, 15, 20, 25, 40, 60, 90, 150, 300, 600, 1200, 1900]
    studies = [
        Study(label=f"S{i}", events=1.0, total=float(n), year=2000 + i) for i, n in enumerate(sizes)
    ]
    hm = 1.0 / np.mean([1.0 / n for n in sizes])
    for row, j in zip(leave_one_out(studies, transform="PFT"), range(15), strict=True):
        alone = _pool([s for i, s in enumerate(studies) if i != j], transform="PFT")
        assert row.estimate == pytest.approx(float(inverse_pft(alone.estimate_t, hm)), rel=1e-9)
    row = leave_one_out(studies, transform="PFT")[0]
    own = 1.0 / np.mean([1.0 / n for n in sizes[1:]])
    alone = _pool(studies[1:], transform="PFT")
    assert abs(float(inverse_pft(alone.estimate_t, own)) / row.estimate - 1) > 0.05


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
    hm = 1.0 / np.mean([1.0 / s.total for s in studies])  # type: ignore[operator]
    for j in (0, 1, 17, len(studies) - 1):
        alone = _pool([s for i, s in enumerate(studies) if i != j], **opts)
        row = loo[j]
        assert row.label == studies[j].label and row.k == len(studies) - 1
        for got, want in (
            (row.estimate, _proportion(alone.estimate_t, alone.estimate, transform, hm)),
            (row.ci_low, _proportion(alone.ci_low_t, alone.ci_low, transform, hm)),
            (row.ci_high, _proportion(alone.ci_high_t, alone.ci_high, transform, hm)),
            (row.tau2, alone.tau2),
            (row.i2, alone.i2),
        ):
            assert got == pytest.approx(want, rel=1e-9, abs=1e-12)
        if j > 0:
            prefix = _pool(ordered[: j + 1], **opts)
            want = _proportion(prefix.estimate_t, prefix.estimate, transform, hm)
            assert cum[j].estimate == pytest.approx(want, rel=1e-9)
            assert cum[j].tau2 == pytest.approx(prefix.tau2, rel=1e-9, abs=1e-12)
            want = _proportion(prefix.ci_high_t, prefix.ci_high, transform, hm)
            assert cum[j].ci_high == pytest.approx(want, rel=1e-9)


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
