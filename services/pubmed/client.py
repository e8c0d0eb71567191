"""PubMed through Bio.Entrez: esearch on the history server, efetch in batches, with our own
timeouts, retries and a rate limit shared across processes.

Bio.Entrez has the NCBI address built in, no timeout, and retries 429/5xx at once. We keep its
request building but hand it our own ``urlopen`` (as Biopython's tests do): that function sends
to the configured base URL with a timeout, after the rate limiter allows it. Nothing of
Bio.Entrez's module state is written per request: ``email``, ``tool`` and ``api_key`` go with
each request as parameters, and an HTTP or network error of our opener reaches
:meth:`EntrezClient._request` wrapped, so Bio.Entrez's own retry loop (``max_tries``) never
sees it and two clients in one process never race. We retry 429/5xx, timeouts, connection
errors and truncated or malformed bodies with exponential backoff and jitter, then raise
:class:`EntrezUnavailableError`.

Every efetch batch on the history server is checked against what it was asked for
(``min(retmax, count - retstart)`` articles, deletions and unreadable items): NCBI sometimes
answers a batch with fewer articles, or an empty ``PubmedArticleSet``, with HTTP 200. After a
search's last batch, the PMIDs its short batches left out are found from the search's ``IdList``
(esearch again with ``retmax`` up to the cap) and asked for by PMID; those still missing after
``max_tries`` rounds raise :class:`IncompleteFetchError` and the run keeps its window.

Answers are parsed by lxml with DTDs, entities and the network off
(:mod:`services.pubmed.safexml`); an esearch answer that did not search the query as written
raises (:mod:`services.pubmed.esearch`).

Errors: see :mod:`services.pubmed.errors`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import http.client
import logging
import random
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from Bio import Entrez
from lxml import etree

from services.pubmed.errors import (
    EntrezQueryError,
    EntrezUnavailableError,
    IncompleteFetchError,
    MalformedResponseError,
    WindowTooLargeError,
)
from services.pubmed.esearch import read_esearch
from services.pubmed.parse import ArticleSet, parse_article_set
from services.pubmed.ratelimit import NoRateLimit, RateLimiter
from services.pubmed.safexml import parse_untrusted

logger = logging.getLogger(__name__)
T = TypeVar("T")

NCBI_PREFIX = "https://eutils.ncbi.nlm.nih.gov/entrez/eutils/"
_active: contextvars.ContextVar[EntrezClient | None] = contextvars.ContextVar(
    "living_review_entrez_client", default=None
)
_original_urlopen = Entrez.urlopen  # type: ignore[attr-defined]


class _Attempt(Exception):
    """An error of our opener, carried past Bio.Entrez's retry loop to our own."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _urlopen(request: urllib.request.Request, *args: Any, **kwargs: Any) -> Any:
    """Bio.Entrez's opener while one of our clients is calling; the original otherwise."""
    client = _active.get()
    if client is None:
        return _original_urlopen(request, *args, **kwargs)
    try:
        return client._open(request)
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as exc:
        raise _Attempt(exc) from exc


Entrez.urlopen = _urlopen  # type: ignore[attr-defined,assignment]


@dataclass(frozen=True)
class SearchResult:
    """An esearch on the history server for one create-date window."""

    start: dt.date
    end: dt.date
    count: int
    webenv: str
    query_key: str
    term: str = ""  # the term as sent, date range included: asked again for the IdList


@dataclass
class FetchTally:
    """What efetch answered for the searches of a window, against what was asked."""

    asked: int = 0  # records asked for from the history server
    answered: int = 0  # articles, deletions, unreadable and skipped items answered
    short_batches: int = 0  # batches answering fewer than asked
    reasked: int = 0  # PMIDs asked for again by PMID
    recovered: int = 0  # of those, the ones answered

    def to_dict(self) -> dict[str, int]:
        return dict(vars(self))


@dataclass
class ClientConfig:
    base_url: str = NCBI_PREFIX
    email: str = "living-review@example.org"
    tool: str = "living-review"
    api_key: str | None = None
    timeout: float = 60.0
    max_tries: int = 5
    backoff_base: float = 1.0
    backoff_max: float = 60.0
    batch_size: int = 500
    esearch_cap: int = 9_999


