"""A local E-utilities server that replays a directory of PubMed XML, for offline use and tests.

It answers ``esearch.fcgi`` and ``efetch.fcgi`` (GET and POST) as PubMed does for the parts the
service uses: the history server (WebEnv, query_key, retstart/retmax), date ranges in the term
(``2024/01/01:2024/01/07[crdt]``, also ``edat``, ``mdat``, ``pdat``) or as
``mindate``/``maxdate``/``datetype``, and PubMed's cap of 9,999 records per search. Every record
of the snapshot is taken to match the non-date part of the term: a snapshot holds the records
that the review's query found. Two exceptions, for resolving identifiers: a term made only of
``"10.x/y"[doi]``, ``123[uid]``/``[pmid]`` and ``"words"[ti]`` items (ORed) matches the records with those
identifiers, and ``"phrase"[ti]`` items the records whose title holds the phrase (punctuation
ignored, as PubMed does); a field tag PubMed does not have (``cancer[Nonsense]``) is answered as PubMed does,
count 0 and the tag in ``ErrorList/FieldNotFound``. Such identifier items combine with a date range,
as PubMed allows: ``(123[uid] OR 456[uid]) AND 2024/01/01:2024/02/01[mdat]`` finds those of the
PMIDs whose record was revised in the range (``mdat`` is read from ``DateRevised``).

A ``<DeleteCitation>`` in a snapshot file (the structure of PubMed's daily update files) deletes
its PMIDs: a later file's deletion removes an earlier file's record (a later record brings it
back). A deleted PMID is found by no search, and efetch by id answers it with a
``<DeleteCitation>`` element instead of an article, as those update files do.

Faults are injected in order, one per request: ``429:2,500:1,truncate:1,slow=2:1``; a count of
``*`` repeats forever. Kinds: an HTTP status (429, 500, 502, 503), ``truncate`` (the body cut in
half), ``reset`` (the connection closed with no answer), ``slow=S`` (S seconds before answering).
Odd answers PubMed gives with HTTP 200 (esearch only, each a structure seen in real E-utilities
output): ``phrasenotfound`` (an ``ErrorList/PhraseNotFound`` naming the query's first word),
``fieldnotfound`` (``ErrorList/FieldNotFound``), ``quotednotfound`` (a
``WarningList/QuotedPhraseNotFound``), ``phraseignored`` (``WarningList/PhraseIgnored``),
``lostterm`` (a ``QueryTranslation`` without the query's first word), ``nowebenv`` (no WebEnv
nor QueryKey), ``error`` (an ``<ERROR>`` element), ``httpdtd`` (a correct answer whose DOCTYPE
names an ``http://`` DTD, as older E-utilities did). Hostile answers (efetch only): ``xxe`` (a
DOCTYPE naming a DTD on this server and an external entity reading ``/etc/passwd``, used in an
ArticleTitle), ``bomb`` (nested entity definitions that would expand to a gigabyte). Short
answers (efetch only, HTTP 200 and well-formed, as NCBI sometimes answers a batch under load):
``short=N`` (the last N articles of the answer left out) and ``emptyset`` (a
``PubmedArticleSet`` with no article at all).
``KIND@efetch`` or ``KIND@esearch`` restricts a fault to one utility.
The server logs every request; ``GET /_log`` returns it as JSON and ``POST /_faults`` replaces
the fault plan (body: the fault string), for tests and demos.

Errors: :class:`SnapshotError` for a snapshot directory that is missing or holds no records,
:class:`FaultSpecError` for a fault string that cannot be read.
"""

from __future__ import annotations

import datetime as dt
import gzip
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

from lxml import etree

logger = logging.getLogger(__name__)

