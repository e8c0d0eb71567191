"""Read an esearch answer (``eSearchResult``) and refuse one that did not search the query asked.

PubMed answers a query it could only partly read with HTTP 200 and a count, and says what it
left out beside the count: an ``ErrorList`` (``PhraseNotFound``, ``FieldNotFound``: a term or a
field tag that matched nothing and was dropped), a ``WarningList`` (``QuotedPhraseNotFound``,
``PhraseIgnored``: a phrase dropped from the search), or simply a ``QueryTranslation`` in which a
word of the query no longer appears. Such a count is not the count of the review's query, so
:func:`read_esearch` raises instead of returning it, and the run keeps its window.

The body is parsed by lxml with DTD loading, entity resolution and network access off, so a
DOCTYPE of any scheme (http, https, file) is never fetched and an entity is never expanded.

Errors (see :mod:`services.pubmed.errors`): :class:`TermNotFoundError`,
:class:`TermDroppedError`, :class:`QueryTranslationError` (the query as written was not
searched), :class:`EntrezQueryError` (an ``<ERROR>`` answer), :class:`MalformedResponseError`
(not an ``eSearchResult``, no Count, no WebEnv when the history server was asked for).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from lxml import etree

from services.pubmed.errors import (
    EntrezQueryError,
    MalformedResponseError,
    QueryTranslationError,
    TermDroppedError,
    TermNotFoundError,
)
from services.pubmed.safexml import parse_untrusted

logger = logging.getLogger(__name__)

# PubMed's own stopwords (a subset of its published list): dropped from an unquoted query
# without changing what it finds, so their absence from the translation is not a lost term.
STOPWORDS = frozenset(
    "a about again all almost also although always among an and another any are as at be "
    "because been before being between both but by can could did do does done due during "
    "each either enough especially etc for found from further had has have having here how "
    "however i if in into is it its itself just kg km made mainly make may mg might ml mm "
    "most mostly must nearly neither no nor obtained of often on our overall perhaps pmid "
    "quite rather really regarding seem seen several should show showed shown shows "
    "significantly since so some such than that the their theirs them then there therefore "
    "these they this those through thus to upon use used using various very was we were what "
    "when which while with within without would".split()
)
OPERATORS = frozenset({"and", "or", "not"})
_FIELD_TAG = re.compile(r"\[[^\]]*\]")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class EsearchAnswer:
    """What an esearch answer says: the count, the history keys and the translation."""

    count: int
    webenv: str | None
    query_key: str | None
    translation: str | None
    ids: tuple[int, ...] = ()  # the IdList: the first ``retmax`` PMIDs found


def read_esearch(body: bytes, term: str, *, history: bool = True) -> EsearchAnswer:
    """Parse an esearch body for ``term``; raise when PubMed did not search ``term`` as written.

    ``history``: the request asked for ``usehistory=y``, so a WebEnv and QueryKey must be there.
    """
    try:
        root = parse_untrusted(body, "esearch")
    except etree.XMLSyntaxError as exc:
        raise MalformedResponseError(f"esearch returned malformed XML: {exc}") from exc
    if root.tag != "eSearchResult":
        raise MalformedResponseError(f"esearch returned <{root.tag}>, not <eSearchResult>")
    error = root.findtext("ERROR")
    if error is not None:
        raise EntrezQueryError(f"esearch refused the query: {' '.join(error.split())}")
    _refuse_dropped_terms(root)
    count_text = (root.findtext("Count") or "").strip()
    if not re.fullmatch(r"[0-9]+", count_text):
        raise MalformedResponseError(f"esearch answer has no numeric <Count> ({count_text!r})")
    webenv, query_key = root.findtext("WebEnv"), root.findtext("QueryKey")
    if history and not (webenv and query_key):
        missing = "WebEnv" if not webenv else "QueryKey"
        raise MalformedResponseError(
            f"esearch answered without a {missing} although the history server was asked for"
        )
    translation = root.findtext("QueryTranslation")
    if translation is not None:
        check_translation(term, translation)
    return EsearchAnswer(
        count=int(count_text),
        webenv=webenv,
        query_key=query_key,
        translation=translation,
        ids=tuple(int(t) for t in root.xpath("IdList/Id/text()") if str(t).strip().isdigit()),
    )


def _refuse_dropped_terms(root: etree._Element) -> None:
    not_found = [
        f"{el.tag} {' '.join((el.text or '').split())!r}" for el in root.iterfind("ErrorList/*")
    ]
    if not_found:
        raise TermNotFoundError(
            "PubMed did not search the query as written, it reported "
            + "; ".join(not_found)
            + ": fix the query's term or field tag in the protocol"
        )
    dropped = [
        f"{el.tag} {' '.join((el.text or '').split())!r}"
        for el in root.iterfind("WarningList/*")
        if el.tag != "OutputMessage" and not _is_stopword(el.text)
    ]
    if dropped:
        raise TermDroppedError(
            "PubMed dropped part of the query, it reported "
            + "; ".join(dropped)
            + ": fix the quoted phrase in the protocol's query"
        )


def _is_stopword(text: str | None) -> bool:
    words = _WORD.findall((text or "").lower())
    return bool(words) and all(w in STOPWORDS for w in words)


def query_words(term: str) -> set[str]:
    """The words a query searches for: field tags, operators and stopwords left out."""
    words = _WORD.findall(_FIELD_TAG.sub(" ", term).lower())
    return {w for w in words if w not in OPERATORS and w not in STOPWORDS}


def check_translation(term: str, translation: str) -> None:
    """Raise :class:`QueryTranslationError` when a word of ``term`` is missing from the translation.

    PubMed's automatic term mapping adds words (MeSH headings, spelling variants) but keeps
    every word it searched; a word of the query that is nowhere in the translation was dropped.
    """
    lost = sorted(query_words(term) - set(_WORD.findall(translation.lower())))
    if lost:
        raise QueryTranslationError(
            f"PubMed's translation of the query lost {', '.join(repr(w) for w in lost)} "
            f"(it searched: {' '.join(translation.split())[:300]}): fix the query in the protocol"
        )
