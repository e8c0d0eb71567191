"""The efetch parser on structures of real PubMed XML (no network).

Every fixture is written here with other words and numbers after a structure seen in real
efetch output (public repositories, NCBI's DTD documentation); each test names the structure.
"""

from __future__ import annotations

import pytest

from services.pubmed.parse import MAX_PMID, parse_article_set


def article(
    citation: str = "",
    article_inner: str = "",
    pmid: str = '<PMID Version="1">31000001</PMID>',
    data: str = "",
    pubdate: str = "<Year>2022</Year>",
) -> str:
    return (
        f'<PubmedArticle><MedlineCitation Status="MEDLINE" Owner="NLM">{pmid}'
        '<Article PubModel="Print"><Journal><JournalIssue CitedMedium="Print">'
        f"<PubDate>{pubdate}</PubDate></JournalIssue><Title>Spine Notes</Title></Journal>"
        f"<ArticleTitle>A title</ArticleTitle>{article_inner}<Language>eng</Language>"
        '<PublicationTypeList><PublicationType UI="D016428">Journal Article</PublicationType>'
        f"</PublicationTypeList></Article>{citation}</MedlineCitation>"
        '<PubmedData><History><PubMedPubDate PubStatus="entrez"><Year>2022</Year><Month>4</Month>'
        f"<Day>9</Day></PubMedPubDate></History>{data}</PubmedData></PubmedArticle>"
    )


def parse(*articles: str):  # type: ignore[no-untyped-def]
    body = (
        '<?xml version="1.0" ?>\n<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, '
        '1st January 2025//EN" "https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">\n'
        "<PubmedArticleSet>" + "".join(articles) + "</PubmedArticleSet>"
    )
    return parse_article_set(body.encode())


@pytest.mark.parametrize(
    "pubdate, printed, year",
    [
        ("<MedlineDate>2003 Jul-Aug</MedlineDate>", "2003 Jul-Aug", 2003),  # MedlineDate, a range
        ("<MedlineDate>1997 Nov-1998 Feb</MedlineDate>", "1997 Nov-1998 Feb", 1997),  # across years
        ("<Year>2019</Year><Season>Winter</Season>", "2019 Winter", 2019),  # PubDate/Season
        ("<Year>2020</Year><Month>Mar</Month><Day>05</Day>", "2020 Mar 05", 2020),
    ],
)
def test_publication_date_forms(pubdate: str, printed: str, year: int) -> None:
    record = parse(article(pubdate=pubdate)).records[0]
    assert (record.pub_date, record.year) == (printed, year)


def test_a_medline_date_longer_than_forty_characters_is_kept_whole() -> None:
    long = "2011 Spring-Summer (published with a supplement in 2012)"
    assert parse(article(pubdate=f"<MedlineDate>{long}</MedlineDate>")).records[0].pub_date == long


def test_indented_mathml_does_not_split_words() -> None:
    # real structure: AbstractText holding mml:math with pretty-printed layout
    abstract = (
        '<Abstract><AbstractText>Uptake rose (<mml:math xmlns:mml="http://www.w3.org/1998/'
        'Math/MathML">\n      <mml:msub>\n        <mml:mi>K</mml:mi>\n        <mml:mi>d</mml:mi>\n'
        "      </mml:msub>\n      <mml:mo>=</mml:mo>\n      <mml:mn>4.2</mml:mn>\n"
        "    </mml:math>) in the cohort.</AbstractText></Abstract>"
    )
    record = parse(article(article_inner=abstract)).records[0]
    assert record.abstract == "Uptake rose (Kd=4.2) in the cohort."


def test_suffix_collective_first_author_and_both_affiliation_forms() -> None:
    # real structures: Author/Suffix; AuthorList led by a CollectiveName; the pre-2014
    # Article/Affiliation (one string for the first author) beside the AffiliationInfo form
    authors = (
        "<Affiliation>Clinic of Spine Care, Lyon, France.</Affiliation>"
        '<AuthorList CompleteYN="Y"><Author ValidYN="Y"><CollectiveName>Nordic Disc '
        'Registry Group</CollectiveName></Author><Author ValidYN="Y"><LastName>Ortega'
        "</LastName><ForeName>Luis</ForeName><Initials>L</Initials><Suffix>3rd</Suffix>"
        "<AffiliationInfo><Affiliation>Madrid</Affiliation></AffiliationInfo></Author>"
        "</AuthorList>"
    )
    record = parse(article(article_inner=authors)).records[0]
    assert record.authors[1] == {"last": "Ortega", "fore": "Luis", "initials": "L", "suffix": "3rd"}
    assert record.first_author == "Nordic Disc Registry Group"
    assert record.affiliations == ["Clinic of Spine Care, Lyon, France.", "Madrid"]


def test_vernacular_title_and_other_abstract_are_kept() -> None:
    # real structures: Article/VernacularTitle; MedlineCitation/OtherAbstract Type Language
    inner = "<VernacularTitle>Reabsorción de la hernia discal.</VernacularTitle>"
    other = (
        '<OtherAbstract Type="Publisher" Language="spa"><AbstractText>Se estudiaron 40 '
        "pacientes.</AbstractText></OtherAbstract>"
    )
    record = parse(article(citation=other, article_inner=inner)).records[0]
    assert record.vernacular_title == "Reabsorción de la hernia discal."
    assert record.other_abstracts == [
        {"type": "Publisher", "language": "spa", "text": "Se estudiaron 40 pacientes."}
    ]


