"""The efetch parser on the demo snapshot's XML and on broken bodies (no network)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from services.pubmed.errors import MalformedResponseError, UnsafeXMLError
from services.pubmed.parse import parse_article_set, title_key
from services.pubmed.xmlbuild import Article, write_article_set

DEMO = Path(__file__).resolve().parents[3] / "reviews" / "ldh_resorption" / "demo"


def test_structured_abstract_authors_dates_and_ids() -> None:
    parsed = parse_article_set((DEMO / "week1.xml").read_bytes())
    by_pmid = {r.pmid: r for r in parsed.records}
    first = by_pmid[99000101]
    assert [s["label"] for s in first.abstract_sections] == [
        "BACKGROUND",
        "METHODS",
        "RESULTS",
        "CONCLUSIONS",
    ]
    assert first.abstract.startswith("BACKGROUND: The frequency")
    assert "41 (66.1%)" in first.abstract
    assert first.create_date == dt.date(2024, 1, 2)
    assert first.first_author == "Tanaka"
    assert first.affiliations == [
        "Department of Orthopaedic Surgery, Demo University, Osaka, Japan"
    ]
    assert by_pmid[99000106].doi == "10.1159/000515308"
    assert by_pmid[99000105].languages == ["ger"]
    assert by_pmid[99000104].publication_types == ["Case Reports"]
    assert by_pmid[99000110].abstract == ""
    assert len(parsed.records) == 10 and parsed.deleted == []


def test_retraction_notice_and_retracted_article() -> None:
    parsed = parse_article_set((DEMO / "week2.xml").read_bytes())
    notice = next(r for r in parsed.records if r.pmid == 99000203)
    assert notice.retracts == [99000102]
    assert not notice.is_retracted


def test_delete_citations_and_retracted_type(tmp_path: Path) -> None:
    path = tmp_path / "set.xml"
    write_article_set(
        path,
        [
            Article(
                pmid=1,
                title="T",
                created=dt.date(2024, 1, 1),
                publication_types=["Journal Article", "Retracted Publication"],
            )
        ],
        deleted=[5, 6],
    )
    parsed = parse_article_set(path.read_bytes())
    assert parsed.deleted == [5, 6]
    assert parsed.records[0].is_retracted


def test_a_changed_record_changes_its_hash(tmp_path: Path) -> None:
    hashes = []
    for text in ("30 of 40", "31 of 40", "30 of 40"):
        path = tmp_path / "x.xml"
        write_article_set(
            path, [Article(pmid=1, title="T", created=dt.date(2024, 1, 1), abstract=[("", text)])]
        )
        hashes.append(parse_article_set(path.read_bytes()).records[0].content_hash())
    assert hashes[0] != hashes[1] and hashes[0] == hashes[2]


@pytest.mark.parametrize(
    "body",
    [
        b"<?xml version='1.0'?><PubmedArticleSet><PubmedArticle><MedlineCitation>",
        b"<html><body>Service unavailable</body></html>",
        b"",
    ],
)
def test_broken_bodies_are_refused(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        parse_article_set(body)


def test_the_parser_refuses_a_body_declaring_external_entities() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet SYSTEM "http://127.0.0.1:9/x.dtd" '
        b'[<!ENTITY e SYSTEM "file:///etc/passwd">]><PubmedArticleSet>&e;</PubmedArticleSet>'
    )
    with pytest.raises(UnsafeXMLError, match="refused"):
        parse_article_set(body)


def test_title_key_normalises() -> None:
    assert (
        title_key("Magnetic  Resonance Imaging: in Follow-up!")
        == "magnetic resonance imaging in follow up"
    )
    assert title_key("") is None


def test_inline_markup_keeps_all_text_and_collective_authors() -> None:
    body = (
        b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID>7</PMID><Article>"
        b"<ArticleTitle>Resorption of <i>sequestered</i> discs in  <sub>2</sub> groups</ArticleTitle>"
        b"<AuthorList><Author><CollectiveName>LDH <b>Study</b> Group</CollectiveName></Author>"
        b"<Author><LastName>Kim</LastName><ForeName>Min</ForeName><Initials>M</Initials>"
        b"<AffiliationInfo><Affiliation>Seoul, Korea</Affiliation></AffiliationInfo></Author>"
        b"</AuthorList></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    record = parse_article_set(body).records[0]
    assert record.title == "Resorption of sequestered discs in 2 groups"
    assert record.authors == [
        {"collective": "LDH Study Group"},
        {"last": "Kim", "fore": "Min", "initials": "M"},
    ]
    # a collective first author is the first author (duplicate matching needs one): issue 12 #7
    assert record.affiliations == ["Seoul, Korea"] and record.first_author == "LDH Study Group"
