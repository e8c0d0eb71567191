"""Untrusted text is escaped; only our <mark> tags are added."""

from __future__ import annotations

from services.web.text import evidence_spans, highlight, keyword_spans, mark


def test_script_is_escaped_and_keywords_marked():
    html = str(
        highlight("<script>alert(1)</script> Resorption & regression", ["resorption", "regress"])
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<mark class="kw">Resorption</mark>' in html
    assert '<mark class="kw">regression</mark>' in html  # word start, with its ending
    assert "&amp;" in html


def test_keyword_inside_a_word_is_not_marked():
    assert keyword_spans("prolumbar lumbar", ["lumbar"]) == [(10, 16, "kw", "")]


def test_keyword_with_markup_cannot_inject():
    html = str(highlight("a <b> tag", ["<b>"]))
    assert "<b>" not in html.replace('<mark class="kw">', "").replace("</mark>", "")


def test_evidence_uses_offsets_only_when_they_match():
    text = "Methods. 20 of 80 resorbed. End."
    good = {"n": {"evidence": "20 of 80 resorbed.", "start": 9, "end": 27}}
    wrong = {"n": {"evidence": "20 of 80 resorbed.", "start": 0, "end": 5}}
    assert evidence_spans(text, good) == [(9, 27, "evidence", "n")]
    assert evidence_spans(text, wrong) == [(9, 27, "evidence", "n")]
    assert evidence_spans(text, {"n": {"evidence": "absent"}}) == []
    html = str(mark(text, evidence_spans(text, good)))
    assert html == 'Methods. <mark class="evidence" data-field="n">20 of 80 resorbed.</mark> End.'


def test_field_name_is_escaped_in_attribute():
    html = str(mark("abc", [(0, 1, "evidence", '"><script>')]))
    assert "<script>" not in html and "&#34;&gt;&lt;script&gt;" in html