def test_doi_case_is_kept() -> None:
    data = (
        '<ArticleIdList><ArticleId IdType="pubmed">31000001</ArticleId><ArticleId '
        'IdType="doi">10.1016/S0140-6736(21)00123-X</ArticleId></ArticleIdList>'
    )
    assert parse(article(data=data)).records[0].doi == "10.1016/S0140-6736(21)00123-X"


def test_a_book_chapter_is_a_record() -> None:
    # real structure: PubmedBookArticle/BookDocument with Book/BookTitle, chapter AuthorList
    # Type="authors" beside the book's editors, PublicationType without a list, PubmedBookData
    book = (
        '<PubmedBookArticle><BookDocument><PMID Version="1">36000042</PMID><ArticleIdList>'
        '<ArticleId IdType="bookaccession">NBK990001</ArticleId></ArticleIdList><Book>'
        "<Publisher><PublisherName>Open Clinical Press</PublisherName></Publisher>"
        '<BookTitle book="ocp">Open Clinical Handbook</BookTitle><PubDate><Year>2024</Year>'
        '<Month>02</Month></PubDate><AuthorList Type="editors"><Author><LastName>Editor'
        "</LastName><ForeName>Ann</ForeName></Author></AuthorList></Book>"
        '<ArticleTitle book="ocp" part="ch9">Lumbar Disc Herniation</ArticleTitle>'
        '<Language>eng</Language><AuthorList Type="authors"><Author><LastName>Writer</LastName>'
        '<ForeName>Ben</ForeName></Author></AuthorList><PublicationType UI="D000000">Study '
        "Guide</PublicationType><Abstract><AbstractText>Most sequestrations shrink.</AbstractText>"
        '</Abstract></BookDocument><PubmedBookData><History><PubMedPubDate PubStatus="entrez">'
        "<Year>2024</Year><Month>2</Month><Day>3</Day></PubMedPubDate></History>"
        "<PublicationStatus>ppublish</PublicationStatus></PubmedBookData></PubmedBookArticle>"
    )
    parsed = parse(article(), book)
    chapter = next(r for r in parsed.records if r.pmid == 36000042)
    assert (chapter.title, chapter.journal, chapter.year) == (
        "Lumbar Disc Herniation",
        "Open Clinical Handbook",
        2024,
    )
    assert chapter.first_author == "Writer" and chapter.publication_types == ["Study Guide"]
    assert str(chapter.create_date) == "2024-02-03"
    assert parsed.quarantined == [] and parsed.skipped == []


def test_an_element_that_is_no_article_is_reported_as_skipped() -> None:
    parsed = parse(article(), "<PubmedDataSet><PMID>31000077</PMID></PubmedDataSet>")
    assert [(s.pmid, s.reason) for s in parsed.skipped] == [
        ("31000077", "<PubmedDataSet> is not a PubMed article")
    ]


@pytest.mark.parametrize(
    "fragment, reason",
    [
        # issue 16 item 1: each kind of malformed article
        ({"pubdate": "<Year>²⁰²¹</Year>"}, "year '²⁰²¹' is not a number written in digits 0-9"),
        ({"pmid": '<PMID Version="1">31000002ab</PMID>'}, "PMID '31000002ab' is not a number"),
        ({"pubdate": "<Year>2021</Year><Month>13</Month>"}, "month 13 is out of range"),
        ({"pubdate": "<Year>99999999999999999999999</Year>"}, "is not a four-digit year"),
        (
            {
                "citation": '<CommentsCorrectionsList><CommentsCorrections RefType="CommentOn"><RefSource>'
                'X</RefSource><PMID Version="1">see above</PMID></CommentsCorrections>'
                "</CommentsCorrectionsList>"
            },
            "PMID 'see above' is not a number",
        ),
        ({"pmid": '<PMID Version="v2">31000003</PMID>'}, "PMID Version 'v2' is not a number"),
        # issue 16 items 2 and 3: a PMID beyond BIGINT, a negative PMID
        ({"pmid": f"<PMID>{MAX_PMID + 1}</PMID>"}, "out of range"),
        ({"pmid": "<PMID>-31000004</PMID>"}, "PMID '-31000004' is not a number"),
        (
            {
                "data": '<ArticleIdList><ArticleId IdType="doi">10.5555/'
                + "x" * 1200
                + "</ArticleId>"
                "</ArticleIdList>"
            },
            "DOI of 1208 characters",
        ),
    ],
)
def test_one_malformed_article_is_quarantined_and_the_rest_read(
    fragment: dict, reason: str
) -> None:
    bad = (
        article(**fragment).replace("31000001", "31000009")
        if "pmid" not in fragment
        else article(**fragment)
    )
    parsed = parse(article(), bad)
    assert [r.pmid for r in parsed.records] == [31000001]
    [held] = parsed.quarantined
    assert reason in held.reason
    assert held.xml.startswith("<PubmedArticle>") and held.xml.endswith("</PubmedArticle>")


def test_a_doi_over_255_characters_is_kept() -> None:
    doi = "10.5555/" + "y" * 300
    data = f'<ArticleIdList><ArticleId IdType="doi">{doi}</ArticleId></ArticleIdList>'
    assert parse(article(data=data)).records[0].doi == doi
