"""esearch answers PubMed gives with HTTP 200 that must not be read as a count (no network).

Each fixture is written here, with other words and numbers, after a structure seen in real
E-utilities output in public repositories; the test names that structure.
"""

from __future__ import annotations

import pytest

from services.pubmed.errors import (
    EntrezQueryError,
    MalformedResponseError,
    QueryTranslationError,
    SearchAlteredError,
    TermDroppedError,
    TermNotFoundError,
    UnsafeXMLError,
)
from services.pubmed.esearch import check_translation, read_esearch

DOCTYPE = (
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">'
)
TERM = '(sciatica[tiab] OR "disc extrusion"[tiab]) AND 2025/03/01:2025/03/09[crdt]'
TRANSLATION = (
    '("sciatica"[Title/Abstract] OR "disc extrusion"[Title/Abstract]) AND '
    "2025/03/01:2025/03/09[crdt]"
)


def answer(
    inner: str, *, doctype: str = DOCTYPE, history: bool = True, translation: str = TRANSLATION
) -> bytes:
    keys = "<QueryKey>1</QueryKey><WebEnv>MCID_0a1b2c3d4e5f</WebEnv>" if history else ""
    return (
        f'<?xml version="1.0" encoding="UTF-8" ?>\n{doctype}\n<eSearchResult>'
        f"<Count>17</Count><RetMax>0</RetMax><RetStart>0</RetStart>{keys}<IdList/>"
        f"<TranslationSet/><QueryTranslation>{translation}</QueryTranslation>{inner}"
        "</eSearchResult>"
    ).encode()


def test_a_plain_answer_gives_count_and_history() -> None:
    result = read_esearch(answer(""), TERM)
    assert (result.count, result.webenv, result.query_key) == (17, "MCID_0a1b2c3d4e5f", "1")


def test_an_empty_window_with_no_items_found_is_an_answer() -> None:
    # real structure: Count 0 and WarningList/OutputMessage "No items found." alone
    body = answer("<WarningList><OutputMessage>No items found.</OutputMessage></WarningList>")
    assert read_esearch(body.replace(b"<Count>17", b"<Count>0"), TERM).count == 0


@pytest.mark.parametrize(
    "inner, kind, named",
    [
        # real structure: ErrorList/PhraseNotFound naming a word that matched nothing
        (
            "<ErrorList><PhraseNotFound>sciaticca</PhraseNotFound></ErrorList>",
            TermNotFoundError,
            "sciaticca",
        ),
        # real structure: ErrorList/FieldNotFound for a misspelt field tag
        ("<ErrorList><FieldNotFound>Titl</FieldNotFound></ErrorList>", TermNotFoundError, "Titl"),
        # real structure: WarningList/QuotedPhraseNotFound beside OutputMessage
        (
            '<WarningList><QuotedPhraseNotFound>"disc extrusion"[tiab]</QuotedPhraseNotFound>'
            "<OutputMessage>No items found.</OutputMessage></WarningList>",
            TermDroppedError,
            "disc extrusion",
        ),
        # real structure: WarningList/PhraseIgnored
        (
            "<WarningList><PhraseIgnored>extrusion</PhraseIgnored></WarningList>",
            TermDroppedError,
            "extrusion",
        ),
    ],
)
def test_a_term_pubmed_left_out_fails_the_search(inner: str, kind: type, named: str) -> None:
    with pytest.raises(kind, match=named) as caught:
        read_esearch(answer(inner), TERM)
    assert isinstance(caught.value, SearchAlteredError)
    assert "\n" not in str(caught.value)


def test_an_ignored_stopword_is_not_a_lost_term() -> None:
    body = answer(
        "<WarningList><PhraseIgnored>of</PhraseIgnored></WarningList>",
        translation='"resorption"[All Fields] AND "hernia"[All Fields]',
    )
    assert read_esearch(body, "resorption of hernia").count == 17


def test_a_translation_that_lost_a_word_fails_the_search() -> None:
    # real structure: QueryTranslation where automatic term mapping kept one word only
    lost = '"sciatica"[Title/Abstract] AND 2025/03/01:2025/03/09[crdt]'
    with pytest.raises(QueryTranslationError, match="'extrusion'"):
        read_esearch(answer("", translation=lost), TERM)


def test_translation_words_added_by_mapping_or_truncation_are_fine() -> None:
    # real structure: ATM adds MeSH and spelling variants; a truncation keeps its asterisk
    check_translation(
        "herniat* AND haemorrhage",
        '"herniat*"[All Fields] AND ("haemorrhage"[All Fields] OR '
        '"hemorrhage"[MeSH Terms] OR "hemorrhage"[All Fields])',
    )
    with pytest.raises(QueryTranslationError):
        check_translation("herniat* AND haemorrhage", '"herniat*"[All Fields]')


def test_an_error_element_is_one_clear_query_error() -> None:
    # real structure: <eSearchResult><ERROR>…</ERROR></eSearchResult>
    body = (
        b'<?xml version="1.0" encoding="UTF-8" ?>\n<eSearchResult><ERROR>Invalid query '
        b"syntax near position 12</ERROR></eSearchResult>"
    )
    with pytest.raises(EntrezQueryError, match="refused the query: Invalid query syntax"):
        read_esearch(body, TERM)


def test_no_webenv_is_a_malformed_answer_not_a_key_error() -> None:
    with pytest.raises(MalformedResponseError, match="without a WebEnv"):
        read_esearch(answer("", history=False), TERM)
    assert read_esearch(answer("", history=False), TERM, history=False).webenv is None


def test_an_http_dtd_is_neither_fetched_nor_refused() -> None:
    # real structure: older E-utilities named their DTD over http:// (Bio.Entrez raised ValueError)
    old = DOCTYPE.replace("https://eutils.ncbi.nlm.nih.gov", "http://127.0.0.1:9")
    assert read_esearch(answer("", doctype=old), TERM).count == 17


def test_an_answer_with_entities_is_refused_whole() -> None:
    body = (
        b'<?xml version="1.0"?><!DOCTYPE eSearchResult [<!ENTITY c "17">]>'
        b"<eSearchResult><Count>&c;</Count></eSearchResult>"
    )
    with pytest.raises(UnsafeXMLError, match="refused"):
        read_esearch(body, TERM)


@pytest.mark.parametrize(
    "body",
    [b"<html><body>502 Bad Gateway</body></html>", b"<eSearchResult><Count>1", b"<eSearchResult/>"],
)
def test_other_bodies_are_malformed(body: bytes) -> None:
    with pytest.raises(MalformedResponseError):
        read_esearch(body, TERM)
