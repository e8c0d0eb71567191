"""GRADE domain proposals at the protocol's thresholds, risk-of-bias states and κ, and the
sentences the digest gets when the evidence changes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from services.evidence.grade import (
    propose_imprecision,
    propose_inconsistency,
    propose_publication_bias,
    propose_risk_of_bias,
)
from services.evidence.rob import study_state, validate
from services.evidence.snapshots import describe
from services.protocol import Grade, RiskOfBias

GRADE = Grade()
TOOL = RiskOfBias(tool="t", name="T", items=[{"key": "a", "text": "item a"},
                                              {"key": "b", "text": "item b"}])


def test_risk_of_bias_from_weight_shares() -> None:
    weights = [(1, 0.5), (2, 0.3), (3, 0.2)]
    assert propose_risk_of_bias(weights, {1: "high", 2: "high", 3: "low"}, GRADE)[0] == 2
    assert propose_risk_of_bias(weights, {1: "high", 2: "low", 3: "low"}, GRADE)[0] == 1
    down, reason, figures = propose_risk_of_bias(weights, {1: "low", 2: "high", 3: "low"}, GRADE)
    assert down == 0 and "30% of the weight" in reason and figures["share_unrated"] == 0
    down, reason, _ = propose_risk_of_bias(weights, {3: "low"}, GRADE)
    assert down == 1 and "80% of the weight from studies not yet rated" in reason


@pytest.mark.parametrize(("i2", "pi", "expected"), [
    (92.0, 0.69, 2), (92.0, 0.30, 1), (60.0, 0.8, 1), (49.9, 0.9, 0),
])
def test_inconsistency(i2: float, pi: float, expected: int) -> None:
    assert propose_inconsistency(i2, pi, GRADE)[0] == expected


@pytest.mark.parametrize(("width", "expected"), [(0.154, 0), (0.2, 1), (0.39, 1), (0.41, 2)])
def test_imprecision(width: float, expected: int) -> None:
    assert propose_imprecision(width, GRADE)[0] == expected


def test_publication_bias() -> None:
    assert propose_publication_bias(None, 6, GRADE) == (
        0, "not assessable: k = 6 < 10 studies for Egger's test")
    assert propose_publication_bias({"z": 3.3, "p": 0.001}, 30, GRADE)[0] == 1
    assert propose_publication_bias({"z": 0.6, "p": 0.55}, 11, GRADE)[0] == 0


def rating(role: str, a: str, b: str, overall: str) -> SimpleNamespace:
    return SimpleNamespace(role=role, answers={"a": a, "b": b}, overall=overall)


def test_study_states() -> None:
    assert study_state(1, [], TOOL).status == "unrated"
    assert study_state(1, [rating("rater", "yes", "no", "low")], TOOL).status == (
        "awaiting second rater")
    agreed = study_state(1, [rating("rater", "yes", "no", "low")] * 2, TOOL)
    assert (agreed.status, agreed.overall) == ("agreed", "low")
    conflict = study_state(
        1, [rating("rater", "yes", "no", "low"), rating("rater", "yes", "yes", "high")], TOOL)
    assert conflict.status == "conflict" and conflict.disagreements == ("b", "overall")
    assert conflict.overall is None
    resolved = study_state(1, [rating("rater", "yes", "no", "low"),
                               rating("rater", "yes", "yes", "high"),
                               rating("consensus", "yes", "no", "moderate")], TOOL)
    assert (resolved.status, resolved.overall) == ("resolved", "moderate")


def test_validate_names_every_bad_item() -> None:
    with pytest.raises(Exception) as info:
        validate(TOOL, {"a": "perhaps", "c": "yes"}, "terrible")
    assert set(info.value.errors) == {"a", "b", "c", "overall"}  # type: ignore[attr-defined]


def test_describe_changes() -> None:
    before = {"predictors": {"factors": {"Modic change": {"k": 3, "directions": {
        "against resorption": 1}, "pooled_or": None}}},
        "mechanisms": {"modulators": {"IL-6": 4}},
        "grade": {"resorption": {"level": "very low"}}}
    after = {"predictors": {"factors": {
        "Modic change": {"k": 4, "directions": {"against resorption": 2}, "pooled_or": None},
        "Migration": {"k": 1, "directions": {"favours resorption": 1}, "pooled_or": None}}},
        "mechanisms": {"modulators": {"IL-6": 5}},
        "grade": {"resorption": {"level": "low"}}}
    assert describe(before, after) == [
        "Modic change: 3 → 4 studies, 2 against resorption",
        "Migration: new predictor, 1 study, 1 favours resorption",
        "mechanism IL-6: 4 → 5 studies",
        "certainty of the evidence (resorption): very low → low",
    ]
    assert describe(after, after) == []