class EntrezClient:
    """Search and fetch PubMed records for a query and a create-date window."""

    def __init__(
        self,
        config: ClientConfig,
        limiter: RateLimiter | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.limiter = limiter or NoRateLimit()
        self.requests = 0
        self._sleep = sleep
        self._rng = rng or random.Random()

    # --- public API -------------------------------------------------------------------

    def search(
        self, term: str, start: dt.date, end: dt.date, datetype: str = "crdt"
    ) -> SearchResult:
        """esearch with usehistory=y for records whose ``datetype`` date is in [start, end].

        Raises a :class:`~services.pubmed.errors.SearchAlteredError` when PubMed reports a term
        it did not search, or its translation lost a word of ``term``.
        """
        window = f"({term}) AND {start:%Y/%m/%d}:{end:%Y/%m/%d}[{datetype}]"

        def attempt() -> SearchResult:
            body = self._send("esearch", db="pubmed", term=window, usehistory="y", retmax=0)
            answer = read_esearch(body, window)
            return SearchResult(
                start, end, answer.count, str(answer.webenv), str(answer.query_key), window
            )

        return self._with_retries("esearch", attempt)

    def count(self, term: str, *, until: dt.date | None = None) -> int:
        """How many records the query finds (created up to ``until``). A query PubMed did not
        search as written (an ERROR, a phrase or field tag dropped) raises with PubMed's own
        words (:func:`services.pubmed.esearch.read_esearch`)."""
        window = f"({term}) AND 1800/01/01:{until:%Y/%m/%d}[crdt]" if until else term

        def attempt() -> int:
            body = self._send("esearch", db="pubmed", term=window, retmax=0)
            return read_esearch(body, window, history=False).count

        return self._with_retries("esearch", attempt)

    def search_ids(self, term: str, *, retmax: int = 100) -> list[int]:
        """PMIDs a lookup term finds (first ``retmax``), e.g. ``"10.1/x"[doi] OR "y"[doi]``.

        Lenient on purpose: PubMed drops an identifier it does not have and searches the
        others, which is what a lookup wants (the caller matches the records back); only an
        ``<ERROR>`` answer raises."""

        def attempt() -> list[int]:
            body = self._send("esearch", db="pubmed", term=term, retmax=retmax)
            try:
                root = parse_untrusted(body, "esearch")
            except etree.XMLSyntaxError as exc:
                raise MalformedResponseError(f"esearch returned malformed XML: {exc}") from exc
            error = root.findtext("ERROR")
            if error is not None:
                raise EntrezQueryError(f"esearch refused the lookup: {' '.join(error.split())}")
            return [int(t) for t in root.xpath("IdList/Id/text()") if str(t).strip().isdigit()]

        return self._with_retries("esearch", attempt)

    def search_pmids(self, search: SearchResult) -> list[int]:
        """The PMIDs a search found (its IdList, up to the esearch cap), searched again.

        The same checks as :meth:`search`: a term PubMed did not search as written raises.
        """

        def attempt() -> list[int]:
            body = self._send(
                "esearch", db="pubmed", term=search.term, retmax=self.config.esearch_cap
            )
            answer = read_esearch(body, search.term, history=False)
            if answer.count > len(answer.ids):
                logger.warning(
                    "esearch for %s..%s now finds %d records; its IdList holds %d",
                    search.start, search.end, answer.count, len(answer.ids),
                )
            return list(answer.ids)

        return self._with_retries("esearch IdList", attempt)

    def fetch_pmids(self, pmids: list[int]) -> ArticleSet:
        """efetch records by PMID (POST, one batch per ``batch_size``); unknown PMIDs are absent."""
        out = ArticleSet(records=[], deleted=[])
        size = self.config.batch_size
        for start in range(0, len(pmids), size):
            chunk = ",".join(str(p) for p in pmids[start : start + size])

            def attempt(ids: str = chunk) -> ArticleSet:
                body = self._send("efetch", db="pubmed", id=ids, retmode="xml")
                return parse_article_set(body)

            out.extend(self._with_retries(f"efetch {len(chunk.split(','))} PMIDs", attempt))
        return out

    def plan(
        self, term: str, start: dt.date, end: dt.date, datetype: str = "crdt"
    ) -> list[SearchResult]:
        """Searches covering [start, end], split by date until each is under the esearch cap."""
        result = self.search(term, start, end, datetype)
        if result.count <= self.config.esearch_cap:
            return [result] if result.count else []
        if start >= end:
            raise WindowTooLargeError(
                f"{result.count} records were created on {start} alone, more than the "
                f"{self.config.esearch_cap} esearch returns: narrow the query"
            )
        middle = start + (end - start) // 2
        logger.info("splitting %s..%s (%d records) at %s", start, end, result.count, middle)
        return self.plan(term, start, middle, datetype) + self.plan(
            term, middle + dt.timedelta(days=1), end, datetype
        )

    def fetch(self, search: SearchResult, tally: FetchTally | None = None) -> Iterator[ArticleSet]:
        """efetch every record of a search from the history server, batch by batch.

        Each batch is checked against what it was asked for; when some answered short, the
        PMIDs they left out are asked for by PMID after the last batch (:meth:`_refetch`).
        Raises :class:`IncompleteFetchError` when some stay missing. Only the PMIDs of this
        search are held (at most the esearch cap), never its records.
        """
        tally = tally if tally is not None else FetchTally()
        size = self.config.batch_size
        seen: set[int] = set()
        unattributed = short = 0
        for retstart in range(0, search.count, size):
            batch = self._fetch_batch(search, retstart, size)
            asked, answered = min(size, search.count - retstart), batch.answered()
            tally.asked += asked
            tally.answered += answered
            if answered < asked:
                tally.short_batches += 1
                short += asked - answered
                logger.warning(
                    "efetch retstart=%d of %s..%s answered %d of the %d records asked for",
                    retstart, search.start, search.end, answered, asked,
                )
            seen |= batch.pmids()
            unattributed += batch.unattributed()
            yield batch
        if short:
            yield from self._refetch(search, seen, unattributed, tally)

    # --- internals --------------------------------------------------------------------

    def _refetch(
        self, search: SearchResult, seen: set[int], unattributed: int, tally: FetchTally
    ) -> Iterator[ArticleSet]:
        """Ask by PMID for the records of ``search`` its batches left out, in up to
        ``max_tries`` rounds; IncompleteFetchError for those still missing.

        The history server does not say which records a short batch left out: the search's
        IdList does. Items without a readable PMID (``unattributed``) account for as many of
        the PMIDs not seen.
        """
        missing = [p for p in self.search_pmids(search) if p not in seen]
        tally.reasked += len(missing)
        tries = self.config.max_tries
        for attempt in range(1, tries + 1):
            if len(missing) <= unattributed:
                break
            batch = self.fetch_pmids(missing)
            answered = batch.pmids()
            tally.recovered += sum(1 for p in missing if p in answered)
            missing = [p for p in missing if p not in answered]
            logger.warning(
                "efetch by PMID for %s..%s: %d still missing after round %d of %d",
                search.start, search.end, len(missing), attempt, tries,
            )
            if batch.answered():
                yield batch
            if len(missing) > unattributed and attempt < tries:
                self._sleep(self._backoff(attempt, None))
        if len(missing) > unattributed:
            shown = ", ".join(str(p) for p in missing[:5]) + (", …" if len(missing) > 5 else "")
            raise IncompleteFetchError(
                f"efetch left out {len(missing)} of the {search.count} records esearch found "
                f"for {search.start}..{search.end}, also when asked for them by PMID "
                f"{tries} times (PMIDs {shown}); the run keeps its window and the next run "
                "asks for it again"
            )

    def _fetch_batch(self, search: SearchResult, retstart: int, size: int) -> ArticleSet:
        def attempt() -> ArticleSet:
            body = self._send(
                "efetch",
                db="pubmed",
                WebEnv=search.webenv,
                query_key=search.query_key,
                retstart=retstart,
                retmax=size,
                retmode="xml",
            )
            return parse_article_set(body)

        return self._with_retries(f"efetch retstart={retstart}", attempt)

    def _send(self, utility: str, **params: Any) -> bytes:
        """One call through Bio.Entrez; the whole body is read here so truncation is retried.

        Who we are goes with the request (never into Bio.Entrez's module globals).
        """
        params |= {"email": self.config.email, "tool": self.config.tool}
        if self.config.api_key:
            params["api_key"] = self.config.api_key
        token = _active.set(self)
        try:
            handle = getattr(Entrez, utility)(**params)
            try:
                data = handle.read()
            finally:
                handle.close()
        except _Attempt as carried:
            raise carried.error from None
        finally:
            _active.reset(token)
        return data.encode() if isinstance(data, str) else data

    def _open(self, request: urllib.request.Request) -> Any:
        url = request.full_url
        if url.startswith(NCBI_PREFIX):
            request.full_url = self.config.base_url.rstrip("/") + "/" + url[len(NCBI_PREFIX) :]
        self.limiter.acquire()
        self.requests += 1
        return urllib.request.urlopen(request, timeout=self.config.timeout)

    def _with_retries(self, what: str, call: Callable[[], T]) -> T:
        tries = self.config.max_tries
        attempt = 0
        while True:
            attempt += 1
            try:
                return call()
            except urllib.error.HTTPError as exc:
                if exc.code != 429 and exc.code < 500:
                    raise EntrezQueryError(f"{what}: HTTP {exc.code} {exc.reason}") from exc
                problem, retry_after = f"HTTP {exc.code}", _retry_after(exc)
            except (
                urllib.error.URLError,
                TimeoutError,
                ConnectionError,
                http.client.HTTPException,
            ) as exc:
                problem, retry_after = f"{type(exc).__name__}: {exc}", None
            except MalformedResponseError as exc:
                problem, retry_after = str(exc), None
            if attempt == tries:
                raise EntrezUnavailableError(
                    f"{what} failed {tries} times, last: {problem} (E-utilities at "
                    f"{self.config.base_url}); the next run retries the same window"
                )
            delay = self._backoff(attempt, retry_after)
            logger.warning("%s: %s; retry %d/%d in %.2fs", what, problem, attempt, tries - 1, delay)
            self._sleep(delay)

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with equal jitter, never below a server's Retry-After."""
        ceiling = min(self.config.backoff_max, self.config.backoff_base * 2.0 ** (attempt - 1))
        delay = ceiling / 2 + self._rng.uniform(0, ceiling / 2)
        return max(delay, retry_after or 0.0)


def _retry_after(exc: urllib.error.HTTPError) -> float | None:
    value = exc.headers.get("Retry-After") if exc.headers else None
    try:
        return float(value) if value else None
    except ValueError:
        return None
