"""Validation of extraction forms built from the protocol's schema."""

from __future__ import annotations

import pytest

from services.screening.errors import InvalidInputError
from services.screening.extraction import FieldSpec, validate_values
from services.screening.rules import ScreeningRules

SPECS = [
    FieldSpec("n_total", "int", "Sample", True, ()),
    FieldSpec("n_resorbed", "int", "Resorbed", True, ()),
    FieldSpec("design", "choice", "Design", False, ("Prospective", "Retrospective")),
    FieldSpec("mean_age", "float", "Age", False, ()),
    FieldSpec("predictors", "list", "Predictors", False, ("Size", "Modic change")),
    FieldSpec("country", "text", "Country", False, ()),
]
RULES = ScreeningRules(events_field="n_resorbed", total_field="n_total")


def test_valid_values_are_typed():
    values = validate_values(
        SPECS,
        {
            "n_total": " 80 ",
            "n_resorbed": "20",
            "design": "Prospective",
            "mean_age": "41.5",
            "predictors": ["Size"],
            "country": "",
        },
        RULES,
    )
    assert values == {
        "n_total": 80,
        "n_resorbed": 20,
        "design": "Prospective",
        "mean_age": 41.5,
        "predictors": ["Size"],
        "country": None,
    }


def test_every_bad_field_is_named_at_once():
    with pytest.raises(InvalidInputError) as caught:
        validate_values(
            SPECS,
            {
                "n_total": "abc",
                "n_resorbed": "-1",
                "design": "Anecdote",
                "mean_age": "old",
                "predictors": ["Luck"],
                "extra": "1",
            },
            RULES,
        )
    errors = caught.value.errors
    assert set(errors) == {"n_total", "n_resorbed", "design", "mean_age", "predictors", "extra"}
    assert "not a whole number" in errors["n_total"]
    assert errors["n_resorbed"] == "must not be negative"


def test_events_above_total():
    with pytest.raises(InvalidInputError) as caught:
        validate_values(SPECS, {"n_total": "10", "n_resorbed": "11"}, RULES)
    assert caught.value.errors == {"n_resorbed": "11 is more than the total (10)"}


def test_required_missing():
    with pytest.raises(InvalidInputError) as caught:
        validate_values(SPECS, {"n_total": "10"}, RULES)
    assert caught.value.errors == {"n_resorbed": "required"}