PUBMED_CAP = 9_999
ESEARCH_DOCTYPE = (
    '<!DOCTYPE eSearchResult PUBLIC "-//NLM//DTD esearch 20060628//EN" '
    '"https://eutils.ncbi.nlm.nih.gov/eutils/dtd/20060628/esearch.dtd">'
)
PUBMED_DOCTYPE = (
    '<!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD PubMedArticle, 1st January 2025//EN" '
    '"https://dtd.nlm.nih.gov/ncbi/pubmed/out/pubmed_250101.dtd">'
)
DATE_RANGE = re.compile(
    r"(\d{4}(?:/\d{1,2}(?:/\d{1,2})?)?)\s*:\s*(\d{4}(?:/\d{1,2}(?:/\d{1,2})?)?)\s*"
    r"\[(crdt|edat|mdat|pdat|dp)\]",
    re.IGNORECASE,
)
ANSWERS = (
    "phrasenotfound",
    "fieldnotfound",
    "quotednotfound",
    "phraseignored",
    "lostterm",
    "nowebenv",
    "error",
    "httpdtd",
)
HOSTILE = ("xxe", "bomb")
SHORT = ("short", "emptyset")  # efetch answers missing articles
FAULT = re.compile(
    r"^(?P<kind>\d{3}|truncate|reset|slow=(?P<secs>[\d.]+)s?|short=(?P<drop>\d+)|"
    + "|".join(ANSWERS + HOSTILE + SHORT[1:])
    + ")"
    r"(?:@(?P<utility>esearch|efetch))?:(?P<count>\d+|\*)$"
)


class SnapshotError(Exception):
    """The snapshot directory is missing or has no PubMed records."""


class FaultSpecError(ValueError):
    """A ``--fault`` string that cannot be read."""


IDENTIFIER = re.compile(
    r'(?:"(?P<quoted>[^"]+)"|(?P<bare>[^\s"()\[\]]+))\s*\[(?P<kind>doi|uid|pmid|ti|title)\]', re.IGNORECASE
)
FIELD_TAG = re.compile(r"\[([^\]]+)\]")
# PubMed's search field tags (long and short forms, lower case), as in PubMed's help.
KNOWN_TAGS = frozenset(
    """ad affiliation all all fields au author auid author identifier book cn corporate author
    crdt create date completion date dcom doi dp publication date ed editor edat entrez date ec
    filter sb subset fau full author name fir full investigator name gr grant number ir
    investigator isbn is issn ip issue ta journal la language lastau last author lid location id
    majr mesh major topic mh mesh terms mesh mhda mesh date mdat modification date nm
    supplementary concept other term ot pg pagination pt publication type pubn publisher pl place
    of publication pmid uid pmcid pmc id sh subheading si secondary source id so source tw text
    word ti title tiab title/abstract tt transliterated title vi volume lang jour
    mesh:noexp mh:noexp majr:noexp""".replace("\n", " ").split()
)
TAG_PHRASES = frozenset(
    {
        "all fields", "author identifier", "corporate author", "create date", "completion date",
        "publication date", "entrez date", "full author name", "full investigator name",
        "grant number", "last author", "location id", "mesh major topic", "mesh terms",
        "mesh date", "modification date", "supplementary concept", "other term",
        "publication type", "place of publication", "pmc id", "secondary source id",
        "text word", "transliterated title", "title/abstract",
    }
)


@dataclass
class Indexed:
    pmid: str  # as written in the file: a malformed PMID is served as it is, for tests
    xml: bytes
    dates: dict[str, dt.date]
    doi: str | None = None
    title: str = ""


def unknown_field_tags(term: str) -> list[str]:
    """Field tags of ``term`` that PubMed does not know (``[crdt]`` etc. are known)."""
    unknown = []
    for tag in FIELD_TAG.findall(term):
        name = tag.strip().lower()
        if name not in KNOWN_TAGS and name not in TAG_PHRASES:
            unknown.append(tag)
    return unknown


def plain_words(text: str) -> str:
    """Lower-case words of ``text`` separated by single spaces (punctuation dropped)."""
    return " ".join(re.findall(r"\w+", text.lower()))


