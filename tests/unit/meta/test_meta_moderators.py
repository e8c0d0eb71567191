"""Moderator values, the protocol's subgroup hypotheses, and the CLI's --by/--moderator output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from services.cli.meta import register
from services.meta_analysis.moderators import (
    HypothesisSpec,
    check_hypothesis,
    hypothesis_changes,
    months,
    numeric_value,
)
from services.meta_analysis.regression import meta_regression
from services.meta_analysis.studies import Study

RUPTURED = {"ruptured": ["Extrusion", "Sequestration"], "contained": ["Protrusion", "Bulging"]}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12 months", 12.0),
        ("2 years", 24.0),
        ("24 weeks", 24 * 7 / 30.4375),
        ("6-12 months", 9.0),
        ("mean 14.5 mo", 14.5),
        ({"value": 1.5, "unit": "years"}, 18.0),
        (9, 9.0),
        ("not stated", None),
        (None, None),
    ],
)
def test_durations_are_read_in_months(value: object, expected: float | None) -> None:
    result = months(value)
    assert result == (None if expected is None else pytest.approx(expected))


def test_numeric_values_of_a_study() -> None:
    study = Study(
        label="A",
        events=1,
        total=2,
        year=2004,
        age_range="25-67",
        extra={"follow_up": "2 years", "mean_age": "45.3 ± 9.1"},
    )
    assert numeric_value(study, "year") == 2004
    assert numeric_value(study, "age_range") == 46.0
    assert numeric_value(study, "follow_up") == 24.0
    assert numeric_value(study, "mean_age") == 45.3


def _typed(rows: list[tuple[str, int, int]]) -> list[Study]:
    return [
        Study(label=f"S{i}", events=x, total=n, extra={"herniation_type": t})
        for i, (t, x, n) in enumerate(rows)
    ]


RUPTURED_HIGHER = [
    ("Extrusion", 45, 50),
    ("Sequestration", 38, 40),
    ("Extrusion", 27, 30),
    ("Protrusion", 12, 40),
    ("Bulging", 10, 35),
    ("Protrusion", 15, 45),
    ("Cervical", 5, 9),
]


def test_a_supported_greater_hypothesis_reports_its_test() -> None:
    spec = HypothesisSpec(
        name="ruptured > contained", by="herniation_type", expect="greater", groups=RUPTURED
    )
    studies = _typed(RUPTURED_HIGHER)
    result = check_hypothesis(studies, spec)
    assert result.status == "supported" and result.k == 6
    assert list(result.groups) == ["ruptured", "contained"]
    assert result.groups["ruptured"]["estimate"] > result.groups["contained"]["estimate"]
    model = meta_regression(
        studies[:6],
        "g",
        kind="categorical",
        reference="ruptured",
        values=["ruptured"] * 3 + ["contained"] * 3,
    )
    assert result.qm == pytest.approx(model.qm, rel=1e-12) and result.p == model.qm_p
    assert "QM = " in result.sentence() and result.sentence().endswith("k = 6 — supported")


def test_the_opposite_direction_is_not_supported() -> None:
    spec = HypothesisSpec(
        name="contained > ruptured",
        by="herniation_type",
        expect="greater",
        groups={"contained": RUPTURED["contained"], "ruptured": RUPTURED["ruptured"]},
    )
    assert check_hypothesis(_typed(RUPTURED_HIGHER), spec).status == "not supported"


def test_too_few_studies_make_a_hypothesis_untestable_with_the_reason() -> None:
    spec = HypothesisSpec(name="h", by="herniation_type", expect="greater", groups=RUPTURED)
    result = check_hypothesis(_typed(RUPTURED_HIGHER[:4]), spec)
    assert result.status == "untestable"
    assert result.reason == (
        "1 of 2 groups of herniation_type have at least 2 studies (2 needed); too few in contained (1)"
    )
    assert result.sentence() == f"h: not testable yet ({result.reason})"


def test_a_cut_on_follow_up_and_a_similar_expectation() -> None:
    studies = [
        Study(label=f"F{i}", events=x, total=n, extra={"follow_up": fu})
        for i, (fu, x, n) in enumerate(
            [
                ("3 months", 30, 40),
                ("6 months", 33, 45),
                ("1 year", 35, 44),
                ("2 years", 31, 40),
                ("4 months", 25, 36),
                (None, 1, 2),
            ]
        )
    ]
    spec = HypothesisSpec(name="within 6 months", by="follow_up", expect="similar", cut=6)
    result = check_hypothesis(studies, spec)
    assert list(result.groups) == ["≤ 6", "> 6"] and result.k == 5
    assert result.status == "supported" and result.p is not None and result.p >= 0.05


def test_changed_verdicts_become_digest_reasons() -> None:
    spec = HypothesisSpec(name="h", by="herniation_type", expect="greater", groups=RUPTURED)
    now = check_hypothesis(_typed(RUPTURED_HIGHER), spec)
    assert hypothesis_changes([{"name": "h", "status": "supported"}], [now]) == []
    moved = hypothesis_changes([{"name": "h", "status": "untestable"}], [now])
    assert moved == [f"hypothesis untestable → {now.sentence()}"]


CSV = (
    "study,events,total,follow_up,type\nA,45,50,12,ext\nB,38,40,24,ext\nC,27,30,6,pro\n"
    "D,12,40,3,pro\nE,10,35,2,pro\nF,15,45,,ext\n"
)


def test_pool_moderator_and_by_json(tmp_path: Path) -> None:
    app = typer.Typer()
    register(app)
    path = tmp_path / "s.csv"
    path.write_text(CSV)
    out = CliRunner().invoke(app, ["pool", str(path), "--moderator", "follow_up", "--json"])
    assert out.exit_code == 0, out.output
    data = json.loads(out.output)["moderator"]
    assert {"qm", "qm_p", "coefficients", "tau2", "r2", "qe", "i2", "k"} <= set(data)
    assert data["kind"] == "continuous" and data["k"] == 5
    assert [c["name"] for c in data["coefficients"]] == ["intercept", "follow_up"]
    assert all(c["se"] > 0 for c in data["coefficients"])
    by = CliRunner().invoke(app, ["pool", str(path), "--by", "type", "--json"])
    assert by.exit_code == 0, by.output
    model = json.loads(by.output)["subgroup_model"]
    assert model["kind"] == "categorical" and model["levels"] == ["ext", "pro"]
    assert model["qm_df"] == [1, None]
    text = CliRunner().invoke(app, ["pool", str(path), "--moderator", "follow_up"])
    assert "test of moderators: QM = " in text.output
