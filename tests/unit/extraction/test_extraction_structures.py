"""One passage per structure of real abstracts that issue 10 lists (items 1-7).

Each passage was written for this test (no published text): it reproduces the shape named in
its test's docstring with other wording and numbers. The extractor must give the right counts
or abstain (a field left empty, with its reason) - never a wrong number.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from services.extraction import Proposal, propose
from services.extraction.schema import (
    ExtractionSchema,
    default_schema,
    load_schema,
    schema_from_mapping,
)
from services.extraction.text import normalize

ROOT = Path(__file__).resolve().parents[3]
TITLE = "Regression of lumbar disc herniation on follow-up MRI"


@pytest.fixture(scope="module")
def schema() -> ExtractionSchema:
    return load_schema(ROOT / "reviews" / "ldh_resorption" / "protocol.toml")


def counts(proposal: Proposal) -> dict[str, int | float]:
    return {
        k: v.value for k, v in proposal.fields.items() if k in ("n_total", "n_resorbed", "percent")
    }


def right_or_abstained(proposal: Proposal, want: dict[str, int]) -> None:
    """Each expected count is proposed right or abstained with a reason; none is wrong."""
    got = counts(proposal)
    for name, value in want.items():
        if name in got:
            assert got[name] == value, (name, got, proposal.abstained)
        else:
            assert proposal.abstained[name].reason, name


# -- 1. denominators -----------------------------------------------------------------------


def test_denominator_is_the_imaged_subset_not_the_enrolled(schema: ExtractionSchema) -> None:
    """ "N patients were enrolled … M (< N) had repeat MRI … in K of these"."""
    p = propose(
        TITLE,
        "We enrolled 143 patients with lumbar disc herniation. Of them, 102 had a repeat MRI "
        "after a year. The herniation had regressed in 66 of these.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 102, "n_resorbed": 66}
    assert p.fields["n_total"].reason == "latest stage of the sample: 102 imaged/analysed"


def test_pain_relief_pair_is_not_the_outcome_but_gives_the_total(schema: ExtractionSchema) -> None:
    """ "K of N had pain relief … the herniation shrank by more than half in J"."""
    p = propose(
        TITLE,
        "Fifty-nine patients were followed with MRI for a year. Leg pain was relieved in 50 of "
        "the 59 patients, and the herniation shrank by more than half in 27.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 59, "n_resorbed": 27}


def test_subset_phrase_is_not_a_total(schema: ExtractionSchema) -> None:
    """ "among the K patients whose herniation resorbed …" is a subset."""
    p = propose(
        TITLE,
        "We reviewed 118 patients who had two MRI scans. The herniation resorbed in 53 patients "
        "(44.9%). Among the 53 patients whose herniation resorbed, 35 had an extrusion.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 118, "n_resorbed": 53, "percent": 44.9}


def test_a_total_stated_alone_is_proposed(schema: ExtractionSchema) -> None:
    p = propose(
        TITLE,
        "Eighty-two patients with lumbar disc herniation underwent repeat MRI. Regression was "
        "associated with extrusion and rim enhancement.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 82}
    assert "n_resorbed" not in p.abstained


def test_two_totals_at_one_stage_abstain_with_both_named(schema: ExtractionSchema) -> None:
    p = propose(
        TITLE,
        "We included 103 patients from centre A and 87 patients from centre B. Regression was "
        "seen in 61 patients.",
        schema=schema,
    )
    assert "n_total" not in p.fields
    reason = p.abstained["n_total"].reason
    assert reason.startswith("2 candidate totals: ") and "103" in reason and "87" in reason
    assert {c.value for c in p.abstained["n_total"].candidates} >= {103, 87}
    assert p.value("n_resorbed") == 61


# -- 2. categories -------------------------------------------------------------------------


def test_categories_add_up_with_n_equals(schema: ExtractionSchema) -> None:
    """ "no regression (n = a), partial regression (n = b), complete resolution (n = c)"."""
    p = propose(
        TITLE,
        "Follow-up MRI showed no regression (n = 23), partial regression (n = 31) and complete "
        "resolution (n = 9).",
        schema=schema,
    )
    assert counts(p) == {"n_total": 63, "n_resorbed": 40}
    assert p.fields["n_resorbed"].method == "count.categories"


def test_categories_with_percentages_and_cases(schema: ExtractionSchema) -> None:
    """ "a (x%) showed no change, b (y%) partial and c (z%) complete resolution", "(45 cases)"."""
    p = propose(
        TITLE,
        "At one year, 15 (25.0%) showed no change, 33 (55.0%) partial and 12 (20.0%) complete "
        "resolution of the herniation.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 60, "n_resorbed": 45}
    cases = propose(
        TITLE,
        "Resorption was graded as complete (14 cases), partial (30 cases) or absent (21 cases).",
        schema=schema,
    )
    assert counts(cases) == {"n_total": 65, "n_resorbed": 44}


def test_in_all_patients_counts_the_whole_group(schema: ExtractionSchema) -> None:
    p = propose(
        TITLE,
        "Thirty-six patients were followed with MRI. Extrusions (n = 16) regressed in all "
        "patients, whereas among protrusions (n = 20) regression was seen in 7.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 36, "n_resorbed": 23}


# -- 3. percentages that are not patient shares -------------------------------------------


def test_volume_and_reduction_percentages_never_become_counts(schema: ExtractionSchema) -> None:
    p = propose(
        TITLE,
        "Earlier studies reported regression in 30% to 90% of herniations. In our 44 patients "
        "the mean volume of the herniation decreased by 38.2% ± 20.5%, and canal occlusion fell "
        "from 45% to 24%. The average reduction of the herniation was 41%.",
        schema=schema,
    )
    got = counts(p)
    assert got == {"n_total": 44}
    assert not {38, 20, 45, 24, 41, 30, 90} & set(got.values())


# -- 4. sentences naming the outcome without reporting it ---------------------------------


def test_methods_background_and_clinical_sentences_are_not_reports(
    schema: ExtractionSchema,
) -> None:
    p = propose(
        TITLE,
        "Regression of a herniated disc was first described decades ago. MRI was repeated every "
        "3 months until the herniation disappeared, to assess whether it would regress. "
        "Forty-seven patients were included; their symptoms disappeared in 40 patients. The "
        "herniation decreased in size in 26 of the 47.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 47, "n_resorbed": 26}


def test_clinical_outcome_only_gives_no_counts(schema: ExtractionSchema) -> None:
    p = propose(
        "Epidural injection for sciatica",
        "Sixty-one patients with sciatica from lumbar disc herniation were injected. Sciatica "
        "resolved in 49 of 61 patients. Whether the herniation regressed was not examined.",
        schema=schema,
    )
    assert counts(p) == {}


# -- 5. numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("abstract", "want"),
    [
        (
            "One-hundred and twenty-seven patients had repeat MRI; the herniation regressed in "
            "eighty-four.",
            {"n_total": 127, "n_resorbed": 84},
        ),
        (
            "Of two thousand and thirty patients with repeat MRI, one thousand two hundred and "
            "six showed regression.",
            {"n_total": 2030, "n_resorbed": 1206},
        ),
        (
            "Patients (N=95) had MRI twice. Regression was seen in 61 (64\u00b72%).",
            {"n_total": 95, "n_resorbed": 61, "percent": 64.2},
        ),
        (
            "Patients (n = 95) had MRI twice. Regression was seen in 61 patients.",
            {"n_total": 95, "n_resorbed": 61},
        ),
        (
            "A total of 1\u2009312 patients had MRI twice; regression was found in 877.",
            {"n_total": 1312, "n_resorbed": 877},
        ),
        (
            "Since a report in 1985 [7], regression is known. In 2019-2021 we followed 58 "
            "patients with MRI; regression occurred in 39.",
            {"n_total": 58, "n_resorbed": 39},
        ),
    ],
)
def test_numbers_in_words_symbols_and_years(
    schema: ExtractionSchema, abstract: str, want: dict[str, int]
) -> None:
    got = counts(propose(TITLE, abstract, schema=schema))
    assert got == want
    assert not {1985, 2019, 2021, 7} & set(got.values())


def test_normalisation_of_number_words() -> None:
    assert normalize("One-hundred and forty-three").text == "143"
    assert normalize("two thousand and twelve").text == "2012"
    assert normalize("one thousand three hundred and four").text == "1304"
    assert normalize("67\u00b74% of 1\u2009204").text == "67.4% of 1204"


# -- 6. not a prevalence study ------------------------------------------------------------


def test_case_report_gets_no_counts_with_the_protocols_capitalised_labels(
    schema: ExtractionSchema,
) -> None:
    p = propose(
        "Resorption of a sequestrated lumbar disc: case report",
        "A 39-year-old man had an L5-S1 sequestration; 2 of his 3 follow-up scans showed "
        "resorption, complete at 7 months.",
        schema=schema,
    )
    assert p.value("design") == "Case report"  # the protocol's own spelling
    assert counts(p) == {}
    assert "case report" in p.abstained["n_total"].reason


def test_we_present_three_cases_is_a_case_series(schema: ExtractionSchema) -> None:
    p = propose(
        TITLE,
        "We present 3 cases of lumbar disc extrusion that regressed completely in 3 of 3 "
        "patients within 6 months.",
        schema=schema,
    )
    assert p.value("design") in ("Case series", "Case report")
    assert counts(p) == {}


def test_meta_analysis_mentioning_randomised_trials_is_a_review(schema: ExtractionSchema) -> None:
    p = propose(
        "Regression of lumbar disc herniation: meta-analysis",
        "We searched three databases for randomized controlled trials and cohorts. Nineteen "
        "studies with 1,420 patients were included; regression occurred in 901 of 1420.",
        schema=schema,
    )
    assert p.value("design") == "Review"
    assert counts(p) == {}


def test_allocated_randomly_is_an_rct_and_keeps_its_counts(schema: ExtractionSchema) -> None:
    p = propose(
        TITLE,
        "Seventy patients were allocated randomly to two exercise programmes. Regression was "
        "seen in 20 of 35 and 16 of 35 patients, respectively.",
        schema=schema,
    )
    assert p.value("design") == "RCT"
    assert counts(p) == {"n_total": 70, "n_resorbed": 36}
    # the study shows that it has two arms (issue 14 item 2)
    assert p.fields["n_resorbed"].note == "2 groups or arms added: 20 of 35, 16 of 35"
    assert p.fields["n_total"].note == p.fields["n_resorbed"].note


@pytest.mark.parametrize("region", ["cervical", "thoracic"])
def test_another_spinal_region_gets_no_counts(schema: ExtractionSchema, region: str) -> None:
    p = propose(
        f"Regression of {region} disc herniation",
        f"Forty-two patients with {region} disc herniation were followed with MRI; regression "
        "occurred in 25 of 42.",
        schema=schema,
    )
    assert counts(p) == {}
    assert region in p.abstained["n_resorbed"].reason


def test_condition_terms_come_from_the_protocol() -> None:
    cervical = load_schema(ROOT / "reviews" / "ldh_resorption" / "protocol.toml")
    cervical = ExtractionSchema(outcome_terms=cervical.outcome_terms, condition_terms=("cervical",))
    p = propose(
        "Regression of cervical disc herniation",
        "Forty-two patients with cervical disc herniation were followed with MRI; regression "
        "occurred in 25 of 42.",
        schema=cervical,
    )
    assert counts(p) == {"n_total": 42, "n_resorbed": 25}


# -- 7. one outcome vocabulary ------------------------------------------------------------


def test_the_outcome_vocabulary_is_the_protocols_only(schema: ExtractionSchema) -> None:
    assert {"resolution", "resolved herniation"} <= set(schema.outcome_terms)
    generic = default_schema()  # nothing of the LDH review is built in
    assert generic.outcome_terms == () and generic.condition_terms == ()
    assert not (generic.designs or generic.predictors or generic.mechanisms)
    assert not generic.herniation_types
    text = "Forty-two patients were followed with MRI; resorption occurred in 25 of 42."
    assert counts(propose("Resorption", text, schema=schema)) == {"n_total": 42, "n_resorbed": 25}
    empty = propose("Resorption", text, schema=generic)
    assert counts(empty) == {}
    assert "no outcome_terms" in empty.abstained["n_resorbed"].reason


def test_resolution_is_read_as_the_outcome(schema: ExtractionSchema) -> None:
    p = propose(
        TITLE,
        "Fifty-one patients were re-imaged after a year. Resolution of the herniation was seen "
        "in 29 of the 51; a resolved herniation was commoner after extrusion.",
        schema=schema,
    )
    assert counts(p) == {"n_total": 51, "n_resorbed": 29}


# -- abstaining below the protocol's threshold --------------------------------------------


def test_below_threshold_counts_are_left_empty_with_the_reason(schema: ExtractionSchema) -> None:
    p = propose(TITLE, "Among 30 patients, regression occurred in 12 (50%).", schema=schema)
    assert counts(p) == {}
    assert "does not fit 12 of 30" in p.abstained["n_resorbed"].reason
    stored = p.to_dict()["fields"]["n_total"]
    assert stored["value"] is None and stored["abstained"] is True and stored["reason"]


def test_other_conditions_come_from_the_protocol() -> None:
    # No spinal region is built in: a knee review names the hip as the other condition.
    text = "Sixty patients with hip osteoarthritis were followed; remission occurred in 21 of 60."
    knee = {"outcome_terms": ["remission"], "condition_terms": ["knee"]}
    assert counts(propose("Hip", text, schema=schema_from_mapping(knee))) == {
        "n_total": 60, "n_resorbed": 21
    }
    hip = propose("Hip", text, schema=schema_from_mapping(knee | {"other_conditions": {"hip": ["hip"]}}))
    assert counts(hip) == {}
    assert "a hip study" in hip.abstained["n_resorbed"].reason
