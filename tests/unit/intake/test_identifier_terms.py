"""The replay server answers identifier and title terms, and unknown field tags, as PubMed does;
the stopping aid's interval."""

from __future__ import annotations

import math

from services.pubmed.replay import identifier_terms, plain_words, unknown_field_tags
from services.screening.active import relevant_left


def test_identifier_terms() -> None:
    dois, pmids, titles = identifier_terms(
        '"10.1234/AB.C"[doi] OR 31415926[uid] OR (27182818[pmid]) OR "Dry eye: a survey"[ti]'
    ) or (set(), set(), set())
    assert dois == {"10.1234/ab.c"}
    assert pmids == {"31415926", "27182818"}
    assert titles == {"dry eye a survey"}
    # an ordinary query is not an identifier lookup: every record of the snapshot matches it
    assert identifier_terms('"dry eye"[tiab] AND 1[uid]') is None


def test_unknown_field_tags() -> None:
    term = '("disc herniation"[Title/Abstract] OR "X"[MeSH Terms] OR y[mh]) AND 2020:2021[dp]'
    assert unknown_field_tags(term) == []
    assert unknown_field_tags("dry eye[Nonsense] AND x[tiab]") == ["Nonsense"]
    assert plain_words("Dry-eye (DE): a survey!") == "dry eye de a survey"


def test_relevant_left_interval() -> None:
    # 100 records each with probability 0.1: mean 10, variance 9, interval 10 ± 1.96 * 3
    expected, low, high = relevant_left(10.0, 100 * 0.01, 100)
    assert expected == 10.0
    assert math.isclose(low, 10 - 1.96 * 3) and math.isclose(high, 10 + 1.96 * 3)
    # clipped to [0, queued]
    assert relevant_left(0.5, 0.25, 1) == (0.5, 0.0, 1.0)
