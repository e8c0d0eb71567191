"""Predictor findings: the form field's validation, and the extractor's factor/direction rules.

The passages are our own, each reproducing a structure seen in published LDH abstracts (read
through the search tool; none copied): a list sentence "Predictive factors for resorption were
A, B and C" with no direction; a ratio with its CI in parentheses ("OR 0.31, 95% CI 0.14-0.69;
p = 0.004"); "odds ratio, 3.1; 95% confidence interval, 1.4 to 6.8"; negations ("was not
associated with"); comparisons ("regressed more often than"); and a factor named in the methods
only (no finding)."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from services.evidence.findings import convert_findings, findings_options
from services.extraction.directions import propose_findings
from services.extraction.schema import schema_from_mapping

ROOT = Path(__file__).resolve().parents[3]
PROTOCOL = tomllib.loads((ROOT / "reviews/ldh_resorption/protocol.toml").read_text())
SCHEMA = schema_from_mapping(PROTOCOL["extraction"], PROTOCOL["evidence"]["directions"])
VOCAB = SCHEMA.predictors
FACTORS = PROTOCOL["extraction"]["predictors"]
OPTIONS = findings_options(PROTOCOL)


def found(abstract: str) -> dict[str, dict]:
    proposal = propose_findings(abstract, VOCAB, SCHEMA.directions)
    assert proposal is not None
    return {f["factor"]: f for f in proposal.value}


def test_ratio_with_ci_and_p_in_parentheses() -> None:
    got = found(
        "METHODS: 142 patients had MRI at baseline and after 9 months. RESULTS: Discs with "
        "Modic changes were less likely to regress (OR 0.31, 95% CI 0.14-0.69; p = 0.004)."
    )
    assert got["Modic change"] == {
        "factor": "Modic change", "direction": "against resorption", "measure": "OR",
        "value": 0.31, "ci_low": 0.14, "ci_high": 0.69, "p": 0.004,
    }


def test_spelled_out_ratio_and_favouring_direction() -> None:
    got = found(
        "Rim enhancement on gadolinium MRI predicted resorption (odds ratio, 3.1; 95% "
        "confidence interval, 1.4 to 6.8)."
    )
    rim = got["Rim enhancement"]
    assert rim["direction"] == "favours resorption"
    assert (rim["measure"], rim["value"], rim["ci_low"], rim["ci_high"]) == ("OR", 3.1, 1.4, 6.8)


def test_negation_and_comparison_in_separate_sentences() -> None:
    got = found(
        "Sequestered fragments regressed more often than protrusions. Age was not associated "
        "with resorption of the herniation."
    )
    assert got["Sequestration"]["direction"] == "favours resorption"
    assert got["Age"]["direction"] == "no association"


def test_listed_predictors_have_no_direction() -> None:
    got = found(
        "Of 311 patients, 260 showed resorption. Predictive factors for disc resorption were "
        "extrusion, migration and the size of the herniation."
    )
    assert set(got) == {"Extrusion", "Migration", "Size"}
    assert all(f["direction"] is None for f in got.values())


def test_factor_in_methods_only_is_not_a_finding() -> None:
    assert propose_findings(
        "METHODS: Modic changes and disc degeneration were graded on MRI. RESULTS: 64 of 90 "
        "herniations were smaller at follow-up.", VOCAB
    ) is None


def test_convert_keeps_valid_rows_and_drops_blank_ones() -> None:
    rows = convert_findings(
        [{"factor": "Size", "direction": "favours resorption", "measure": "OR", "value": "2.5",
          "ci_low": "1.2", "ci_high": "5.1", "p": ""},
         {"factor": "", "direction": "", "measure": "", "value": "", "ci_low": "", "ci_high": "",
          "p": ""}],
        FACTORS, OPTIONS,
    )
    assert rows == [{"factor": "Size", "direction": "favours resorption", "measure": "OR",
                     "value": 2.5, "ci_low": 1.2, "ci_high": 5.1, "p": None}]


@pytest.mark.parametrize(("row", "message"), [
    ({"factor": "Height", "direction": "favours resorption"}, "factor 'Height' is not in"),
    ({"factor": "Size", "direction": "maybe"}, "direction must be one of"),
    ({"factor": "Size", "direction": "no association", "measure": "OR", "value": "3",
      "ci_low": "0.5", "ci_high": "2"}, "not inside its CI"),
    ({"factor": "Size", "direction": "no association", "measure": "OR", "value": "1",
      "ci_low": "0.5"}, "both limits"),
    ({"factor": "Size", "direction": "no association", "value": "1.2"}, "needs its measure"),
    ({"factor": "Size", "direction": "no association", "p": "1.7"}, "between 0 and 1"),
])
def test_convert_names_the_row_and_what_to_fix(row: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        convert_findings([row], FACTORS, OPTIONS)
    assert str(info.value).startswith("row 1")