def identifier_terms(term: str) -> tuple[set[str], set[str], set[str]] | None:
    """DOIs, PMIDs and title phrases of a term made only of ``x[doi]``/``n[uid]``/``"w"[ti]``
    items ORed; else None."""
    items = [
        ((m["quoted"] or m["bare"]).strip(), m["kind"].lower()) for m in IDENTIFIER.finditer(term)
    ]
    rest = IDENTIFIER.sub("", term).replace("(", "").replace(")", "")
    if not items or rest.replace("OR", "").strip():
        return None
    dois = {value.lower() for value, kind in items if kind == "doi"}
    pmids = {value for value, kind in items if kind in ("uid", "pmid") and value.isdigit()}
    titles = {plain_words(value) for value, kind in items if kind in ("ti", "title")}
    return dois, pmids, titles


@dataclass
class Fault:
    kind: str
    remaining: float
    utility: str | None = None
    seconds: float = 0.0
    drop: int = 0


def parse_faults(spec: str | None) -> list[Fault]:
    """Read ``429:2,500:1,truncate@efetch:1,slow=2:1`` into a fault plan."""
    faults: list[Fault] = []
    for item in (spec or "").split(","):
        item = item.strip()
        if not item:
            continue
        match = FAULT.match(item)
        if not match:
            raise FaultSpecError(
                f"fault {item!r} not understood: use KIND[@esearch|@efetch]:COUNT with KIND an "
                "HTTP status, truncate, reset, slow=SECONDS, short=N or one of "
                + ", ".join(ANSWERS + HOSTILE + SHORT[1:])
                + ", and COUNT a number or *"
            )
        kind = "slow" if match["secs"] else "short" if match["drop"] else match["kind"]
        count = float("inf") if match["count"] == "*" else float(match["count"])
        utility = match["utility"] or (
            "esearch" if kind in ANSWERS else "efetch" if kind in HOSTILE + SHORT else None
        )
        faults.append(
            Fault(kind, count, utility, float(match["secs"] or 0), int(match["drop"] or 0))
        )
    return faults


ARTICLES = ("PubmedArticle", "PubmedBookArticle")


def _history_dates(article: etree._Element) -> dict[str, dt.date]:
    """The article's dates by esearch field; a date that cannot be read is left out."""
    dates: dict[str, dt.date | None] = {}
    names = {"entrez": "crdt", "pubmed": "edat"}
    for el in article.iterfind("*/History/PubMedPubDate"):
        name = names.get(el.get("PubStatus") or "")
        if name:
            dates[name] = _date(el)
    revised = article.find("MedlineCitation/DateRevised")
    if revised is not None:
        dates["mdat"] = _date(revised)
    year = article.findtext("MedlineCitation/Article/Journal/JournalIssue/PubDate/Year")
    if year and re.fullmatch(r"[0-9]{4}", year):
        dates["pdat"] = dt.date(int(year), 1, 1)
    known = {name: day for name, day in dates.items() if day is not None}
    if "crdt" in known:
        known.setdefault("edat", known["crdt"])
        known.setdefault("mdat", known["crdt"])
    return known


def _date(el: etree._Element) -> dt.date | None:
    parts = [
        el.findtext(tag) or default for tag, default in (("Year", ""), ("Month", "1"), ("Day", "1"))
    ]
    if not all(re.fullmatch(r"[0-9]{1,4}", p) for p in parts):
        return None
    try:
        return dt.date(*(int(p) for p in parts))
    except ValueError:
        return None


def load_snapshot(directory: Path) -> list[Indexed]:
    """Index every PubmedArticle in ``*.xml`` / ``*.xml.gz`` files; later files win a PMID."""
    return load_snapshot_with_deletions(directory)[0]


