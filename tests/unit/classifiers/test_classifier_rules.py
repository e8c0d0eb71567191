"""Protocol rules: language, publication type, missing abstract."""

from __future__ import annotations

import pytest

from classifiers.rules import (
    RULE_LANGUAGE,
    RULE_NO_ABSTRACT,
    RULE_PUBLICATION_TYPE,
    ProtocolRules,
    apply_rules,
)

RULES = {
    "languages": ["eng"],
    "exclude_publication_types": [
        "Review",
        "Case Reports",
        "Comment",
        "Editorial",
        "Letter",
        "Systematic Review",
        "Meta-Analysis",
    ],
}


def record(**fields: object) -> dict:
    base = {
        "title": "Resorption of lumbar disc herniation",
        "abstract": "We followed 40 patients.",
        "languages": ["eng"],
        "publication_types": ["Journal Article"],
    }
    return {**base, **fields}


def test_eligible_record_passes() -> None:
    assert apply_rules(record(), RULES) is None


def test_language_outside_protocol_is_excluded_with_reason() -> None:
    decision = apply_rules(record(languages=["ger"]), RULES)
    assert decision is not None
    assert (decision.action, decision.rule_id) == ("exclude", RULE_LANGUAGE)
    assert "ger" in decision.reason and "eng" in decision.reason


def test_any_allowed_language_keeps_the_record_and_case_is_ignored() -> None:
    assert apply_rules(record(languages=["ger", "ENG"]), RULES) is None


def test_unknown_language_is_not_excluded() -> None:
    assert apply_rules(record(languages=[]), RULES) is None


@pytest.mark.parametrize("ptype", ["Review", "Case Reports", "comment", "Meta-Analysis"])
def test_excluded_publication_types(ptype: str) -> None:
    decision = apply_rules(record(publication_types=["Journal Article", ptype]), RULES)
    assert decision is not None
    assert (decision.action, decision.rule_id) == ("exclude", RULE_PUBLICATION_TYPE)
    assert ptype in decision.reason


@pytest.mark.parametrize("abstract", [None, "", "   "])
def test_missing_abstract_is_flagged_never_excluded(abstract: str | None) -> None:
    decision = apply_rules(record(abstract=abstract), RULES)
    assert decision is not None
    assert (decision.action, decision.rule_id) == ("flag", RULE_NO_ABSTRACT)


def test_exclusion_rule_wins_over_missing_abstract_flag() -> None:
    decision = apply_rules(record(abstract="", publication_types=["Editorial"]), RULES)
    assert decision is not None and decision.action == "exclude"


def test_empty_protocol_only_flags_missing_abstracts() -> None:
    rules = ProtocolRules()
    assert apply_rules(record(languages=["jpn"], publication_types=["Review"]), rules) is None
    flagged = apply_rules(record(abstract=None), rules)
    assert flagged is not None and flagged.action == "flag"


def test_bad_protocol_value_names_the_field() -> None:
    with pytest.raises(ValueError, match="languages"):
        ProtocolRules.from_mapping({"languages": "eng"})
