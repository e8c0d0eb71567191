"""What changed between snapshots, against the protocol's thresholds."""

from __future__ import annotations

from services.meta_analysis import pool
from services.meta_analysis.snapshots import Thresholds, compare, snapshot_summary

BASE = {
    "method": "REML",
    "transform": "logit",
    "test": "z",
    "k": 30,
    "study_ids": list(range(30)),
    "estimate": 0.740,
    "ci_low": 0.656,
    "ci_high": 0.810,
    "pi_low": 0.27,
    "pi_high": 0.96,
    "tau2": 1.05,
    "i2": 92.0,
}


def test_first_snapshot_notifies() -> None:
    changes = compare(None, BASE, Thresholds())
    assert changes.first and changes.notify and changes.heterogeneity_after == "considerable"


def test_no_change_below_thresholds() -> None:
    current = {**BASE, "estimate": 0.75}
    changes = compare(BASE, current, Thresholds())
    assert not changes.notify and changes.reasons == ()
    assert abs(changes.estimate_shift_pp - 1.0) < 1e-9 and changes.ci_overlap is True


def test_each_threshold_triggers() -> None:
    moved = compare(BASE, {**BASE, "estimate": 0.765}, Thresholds(estimate_shift_pp=2.0))
    assert moved.notify and "+2.5 percentage points" in moved.reasons[0]
    added = compare(BASE, {**BASE, "k": 31, "study_ids": list(range(31))}, Thresholds())
    assert added.studies_added == (30,) and "k 30 → 31" in added.reasons[0]
    quiet = compare(
        BASE, {**BASE, "k": 31, "study_ids": list(range(31))}, Thresholds(notify_on_k_change=False)
    )
    assert not quiet.notify
    apart = compare(
        BASE,
        {**BASE, "estimate": 0.9, "ci_low": 0.85, "ci_high": 0.95},
        Thresholds(estimate_shift_pp=50),
    )
    assert apart.ci_overlap is False and apart.reasons == (
        "the new confidence interval does not overlap the previous one",
    )
    het = compare(BASE, {**BASE, "i2": 60.0}, Thresholds())
    assert het.reasons == ("heterogeneity considerable → substantial",)


def test_thresholds_from_protocol_table_ignore_other_keys() -> None:
    t = Thresholds.from_mapping({"estimate_shift_pp": 1.5, "notify_on_retraction": True})
    assert t.estimate_shift_pp == 1.5 and t.notify_on_k_change is True


def test_summary_of_a_pooled_result_round_trips() -> None:
    res = pool([4, 12, 9, 30], [20, 40, 25, 60])
    summary = snapshot_summary(res, [1, 2, 3, 4])
    assert summary["estimate"] == res.estimate and summary["k"] == 4
    assert compare(summary, summary, Thresholds()).notify is False