def load_snapshot_with_deletions(directory: Path) -> tuple[list[Indexed], set[str]]:
    """The records of a snapshot and the PMIDs its ``DeleteCitation`` elements delete (a file's
    deletion removes the records of earlier files; a later record brings a PMID back)."""
    if not directory.is_dir():
        raise SnapshotError(f"snapshot directory {directory} does not exist")
    by_pmid: dict[str, Indexed] = {}
    deleted: set[str] = set()
    files = sorted([*directory.glob("*.xml"), *directory.glob("*.xml.gz")])
    for path in files:
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as handle:
            for _ev, el in etree.iterparse(
                handle,
                tag=(*ARTICLES, "DeleteCitation"),
                load_dtd=False,
                no_network=True,
                resolve_entities=False,
            ):
                if el.tag == "DeleteCitation":
                    for gone in el.iterfind("PMID"):
                        pmid = (gone.text or "").strip()
                        by_pmid.pop(pmid, None)
                        deleted.add(pmid)
                    el.clear()
                    continue
                pmid = (el.findtext("*/PMID") or "").strip()
                deleted.discard(pmid)
                doi = el.findtext("PubmedData/ArticleIdList/ArticleId[@IdType='doi']")
                title = el.find("MedlineCitation/Article/ArticleTitle")
                by_pmid[pmid] = Indexed(
                    pmid,
                    etree.tostring(el),
                    _history_dates(el),
                    doi.strip().lower() if doi else None,
                    plain_words("".join(title.itertext())) if title is not None else "",
                )
                el.clear()
    if not by_pmid and not deleted:
        raise SnapshotError(f"snapshot directory {directory} holds no PubmedArticle records")
    records = sorted(
        by_pmid.values(),
        key=lambda r: (r.dates.get("crdt", dt.date.min), len(r.pmid), r.pmid),
    )
    return records, deleted


