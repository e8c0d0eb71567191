"""Design, country, follow-up, age, sex, vocabularies, the schema and the text helpers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.extraction import (
    Proposal,
    SchemaError,
    default_schema,
    load_schema,
    schema_from_mapping,
)
from services.extraction import propose as propose_with
from services.extraction.text import normalize, sentences

ROOT = Path(__file__).resolve().parents[3]

# The LDH review's vocabularies, from its protocol: the extractor has none of its own.
LDH = load_schema(ROOT / "reviews" / "ldh_resorption" / "protocol.toml")


def propose(title: str, abstract: str, **options: Any) -> Proposal:
    options.setdefault("schema", LDH)
    return propose_with(title, abstract, **options)


def test_normalize_maps_offsets_back() -> None:
    nz = normalize("Forty-two of sixty patients, 1,314 in all; eighty percent.")
    assert nz.text == "42 of 60 patients, 1314 in all; 80%."
    start = nz.text.index("1314")
    assert nz.span(start, start + 4) == (29, 34)
    assert nz.original[slice(*nz.span(0, 8))] == "Forty-two of sixty"


def test_sentences_keep_decimals_and_split_headings() -> None:
    text = "BACKGROUND: A 4.5 mm cut. METHODS: We went. et al. did not."
    got = [text[a:b] for a, b in sentences(text)]
    assert got == ["BACKGROUND: A 4.5 mm cut.", "METHODS: We went. et al. did not."]


@pytest.mark.parametrize(
    ("abstract", "metadata", "design"),
    [
        ("Patients were randomly assigned to two arms.", {}, "RCT"),
        ("This retrospective study reviewed charts.", {}, "Retrospective"),
        ("A prospective cohort of 40 patients.", {}, "Prospective"),
        (
            "Anything.",
            {"publication_types": ["Journal Article", "Randomized Controlled Trial"]},
            "RCT",
        ),
        ("A 35-year-old woman presented with sciatica.", {}, "Case report"),
    ],
)
def test_design(abstract: str, metadata: dict, design: str) -> None:
    assert propose("t", abstract, metadata=metadata).value("design") == design


def test_country_text_before_affiliation_before_demonym() -> None:
    meta = {"affiliations": ["Dept of Orthopaedics, Kyoto University, Kyoto, Japan."]}
    assert (
        propose("t", "Patients were treated in Italy.", metadata=meta).value("country") == "Italy"
    )
    fp = propose("t", "Patients were treated.", metadata=meta).fields["country"]
    assert (fp.value, fp.source, fp.start) == ("Japan", "metadata", None)
    assert propose("t", "We studied 40 Korean patients.").value("country") == "Korea"
    assert "country" not in propose("t", "The Japanese Orthopaedic Association score rose.").fields


@pytest.mark.parametrize(
    ("abstract", "value", "unit"),
    [
        ("The mean follow-up was 14.2 months.", 14.2, "months"),
        ("MRI was repeated at 3, 6 and 12 months.", 12, "months"),
        ("Repeat MRI was done 8 to 14 months later.", [8, 14], "months"),
        ("Patients were followed for two years with MRI.", 2, "years"),
    ],
)
def test_follow_up(abstract: str, value: object, unit: str) -> None:
    fp = propose("t", abstract).fields["follow_up"]
    assert (fp.value, fp.unit) == (value, unit)


def test_symptom_duration_is_not_follow_up() -> None:
    assert "follow_up" not in propose("t", "Patients had pain for 6 weeks before MRI.").fields


def test_age_and_sex() -> None:
    fields = propose(
        "t",
        "Forty patients (18 men and 22 women; mean age 44.5 ± 9 years, "
        "range 20-70) were studied. Ages ranged 20-70 years.",
    ).fields
    assert fields["sex"].value == {"male": 18, "female": 22}
    assert fields["age"].value["mean"] == 44.5
    only_men = propose("t", "The cohort had 141 men.").fields
    assert "sex" not in only_men


def test_vocabularies() -> None:
    fields = propose(
        "MCP-1 in herniated disc",
        "Extruded and sequestrated discs expressed tumor necrosis factor-alpha, IL-1β and MMP-3; "
        "non-contained herniations showed more macrophages. Modic changes were associated with "
        "resorption, and the sample size was small.",
    ).fields
    assert fields["herniation_type"].value == ["Extrusion", "Sequestration", "Non-contained"]
    assert fields["mechanisms"].value == [
        "TNF-α",
        "IL-1β",
        "MMP-3",
        "Macrophage infiltration",
        "MCP-1",
    ]
    assert fields["predictors"].value == ["Modic change"]


def test_schema_from_protocol_lists_and_phrases() -> None:
    schema = schema_from_mapping(
        {
            "outcome_terms": ["resorption"],
            "designs": ["Prospective", "RCT"],
            "predictors": ["Size", "Sacral slope"],
            "phrases": {"Sacral slope": ["SS angle"]},
            "fields": [{"name": "n_total"}],
        }
    )
    assert list(schema.designs) == ["Prospective", "RCT"]  # the protocol's order
    ranked = schema_from_mapping(
        {"designs": ["Prospective", "RCT"], "design_precedence": ["RCT", "Prospective"]}
    )
    assert list(ranked.designs) == ["RCT", "Prospective"]
    assert "SS angle" in schema.predictors["Sacral slope"]
    got = propose(
        "t",
        "A randomized trial. The SS angle was associated with resorption in 30 of 40 patients.",
        schema=schema,
    )
    assert got.value("design") == "RCT"
    assert got.value("predictors") == ["Sacral slope"]
    assert got.value("n_resorbed") == 30


def test_schema_errors_name_the_key() -> None:
    with pytest.raises(SchemaError, match="predictors"):
        schema_from_mapping({"predictors": "Size"})
    with pytest.raises(SchemaError, match=r"extraction\.phrases"):
        schema_from_mapping({"phrases": ["x"]})
    with pytest.raises(SchemaError, match=r"phrases\.designs"):
        schema_from_mapping({"designs": ["RCT"], "phrases": {"designs": ["x"]}})
    with pytest.raises(SchemaError, match="design_precedence names 'Cohort'"):
        schema_from_mapping({"designs": ["RCT"], "design_precedence": ["Cohort"]})


def test_phrases_are_scoped_to_one_vocabulary() -> None:
    # A label in two vocabularies may have other phrases in each (LDH: "Extrusion" is a
    # herniation type matched by "extruded", and a predictor matched as written).
    schema = schema_from_mapping(
        {
            "herniation_types": ["Extrusion"],
            "predictors": ["Extrusion", "Body mass index"],
            "phrases": {
                "herniation_types": {"Extrusion": ["extrusion", "extruded"]},
                "Body mass index": ["body mass index", "\\bBMI\\b"],
            },
        }
    )
    assert schema.herniation_types["Extrusion"] == ("extrusion", "extruded")
    assert schema.predictors["Extrusion"] == ("Extrusion",)
    assert schema.predictors["Body mass index"] == ("body mass index", "\\bBMI\\b")
    assert schema.mechanisms == {} and schema.outcome_terms == ()


def test_review_protocol_loads(tmp_path: Path) -> None:
    protocol = ROOT / "reviews" / "ldh_resorption" / "protocol.toml"
    schema = load_schema(protocol)
    assert schema.outcome_terms and schema.predictors
    bad = tmp_path / "protocol.toml"
    bad.write_text("[extraction\n", encoding="utf-8")
    with pytest.raises(SchemaError, match="not valid TOML"):
        load_schema(bad)
    assert not default_schema().designs  # the generic schema is empty


def test_prefill_uses_the_form_names_and_seed_formats() -> None:
    from services.extraction.form import prefill

    proposal = propose(
        "t",
        "Fifty-five patients (23 men and 32 women) aged 25-67 years were followed for 12 months. "
        "Of 55 patients, 49 (89.1%) showed resorption.",
    )
    values = prefill(proposal.to_dict()["fields"])
    assert values["age_range"] == "25-67"
    assert values["sex_male_female"] == "23/32"
    assert values["follow_up"] == "12 months"
    assert (values["n_total"], values["n_resorbed"]) == (55, 49)


def test_proposing_needs_no_database_layer() -> None:
    import subprocess
    import sys

    code = (
        "import sys, services.extraction as e; e.propose('t', 'Of 5 patients, 4 regressed.'); "
        "print(any(m.startswith(('sqlalchemy', 'db')) for m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert done.stdout.strip() == "False"


def test_finding_directions_are_the_protocols_words() -> None:
    text = "Modic changes were significantly associated with a higher rate of regression."
    vocab = {"predictors": ["Modic change"], "phrases": {"Modic change": ["Modic"]}}
    generic = propose_with("t", text, schema=schema_from_mapping(vocab))
    assert generic.value("predictor_findings")[0]["direction"] == "favours the outcome"
    ldh = propose("t", text)  # the LDH protocol's [evidence] directions
    assert ldh.value("predictor_findings")[0]["direction"] == "favours resorption"
    with pytest.raises(SchemaError, match="directions must name 3"):
        schema_from_mapping(vocab, ["up", "down"])
