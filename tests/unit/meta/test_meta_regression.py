"""Meta-regression and the subgroup moderator test against R metafor 3.8.

Golden values: tests/reference/metafor_moderators.json.gz, made by metafor_moderators.R there
(32 generated datasets — k from 4 to 30, 0/n and n/n studies, one dominant study — each fitted
with ``mods = ~ x`` and ``mods = ~ factor(g)`` for every measure × estimator × test).
Everything at 1e-6 relative; values that are zero in exact arithmetic (τ² at the boundary, which
metafor's Fisher scoring approaches as ~1e-13) compare with an absolute floor.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from services.meta_analysis.errors import MetaAnalysisError
from services.meta_analysis.regression import RegressionResult, meta_regression
from services.meta_analysis.studies import Study

REFERENCE = Path(__file__).resolve().parents[2] / "reference" / "metafor_moderators.json.gz"
RTOL = 1e-6
ABSOLUTE = {"tau2": 1e-10, "I2": 1e-6, "H2": 1e-8, "QE": 1e-9, "QM": 1e-9}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    with gzip.open(REFERENCE, "rt", encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _studies(ds: dict[str, Any]) -> list[Study]:
    return [
        Study(label=f"s{i}", events=float(x), total=float(n), extra={"x": xv, "g": g})
        for i, (x, n, xv, g) in enumerate(zip(ds["xi"], ds["ni"], ds["x"], ds["g"], strict=True))
    ]


def _fit(ds: dict[str, Any], fit: dict[str, Any], model: str) -> RegressionResult:
    options = {"transform": fit["transform"], "method": fit["method"], "test": fit["test"]}
    if model == "continuous":
        return meta_regression(_studies(ds), "x", kind="continuous", **options)
    named = [c.removeprefix("factor(g)") for c in fit[model]["coef_names"][1:]]
    base = next(level for level in sorted(set(ds["g"])) if level not in named)
    result = meta_regression(_studies(ds), "g", kind="categorical", reference=base, **options)
    assert result.levels == [base, *sorted(named, key=result.levels.index)]
    return result


def _ours(result: RegressionResult, order: list[str]) -> dict[str, Any]:
    by_name = {c.name: c for c in result.coefficients}
    coefs = [by_name[name] for name in order]
    return {
        "b": [c.estimate for c in coefs],
        "se": [c.se for c in coefs],
        "pval": [c.p for c in coefs],
        "ci_lb": [c.ci_low for c in coefs],
        "ci_ub": [c.ci_high for c in coefs],
        "QM": result.qm,
        "QMp": result.qm_p,
        "QE": result.qe,
        "QEp": result.qe_p,
        "tau2": result.tau2,
        "I2": result.i2,
        "H2": result.h2,
        "R2": result.r2,
        "logLik": result.loglik,
    }


def _order(model: str, ref: dict[str, Any]) -> list[str]:
    if model == "continuous":
        return ["intercept", "x"]
    return ["intercept", *(f"g={c.removeprefix('factor(g)')}" for c in ref["coef_names"][1:])]


def test_the_reference_covers_the_shapes(reference: dict[str, Any]) -> None:
    sizes = [len(ds["xi"]) for ds in reference["datasets"].values()]
    assert len(sizes) == 32 and min(sizes) == 4 and max(sizes) == 30
    extremes = reference["datasets"]["extremes"]
    assert 0 in extremes["xi"] and any(
        x == n for x, n in zip(extremes["xi"], extremes["ni"], strict=True)
    )


@pytest.mark.parametrize("model", ["continuous", "categorical"])
def test_every_fit_matches_metafor(reference: dict[str, Any], model: str) -> None:
    compared = 0
    for name, ds in reference["datasets"].items():
        for fit in ds["fits"]:
            ref = fit[model]
            ours = _ours(_fit(ds, fit, model), _order(model, ref))
            for key, value in ours.items():
                expected = ref[key]
                if key == "R2" and ref["tau2"] < 1e-10:
                    # metafor divides its boundary residue (~1e-13 / ~1e-13): R² is undefined
                    # there; ours is 0 when the intercept-only τ² is 0, as metafor's own rule.
                    continue
                where = f"{name} {fit['transform']} {fit['method']} {fit['test']} {model} {key}"
                np.testing.assert_allclose(
                    np.asarray(value, dtype=float),
                    np.asarray(expected, dtype=float),
                    rtol=RTOL,
                    atol=ABSOLUTE.get(key, 1e-12),
                    err_msg=where,
                )
                compared += 1
    assert compared > 32 * 32 * 13


def test_knha_qm_is_an_f_test_with_residual_df(reference: dict[str, Any]) -> None:
    ds = reference["datasets"]["shape1_rep1"]
    fit = next(f for f in ds["fits"] if f["test"] == "knha" and f["method"] == "REML")
    result = _fit(ds, fit, "categorical")
    assert result.qm_df == (2, len(ds["xi"]) - 3)
    assert list(result.qm_df) == fit["categorical"]["QMdf"]


def test_studies_without_the_moderator_are_left_out_and_named() -> None:
    studies = [
        Study(label="A", events=10, total=20, extra={"fu": 6}),
        Study(label="B", events=15, total=20, extra={"fu": 12}),
        Study(label="C", events=18, total=20, extra={"fu": 24}),
        Study(label="D", events=5, total=20),
        Study(label="E", events=9, total=30, extra={"fu": 3}),
    ]
    result = meta_regression(studies, "fu")
    assert result.kind == "continuous" and result.k == 4
    assert result.notes == ("1 studies without fu left out: D",)
    assert result.coefficients[1].estimate > 0


def test_a_moderator_with_one_level_or_too_few_studies_is_refused() -> None:
    same = [Study(label=s, events=5, total=10, extra={"g": "x"}) for s in "ABC"]
    with pytest.raises(MetaAnalysisError, match="same one"):
        meta_regression(same, "g", kind="categorical")
    two = [
        Study(label="A", events=5, total=10, extra={"x": 1}),
        Study(label="B", events=7, total=10, extra={"x": 2}),
    ]
    with pytest.raises(MetaAnalysisError, match="2 studies for 2 coefficients"):
        meta_regression(two, "x")
