"""The data audit on small inline tables and on the review's baseline Table 1."""

from __future__ import annotations

import csv

import pytest
from conftest import TABLE1

from services.meta_analysis.audit import Headline, audit, poolable
from services.meta_analysis.studies import Study


def _codes(findings: list, study: str | None) -> set[str]:  # type: ignore[type-arg]
    return {f.code for f in findings if f.study == study}


def test_impossible_rows_are_errors_and_left_out() -> None:
    studies = [
        Study(label="ok", events=5, total=10),
        Study(label="over", events=12, total=10),
        Study(label="neg", events=-1, total=10),
        Study(label="zero", events=0, total=0),
        Study(label="gap", events=None, total=10),
        Study(label="text", events=None, total=10, extra={"raw_events": "n/a"}),
    ]
    findings = audit(studies)
    assert _codes(findings, "over") == {"events_exceed_total"}
    assert _codes(findings, "neg") == {"negative_count"}
    assert _codes(findings, "zero") == {"zero_total"}
    assert _codes(findings, "gap") == {"missing_count"}
    assert "not a number ('n/a')" in next(f.message for f in findings if f.study == "text")
    assert all(f.severity == "error" for f in findings)
    kept, excluded = poolable(studies, findings)
    assert [s.label for s in kept] == ["ok"]
    assert set(excluded) == {"over", "neg", "zero", "gap", "text"}


def test_percentages_sex_and_duplicates() -> None:
    studies = [
        Study(label="Smith et al., 2001", events=11, total=14, reported_percent=78.6),
        Study(label="Typo et al., 2002", events=111, total=14, reported_percent=78.6),
        Study(label="Off et al., 2003", events=21, total=34, reported_percent=66.8),
        Study(label="Round et al., 2004", events=71, total=111, reported_percent=63.9),
        Study(label="Sex et al., 2005", events=36, total=40, sex="21/15"),
        Study(label="Ahn et al., 2000", events=13, total=17, age_range="19-73", sex="15/7"),
        Study(label="Ahn et al., 2002", events=13, total=17, age_range="19-73", sex="15/7"),
        Study(label="Komori et al., 1996", events=49, total=77),
        Study(label="Komori et al., 1998", events=32, total=48),
    ]
    findings = audit(studies)
    assert _codes(findings, "Smith et al., 2001") == set()
    typo = [f for f in findings if f.study == "Typo et al., 2002"]
    assert {f.code for f in typo} == {"events_exceed_total", "percent_mismatch"}
    assert "fits 11/14" in next(f.message for f in typo if f.code == "percent_mismatch")
    assert _codes(findings, "Off et al., 2003") == {"percent_mismatch"}
    assert _codes(findings, "Round et al., 2004") == {"percent_rounding"}
    assert _codes(findings, "Sex et al., 2005") == {"sex_total_mismatch"}
    assert "duplicate_cohort" in _codes(findings, "Ahn et al., 2002")
    assert _codes(findings, "Komori et al., 1998") == {"same_first_author"}


def test_headline_checked_against_the_studies() -> None:
    studies = [Study(label="A", events=10, total=20), Study(label="B", events=30, total=40)]
    assert audit(studies, Headline(events=40, total=60, percent=66.7, k=2)) == []
    findings = audit(studies, Headline(events=40, total=55, percent=72.7, k=3))
    (finding,) = findings
    assert finding.code == "headline_mismatch" and finding.study is None
    assert "k = 3 stated, 2 studies listed" in finding.message
    assert "55 patients stated, the studies sum to 60" in finding.message


def _table1() -> list[Study]:
    if not TABLE1.exists():
        pytest.skip("the review's baseline Table 1 is not in this checkout")
    out = []
    for r in csv.DictReader(TABLE1.open(newline="")):
        out.append(
            Study(
                label=r["study"],
                events=float(r["n_resorbed"]),
                total=float(r["n_total"]),
                reported_percent=float(r["reported_percent"]),
                year=int(r["study"][-4:]),
                age_range=None if r["age_range"] == "NA" else r["age_range"],
                sex=None if r["sex_male_female"] == "NA" else r["sex_male_female"],
            )
        )
    return out


def test_seed_table1_audit() -> None:
    studies = _table1()
    findings = audit(studies, Headline(events=1684, total=2199, percent=76.6, k=31))
    errors = {f.study for f in findings if f.severity == "error"}
    assert errors == {"Ellenberg et al., 1993"}
    mismatched = {f.study for f in findings if f.code == "percent_mismatch"}
    assert mismatched == {
        "Ma et al., 2021",
        "Dai et al., 2020",
        "Iwabuchi et al., 2010",
        "Ellenberg et al., 1993",
    }
    duplicates = {f.study for f in findings if f.code == "duplicate_cohort"}
    assert duplicates == {"Ahn et al., 2000", "Bozzao et al., 1992"}
    headline = [f for f in findings if f.code == "headline_mismatch"]
    assert len(headline) == 1 and "the studies sum to 2258" in headline[0].message
    kept, excluded = poolable(studies, findings)
    assert len(kept) == 30 and list(excluded) == ["Ellenberg et al., 1993"]


def test_pair_checks_by_grouping_find_exactly_the_all_pairs_findings() -> None:
    """The grouped pair search (O(k) for distinct studies) reports what comparing every pair
    reports: same counts + demographics, same DOI, same first author within five years."""
    import itertools
    import random

    from services.meta_analysis.audit import _close_years, _pairs, _surname

    rng = random.Random(5)
    studies = [
        Study(
            label=f"{rng.choice(['Ahn', 'Bush', 'Cho', 'Dai'])} et al., {rng.randint(1990, 2020)}",
            events=float(rng.choice([5, 9, 12])),
            total=float(rng.choice([20, 30])),
            age_range=rng.choice([None, "20-60", "30-70"]),
            sex=rng.choice([None, "10/10"]),
            year=rng.choice([None, rng.randint(1990, 2020)]),
            extra={"doi": rng.choice([None, None, "10.1/a", "10.1/b"])},
        )
        for _ in range(80)
    ]
    expected = set()
    for i, j in itertools.combinations(range(len(studies)), 2):
        a, b = studies[i], studies[j]
        same = (
            (a.events, a.total) == (b.events, b.total)
            and (a.age_range, a.sex)
            == (
                b.age_range,
                b.sex,
            )
            and bool(a.age_range or a.sex)
        )
        doi = bool(a.extra.get("doi")) and a.extra.get("doi") == b.extra.get("doi")
        if same or doi:
            expected.add(("duplicate_cohort", b.label, a.label))
        elif _surname(a) == _surname(b) and _close_years(a, b):
            expected.add(("same_first_author", b.label, a.label))
    found = {
        (f.code, f.study, f.message.split(" as ")[1].split(":")[0].split(";")[0])
        for f in _pairs(studies)
    }
    assert len(expected) > 100 and found == expected