@dataclass
class ReplayState:
    records: list[Indexed]
    faults: list[Fault] = field(default_factory=list)
    cap: int = PUBMED_CAP
    history: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    log: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    deleted: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.by_pmid = {r.pmid: r for r in self.records}

    def next_fault(self, utility: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.utility in (None, utility):
                    fault.remaining -= 1
                    return fault
                if fault.remaining > 0:
                    return None  # faults apply in order; this one waits for its utility
        return None

    def search(self, params: dict[str, str]) -> tuple[int, list[str]]:
        matches: Iterable[Indexed] = self.records
        term = params.get("term", "")
        if unknown_field_tags(term):
            return 0, []
        identifiers = identifier_terms(DATE_RANGE.sub("", term).replace("AND", " "))
        if identifiers is not None:
            dois, wanted, titles = identifiers
            matches = [
                r
                for r in matches
                if r.pmid in wanted
                or (r.doi and r.doi in dois)
                or any(t and t in r.title for t in titles)
            ]
        for lo, hi, kind in DATE_RANGE.findall(params.get("term", "")):
            matches = _between(matches, kind.lower(), lo, hi)
        if params.get("mindate") and params.get("maxdate"):
            matches = _between(
                matches,
                params.get("datetype", "edat").lower(),
                params["mindate"],
                params["maxdate"],
            )
        pmids = [r.pmid for r in matches]
        return len(pmids), pmids[: self.cap]


def _between(records: Iterable[Indexed], kind: str, lo: str, hi: str) -> list[Indexed]:
    kind = "pdat" if kind == "dp" else kind
    start, end = _bound(lo, upper=False), _bound(hi, upper=True)
    return [r for r in records if kind in r.dates and start <= r.dates[kind] <= end]


def _bound(text: str, *, upper: bool) -> dt.date:
    parts = [int(p) for p in text.split("/")]
    if len(parts) == 1:
        return dt.date(parts[0], 12, 31) if upper else dt.date(parts[0], 1, 1)
    if len(parts) == 2:
        if not upper:
            return dt.date(parts[0], parts[1], 1)
        nxt = dt.date(parts[0] + parts[1] // 12, parts[1] % 12 + 1, 1)
        return nxt - dt.timedelta(days=1)
    return dt.date(*parts)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("replay: " + format, *args)

    def do_GET(self) -> None:
        self._dispatch(parse_qs(urlparse(self.path).query))

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        if urlparse(self.path).path == "/_faults":
            self.server.state.faults = parse_faults(body)
            return self._send(200, b"ok", "text/plain")
        self._dispatch(parse_qs(body) | parse_qs(urlparse(self.path).query))

    def _dispatch(self, raw: dict[str, list[str]]) -> None:
        params = {k: v[-1] for k, v in raw.items()}
        path = urlparse(self.path).path.rstrip("/")
        utility = path.rsplit("/", 1)[-1].removesuffix(".fcgi")
        state = self.server.state
        if utility == "_log":
            return self._send(200, json.dumps(state.log).encode(), "application/json")
        with state.lock:
            state.log.append(
                {"t": time.time(), "utility": utility, "method": self.command, "params": params}
            )
        fault = state.next_fault(utility)
        if fault is not None and self._apply(fault, utility, params):
            return
        if utility == "esearch":
            self._send(200, self._esearch(params), "text/xml")
        elif utility == "efetch":
            self._send(200, self._efetch(params), "text/xml")
        else:
            self._send(404, f"unknown E-utility {utility}".encode(), "text/plain")

    def _apply(self, fault: Fault, utility: str, params: dict[str, str]) -> bool:
        """Carry out a fault; True when the response was replaced."""
        if fault.kind == "slow":
            time.sleep(fault.seconds)
            return False
        if fault.kind == "reset":
            self.close_connection = True
            self.connection.close()
            return True
        if fault.kind in ANSWERS:
            if utility != "esearch":
                return False
            self._send(200, self._esearch(params, fault.kind), "text/xml")
            return True
        if fault.kind in HOSTILE:
            if utility != "efetch":
                return False
            self._send(200, self._hostile(self._efetch(params), fault.kind), "text/xml")
            return True
        if fault.kind in SHORT:
            if utility != "efetch":
                return False
            drop = None if fault.kind == "emptyset" else fault.drop
            self._send(200, self._efetch(params, drop), "text/xml")
            return True
        if fault.kind == "truncate":
            body = self._esearch(params) if utility == "esearch" else self._efetch(params)
            self._send(200, body[: len(body) // 2], "text/xml")
            return True
        status = int(fault.kind)
        self._send(status, f'{{"error":"simulated {status}"}}'.encode(), "application/json")
        return True

    def _esearch(self, params: dict[str, str], odd: str | None = None) -> bytes:
        state = self.server.state
        count, pmids = state.search(params)
        webenv = f"MCID_{uuid.uuid4().hex}"
        with state.lock:
            state.history[webenv] = {"1": pmids}
        retmax = int(params.get("retmax", 20))
        retstart = int(params.get("retstart", 0))
        ids = "".join(f"<Id>{p}</Id>" for p in pmids[retstart : retstart + retmax])
        unknown = unknown_field_tags(params.get("term", ""))
        errors = ""
        if unknown:
            errors = (
                "<ErrorList>"
                + "".join(f"<FieldNotFound>{_escape(t)}</FieldNotFound>" for t in unknown)
                + "</ErrorList><WarningList><OutputMessage>No items found.</OutputMessage>"
                "</WarningList>"
            )
        history = ""
        if params.get("usehistory", "").lower() == "y" and odd != "nowebenv":
            history = f"<QueryKey>1</QueryKey><WebEnv>{webenv}</WebEnv>"
        term = params.get("term", "")
        word = (re.findall(r"[A-Za-z]{3,}", term) or ["term"])[0]
        translation = term.replace(word, "") if odd == "lostterm" else term
        extra = {
            "phrasenotfound": f"<ErrorList><PhraseNotFound>{word}</PhraseNotFound></ErrorList>",
            "fieldnotfound": "<ErrorList><FieldNotFound>Titel</FieldNotFound></ErrorList>",
            "quotednotfound": f'<WarningList><QuotedPhraseNotFound>"{word} x"</QuotedPhraseNotFound>'
            "<OutputMessage>No items found.</OutputMessage></WarningList>",
            "phraseignored": f"<WarningList><PhraseIgnored>{word}</PhraseIgnored></WarningList>",
        }.get(odd or "", "")
        if odd == "error":
            body = "<ERROR>Search Backend failed: simulated query syntax error</ERROR>"
        else:
            body = (
                f"<Count>{count}</Count><RetMax>{min(retmax, max(count - retstart, 0))}</RetMax>"
                f"<RetStart>{retstart}</RetStart>{history}<IdList>{ids}</IdList>"
                f"<TranslationSet/><QueryTranslation>{_escape(translation)}"
                f"</QueryTranslation>{errors or extra}"
            )
        doctype = (
            ESEARCH_DOCTYPE.replace("https://", "http://") if odd == "httpdtd" else ESEARCH_DOCTYPE
        )
        return (
            f'<?xml version="1.0" encoding="UTF-8" ?>\n{doctype}\n<eSearchResult>{body}'
            "</eSearchResult>"
        ).encode()

    def _efetch(self, params: dict[str, str], drop: int | None = 0) -> bytes:
        """The articles asked for; the last ``drop`` of them left out (every one for None)."""
        state = self.server.state
        if "id" in params:
            pmids = [p.strip() for p in params["id"].split(",") if p.strip()]
        else:
            stored = state.history.get(params.get("WebEnv", ""), {})
            pmids = stored.get(params.get("query_key", "1"), [])
            start = int(params.get("retstart", 0))
            pmids = pmids[start : start + int(params.get("retmax", 20))]
        parts = [state.by_pmid[p].xml for p in pmids if p in state.by_pmid]
        parts = [] if drop is None else parts[: max(len(parts) - drop, 0)]
        gone = [p for p in pmids if p in state.deleted and p not in state.by_pmid]
        if "id" in params and gone:
            parts.append(
                b"<DeleteCitation>"
                + b"".join(f'<PMID Version="1">{p}</PMID>'.encode() for p in gone)
                + b"</DeleteCitation>"
            )
        return (
            b'<?xml version="1.0" encoding="UTF-8" ?>\n'
            + PUBMED_DOCTYPE.encode()
            + b"\n<PubmedArticleSet>\n"
            + b"\n".join(parts)
            + b"\n</PubmedArticleSet>\n"
        )

    def _hostile(self, body: bytes, kind: str) -> bytes:
        """``body`` with a DOCTYPE declaring entities, one of them used in the first title."""
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        if kind == "xxe":
            subset = f'SYSTEM "http://{name}:{port}/entrez/eutils/_dtd" [<!ENTITY x SYSTEM "file:///etc/passwd">]'
        else:
            levels = ['<!ENTITY x0 "resorption resorption ">'] + [
                f'<!ENTITY x{i} "{f"&x{i - 1};" * 10}">' for i in range(1, 9)
            ]
            subset = "[" + "".join(levels).replace("x8", "x") + "]"
        doctype = f"<!DOCTYPE PubmedArticleSet {subset}>".encode()
        body = body.replace(PUBMED_DOCTYPE.encode(), doctype, 1)
        return body.replace(b"<ArticleTitle>", b"<ArticleTitle>&x;", 1)

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], state: ReplayState) -> None:
        super().__init__(address, _Handler)
        self.state = state


class ReplayServer:
    """The replay server in a background thread: ``with ReplayServer(dir) as server: server.url``."""

    def __init__(
        self,
        snapshot: Path,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        faults: str | None = None,
        cap: int = PUBMED_CAP,
    ) -> None:
        records, deleted = load_snapshot_with_deletions(snapshot)
        self.state = ReplayState(records, parse_faults(faults), cap, deleted=deleted)
        self._server = _Server((host, port), self.state)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else host
        return f"http://{name}:{port}/entrez/eutils/"

    def start(self) -> ReplayServer:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def set_faults(self, spec: str | None) -> None:
        self.state.faults = parse_faults(spec)

    def __enter__(self) -> ReplayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
