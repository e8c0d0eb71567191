"""Counts and proportions: the phrasings the issue names, distractors, consistency checks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.extraction import Proposal, load_schema
from services.extraction import propose as propose_with

# The LDH review's vocabularies, from its protocol: the extractor has none of its own.
LDH = load_schema(Path(__file__).resolve().parents[3] / "reviews" / "ldh_resorption" / "protocol.toml")


def propose(title: str, abstract: str, **options: Any) -> Proposal:
    options.setdefault("schema", LDH)
    return propose_with(title, abstract, **options)


def values(abstract: str, title: str = "Resorption of lumbar disc herniation") -> dict:
    proposal = propose(title, abstract)
    return {
        k: v.value for k, v in proposal.fields.items() if k in ("n_total", "n_resorbed", "percent")
    }


@pytest.mark.parametrize(
    ("abstract", "expected"),
    [
        (
            "Of 55 patients, 49 (89.1%) showed resorption.",
            {"n_total": 55, "n_resorbed": 49, "percent": 89.1},
        ),
        ("Resorption was observed in 36 of 40 patients.", {"n_total": 40, "n_resorbed": 36}),
        (
            "We studied 66 patients. Regression occurred in 46 cases (69.7%).",
            {"n_total": 66, "n_resorbed": 46, "percent": 69.7},
        ),
        (
            "Sciatica patients were followed (n = 95). Regression was seen in 88 patients (92.6%).",
            {"n_total": 95, "n_resorbed": 88, "percent": 92.6},
        ),
        (
            "A total of 35 patients were followed. The herniation disappeared completely in 11 and "
            "partially in 24.",
            {"n_total": 35, "n_resorbed": 35},
        ),
        (
            "Thirty-two patients were followed for six months. Resorption was seen in 62.5% of them.",
            {"n_total": 32, "n_resorbed": 20, "percent": 62.5},
        ),
        (
            "Group A (n = 30) had exercise and group B (n = 25) medication. Regression occurred in 20 "
            "patients in group A and in 18 in group B.",
            {"n_total": 55, "n_resorbed": 38},
        ),
    ],
)
def test_issue_phrasings(abstract: str, expected: dict) -> None:
    assert values(abstract) == expected


def test_numbers_in_words_and_thousands() -> None:
    got = values(
        "One hundred and twelve patients were reviewed. Ninety of them had regression "
        "of the herniation (80.4%)."
    )
    assert got == {"n_total": 112, "n_resorbed": 90, "percent": 80.4}


def test_men_women_lost_and_surgery_are_not_outcome_counts() -> None:
    got = values(
        "Sixty patients (25 men, 35 women) were enrolled; 12 were lost to follow-up and 8 "
        "underwent surgery. Among the remaining 40 patients, 30 showed resorption (75%)."
    )
    assert got == {"n_total": 40, "n_resorbed": 30, "percent": 75.0}


def test_negative_outcome_clause_is_not_the_count() -> None:
    got = values("Among 50 patients, 20 (40%) showed no change and 30 (60%) showed regression.")
    assert got == {"n_total": 50, "n_resorbed": 30, "percent": 60.0}


def test_pain_reduction_is_not_resorption() -> None:
    assert (
        values(
            "Fifty patients received physiotherapy. Pain reduction was achieved in 41 "
            "patients (82%)."
        )
        == {}
    )


def test_threshold_percent_is_not_the_outcome_percent() -> None:
    got = values(
        "We reviewed 120 patients. Regression by more than 50% in volume was seen in 60 patients."
    )
    assert got == {"n_total": 120, "n_resorbed": 60}


def test_disagreeing_percentage_withholds_the_counts_and_says_so() -> None:
    proposal = propose("t", "Among 21 patients, regression occurred in 14 (80%).")
    assert not {"n_total", "n_resorbed", "percent"} & set(proposal.fields)
    assert "does not fit 14 of 21" in proposal.abstained["n_resorbed"].reason
    assert "below the protocol's 0.70" in proposal.abstained["n_total"].reason
    agreeing = propose("t", "Among 21 patients, regression occurred in 14 (66.7%).")
    assert agreeing.fields["n_total"].confidence >= 0.9
    assert agreeing.value("percent") == 66.7


def test_stated_percent_picks_the_total_it_fits() -> None:
    got = values(
        "Of 48 patients, 39 (81.3%) had regression of the herniation. Nine patients were "
        "lost to follow-up and were excluded."
    )
    assert got == {"n_total": 48, "n_resorbed": 39, "percent": 81.3}


def test_subgroup_counts_give_way_to_the_overall_count() -> None:
    got = values(
        "Transligamentous herniations regressed in 20 of 22 cases, whereas subligamentous "
        "herniations regressed in 9 of 21. Overall, 29 of 43 herniations regressed (67.4%)."
    )
    assert got == {"n_total": 43, "n_resorbed": 29, "percent": 67.4}


def test_reviews_and_case_reports_get_no_counts() -> None:
    review = propose(
        "Resorption: a systematic review",
        "Twenty studies with 1,314 patients were "
        "included. Resorption occurred in 876 of 1314 patients.",
    )
    assert "n_total" not in review.fields and review.value("design") == "Review"
    case = propose("A case report", "We report a 42-year-old man whose herniation resorbed.")
    assert case.value("design") == "Case report" and "n_resorbed" not in case.fields


def test_offsets_point_into_the_original_abstract() -> None:
    abstract = "Methods: forty patients were included. Results: regression in 30 of 40 patients."
    fields = propose("t", abstract).fields
    span = fields["n_resorbed"]
    assert abstract[span.start : span.end] == "30 of 40"
    assert span.evidence == "Results: regression in 30 of 40 patients."
    assert span.method == "count.pair"
    assert span.reason == "30 of 40 stated together"
