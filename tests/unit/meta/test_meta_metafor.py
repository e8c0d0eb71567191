"""The engine against R metafor 3.8 (golden values in tests/reference/metafor_reference.json).

Every transform × estimator × test on every reference dataset, 1e-6 relative (with a tiny absolute
floor for values that are zero), and the GLMM at 1e-3.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import table1_counts

from services.meta_analysis import pool, pool_glmm

DATASETS = ("table1", "small", "zeros", "k2", "homogeneous")


def _counts(reference: dict[str, Any], name: str) -> tuple[list[int], list[int]]:
    inputs = reference["datasets"][name]["inputs"]
    if name == "table1":
        return table1_counts(reference)
    return [int(x) for x in inputs["xi"]], [int(n) for n in inputs["ni"]]


def _close(actual: float | None, expected: float, rtol: float, atol: float = 1e-10) -> None:
    assert actual is not None
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.mark.parametrize("name", DATASETS)
def test_every_combination_matches_metafor(reference: dict[str, Any], name: str) -> None:
    events, totals = _counts(reference, name)
    fits = reference["datasets"][name]["fits"]
    assert len(fits) == 4 * 4 * 2
    for fit in fits:
        res = pool(
            events, totals, transform=fit["transform"], method=fit["method"], test=fit["test"]
        )
        where = f"{name} {fit['transform']} {fit['method']} {fit['test']}"
        assert res.pooled, where
        assert res.method == fit["method"], where
        np.testing.assert_allclose([s.yi for s in res.studies], fit["yi"], rtol=1e-12)
        np.testing.assert_allclose([s.vi for s in res.studies], fit["vi"], rtol=1e-12)
        pairs = {
            "tau2": (res.tau2, fit["tau2"]),
            "b": (res.estimate_t, fit["b"]),
            "se": (res.se_t, fit["se"]),
            "ci_lb": (res.ci_low_t, fit["ci_lb"]),
            "ci_ub": (res.ci_high_t, fit["ci_ub"]),
            "pi_lb": (res.pi_low_t, fit["pi_lb"]),
            "pi_ub": (res.pi_high_t, fit["pi_ub"]),
            "QE": (res.q, fit["QE"]),
            "QEp": (res.q_p, fit["QEp"]),
            "I2": (res.i2, fit["I2"]),
            "H2": (res.h2, fit["H2"]),
            "pred": (res.estimate, fit["pred"]),
            "pred_ci_lb": (res.ci_low, fit["pred_ci_lb"]),
            "pred_ci_ub": (res.ci_high, fit["pred_ci_ub"]),
            "pred_pi_lb": (res.pi_low, fit["pred_pi_lb"]),
            "pred_pi_ub": (res.pi_high, fit["pred_pi_ub"]),
            "fe_b": (res.common_estimate_t, fit["fe_b"]),
            "fe_se": (res.common_se_t, fit["fe_se"]),
            "fe_pred": (res.common_estimate, fit["fe_pred"]),
            "fe_ci_lb": (res.common_ci_low, fit["fe_ci_lb"]),
            "fe_ci_ub": (res.common_ci_high, fit["fe_ci_ub"]),
        }
        for key, (actual, expected) in pairs.items():
            try:
                _close(actual, expected, rtol=1e-6)
            except AssertionError as exc:
                raise AssertionError(f"{where}: {key} {actual} != {expected}") from exc


@pytest.mark.parametrize("name", DATASETS)
def test_glmm_matches_metafor(reference: dict[str, Any], name: str) -> None:
    events, totals = _counts(reference, name)
    ref = reference["datasets"][name]["glmm"]
    res = pool_glmm(events, totals)
    assert res.pooled and res.method == "GLMM"
    for actual, key in (
        (res.estimate_t, "b"),
        (res.se_t, "se"),
        (res.ci_low_t, "ci_lb"),
        (res.ci_high_t, "ci_ub"),
        (res.pi_low_t, "pi_lb"),
        (res.pi_high_t, "pi_ub"),
        (res.estimate, "pred"),
        (res.ci_low, "pred_ci_lb"),
        (res.ci_high, "pred_ci_ub"),
        (res.q, "QE_LRT"),
        (res.i2, "I2"),
    ):
        try:
            _close(actual, ref[key], rtol=1e-3, atol=1e-6)
        except AssertionError as exc:
            raise AssertionError(f"{name} GLMM {key}: {actual} != {ref[key]}") from exc
    _close(res.tau2, ref["tau2"], rtol=1e-3, atol=1e-5)
