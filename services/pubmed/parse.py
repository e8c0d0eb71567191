"""Parse PubMed efetch XML (``PubmedArticleSet``) into plain records.

The body is parsed by :func:`services.pubmed.safexml.parse_untrusted` (no DTD, no entity, no
network). A body that is not a complete ``PubmedArticleSet`` (a truncated body, an HTML error
page) raises :class:`services.pubmed.errors.MalformedResponseError`; one declaring entities
raises :class:`services.pubmed.errors.UnsafeXMLError`.

Both journal articles (``PubmedArticle``) and book documents (``PubmedBookArticle``) become
records. One article that cannot be read (a PMID that is not a positive number below 2**63, a
year in other digits than 0-9, a month out of 1..12, a CommentsCorrections PMID that is not a
number, …) never fails the set: it is returned in ``quarantined`` with its raw XML and the
reason, and the other articles are read. Any other child of the set is returned in
``skipped`` with its reason, so every PMID asked for is either a record or reported.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from lxml import etree

from services.pubmed.errors import MalformedResponseError
from services.pubmed.safexml import parse_untrusted

RETRACTED_TYPE = "Retracted Publication"
RETRACTION_NOTICE_TYPE = "Retraction of Publication"
RETRACTION_REFS = {"RetractionIn", "RetractedandRepublishedIn"}
MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}
MAX_PMID = 2**63 - 1  # a BIGINT on PostgreSQL, an INTEGER on SQLite: the same bound on both
MAX_DOI = 1_000  # far beyond any registered DOI, well within an index entry on both databases
MATHML = "http://www.w3.org/1998/Math/MathML"
_DIGITS = re.compile(r"[0-9]+")


class ArticleError(ValueError):
    """One article cannot be read as a record; it is quarantined, the set goes on."""


@dataclass
class PubMedRecord:
    """One PubMed article (or book document) as the service keeps it."""

    pmid: int
    title: str
    abstract: str = ""
    abstract_sections: list[dict[str, str]] = field(default_factory=list)
    doi: str | None = None
    journal: str | None = None
    year: int | None = None
    pub_date: str | None = None
    create_date: dt.date | None = None
    authors: list[dict[str, str]] = field(default_factory=list)
    affiliations: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=list)
    publication_types: list[str] = field(default_factory=list)
    mesh: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    comments_corrections: list[dict[str, Any]] = field(default_factory=list)
    vernacular_title: str | None = None
    other_abstracts: list[dict[str, str]] = field(default_factory=list)
    pubmed_version: int = 1
    xml_hash: str = ""

    @property
    def is_retracted(self) -> bool:
        """The article itself is retracted (type, or a RetractionIn link)."""
        return RETRACTED_TYPE in self.publication_types or any(
            c["type"] in RETRACTION_REFS for c in self.comments_corrections
        )

    @property
    def retracts(self) -> list[int]:
        """PMIDs this record is the retraction notice of."""
        return [
            c["pmid"]
            for c in self.comments_corrections
            if c["type"] == "RetractionOf" and c.get("pmid")
        ]

    @property
    def first_author(self) -> str | None:
        """The first author's surname, or the collective name when a group comes first."""
        if not self.authors:
            return None
        first = self.authors[0]
        return first.get("collective") or first.get("last") or None

    def content(self) -> dict[str, Any]:
        """The fields whose change makes a new version, JSON-ready."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["create_date"] = self.create_date.isoformat() if self.create_date else None
        return data

    def content_hash(self) -> str:
        """SHA-256 of the article's XML as served (any revision changes it), else of the fields."""
        if self.xml_hash:
            return self.xml_hash
        text = json.dumps(self.content(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class Quarantined:
    """An article that could not be read: its PMID as written, why, and its raw XML."""

    pmid: str | None
    reason: str
    xml: str

    @property
    def xml_hash(self) -> str:
        return hashlib.sha256(self.xml.encode()).hexdigest()


@dataclass(frozen=True)
class Skipped:
    """A child of the set that is not an article the service keeps, and why."""

    pmid: str | None
    reason: str


@dataclass
class ArticleSet:
    """The parsed contents of one efetch response (or several, joined with ``extend``)."""

    records: list[PubMedRecord]
    deleted: list[int]
    quarantined: list[Quarantined] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)

    def extend(self, other: ArticleSet) -> None:
        self.records.extend(other.records)
        self.deleted.extend(other.deleted)
        self.quarantined.extend(other.quarantined)
        self.skipped.extend(other.skipped)

    def answered(self) -> int:
        """How many of the PMIDs asked for the answer accounts for, read or not."""
        return len(self.records) + len(self.deleted) + len(self.quarantined) + len(self.skipped)

    def pmids(self) -> set[int]:
        """The PMIDs the answer accounts for (unreadable items whose PMID is a number too)."""
        found = {r.pmid for r in self.records} | set(self.deleted)
        others: list[Quarantined | Skipped] = [*self.quarantined, *self.skipped]
        return found | {int(p) for x in others if (p := (x.pmid or "").strip()).isdigit()}

    def unattributed(self) -> int:
        """Items of the answer with no PMID that can be read: they account for someone."""
        others: list[Quarantined | Skipped] = [*self.quarantined, *self.skipped]
        return sum(1 for x in others if not (x.pmid or "").strip().isdigit())


def parse_article_set(data: bytes) -> ArticleSet:
    """Parse one efetch response body; raise MalformedResponseError when it is not whole."""
    try:
        root = parse_untrusted(data, "efetch")
    except etree.XMLSyntaxError as exc:
        raise MalformedResponseError(f"efetch returned malformed XML: {exc}") from exc
    if root.tag != "PubmedArticleSet":
        raise MalformedResponseError(f"efetch returned <{root.tag}>, not <PubmedArticleSet>")
    out = ArticleSet(records=[], deleted=[])
    for child in root.iterchildren(tag=etree.Element):
        if child.tag in ("PubmedArticle", "PubmedBookArticle"):
            try:
                out.records.append(parse_article(child))
            except ArticleError as exc:
                raw = etree.tostring(child, encoding="unicode", with_tail=False)
                out.quarantined.append(Quarantined(child.findtext("*/PMID"), str(exc), raw))
        elif child.tag in ("DeleteCitation", "DeleteDocument"):
            for pmid in child.iterfind("PMID"):
                try:
                    out.deleted.append(_pmid(pmid.text))
                except ArticleError as exc:
                    out.skipped.append(Skipped(pmid.text, f"{child.tag}: {exc}"))
        else:
            pmid = child.findtext(".//PMID")
            out.skipped.append(Skipped(pmid, f"<{child.tag}> is not a PubMed article"))
    return out


def parse_article(article: etree._Element) -> PubMedRecord:
    """One ``PubmedArticle`` or ``PubmedBookArticle``; :class:`ArticleError` when unreadable."""
    if article.tag == "PubmedBookArticle":
        return _book(article)
    citation = article.find("MedlineCitation")
    if citation is None or citation.find("PMID") is None:
        raise ArticleError("a PubmedArticle has no MedlineCitation/PMID")
    pmid_el = citation.find("PMID")
    art = citation.find("Article")
    if art is None:
        raise ArticleError(f"PMID {pmid_el.text}: no Article element")
    sections = _abstract_sections(art.find("Abstract"))
    authors, affiliations = _authors(art.find("AuthorList"))
    affiliations = [*_old_affiliations(art), *affiliations]
    journal = art.findtext("Journal/Title") or art.findtext("Journal/ISOAbbreviation")
    return PubMedRecord(
        pmid=_pmid(pmid_el.text),
        pubmed_version=_version(pmid_el.get("Version")),
        title=_text(art.find("ArticleTitle")),
        abstract=_joined(sections),
        abstract_sections=sections,
        doi=_doi(article.iterfind("PubmedData/ArticleIdList/ArticleId"), art),
        journal=journal,
        year=_year(art.find("Journal/JournalIssue/PubDate"), art.find("ArticleDate")),
        pub_date=_pub_date(art.find("Journal/JournalIssue/PubDate")),
        create_date=_history_date(article.find("PubmedData/History"), "entrez"),
        authors=authors,
        affiliations=list(dict.fromkeys(affiliations)),
        languages=[x.text for x in art.iterfind("Language") if x.text],
        publication_types=[_text(x) for x in art.iterfind("PublicationTypeList/PublicationType")],
        mesh=[_text(x) for x in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")],
        keywords=[_text(x) for x in citation.iterfind("KeywordList/Keyword")],
        comments_corrections=[
            _correction(c) for c in citation.iterfind("CommentsCorrectionsList/CommentsCorrections")
        ],
        vernacular_title=_text(art.find("VernacularTitle")) or None,
        other_abstracts=_other_abstracts(citation),
        xml_hash=hashlib.sha256(etree.tostring(article)).hexdigest(),
    )


def _book(article: etree._Element) -> PubMedRecord:
    """A ``PubmedBookArticle`` (a book or a chapter of one, e.g. a clinical guideline)."""
    doc = article.find("BookDocument")
    if doc is None or doc.find("PMID") is None:
        raise ArticleError("a PubmedBookArticle has no BookDocument/PMID")
    pmid_el = doc.find("PMID")
    book_title = _text(doc.find("Book/BookTitle")) or None
    sections = _abstract_sections(doc.find("Abstract"))
    authors, affiliations = _authors(doc.find("AuthorList[@Type='authors']"))
    if not authors and doc.find("ArticleTitle") is None:  # a whole book: its authors are its own
        authors, affiliations = _authors(doc.find("Book/AuthorList[@Type='authors']"))
    return PubMedRecord(
        pmid=_pmid(pmid_el.text),
        pubmed_version=_version(pmid_el.get("Version")),
        title=_text(doc.find("ArticleTitle")) or book_title or "",
        abstract=_joined(sections),
        abstract_sections=sections,
        doi=_doi(doc.iterfind("ArticleIdList/ArticleId"), _first(doc.find("Book"), doc)),
        journal=book_title,
        year=_year(doc.find("Book/PubDate"), doc.find("ContributionDate")),
        pub_date=_pub_date(doc.find("Book/PubDate")),
        create_date=_history_date(article.find("PubmedBookData/History"), "entrez"),
        authors=authors,
        affiliations=affiliations,
        languages=[x.text for x in doc.iterfind("Language") if x.text],
        publication_types=[_text(x) for x in doc.iterfind("PublicationType")] or ["Book"],
        keywords=[_text(x) for x in doc.iterfind("KeywordList/Keyword")],
        xml_hash=hashlib.sha256(etree.tostring(article)).hexdigest(),
    )


def _first(el: etree._Element | None, default: etree._Element) -> etree._Element:
    return default if el is None else el


# --- values that must be numbers: ASCII digits only, in range, else ArticleError -------------


def _number(text: str | None, what: str) -> int:
    value = (text or "").strip()
    if not _DIGITS.fullmatch(value):
        raise ArticleError(f"{what} {value!r} is not a number written in digits 0-9")
    return int(value)


def _pmid(text: str | None) -> int:
    pmid = _number(text, "PMID")
    if not 1 <= pmid <= MAX_PMID:
        raise ArticleError(f"PMID {pmid} is out of range (1 to {MAX_PMID})")
    return pmid


def _version(text: str | None) -> int:
    version = _number(text or "1", "PMID Version")
    if not 1 <= version <= 1_000:
        raise ArticleError(f"PMID Version {version} is out of range (1 to 1000)")
    return version


def _year_of(text: str | None) -> int:
    year = _number(text, "year")
    if not 1000 <= year <= 9999:
        raise ArticleError(f"year {year} is not a four-digit year")
    return year


def _month(text: str) -> int:
    name = MONTHS.get(text.strip()[:3].lower())
    if name is not None and not text.strip()[:1].isdigit():
        return name
    month = _number(text, "month")
    if not 1 <= month <= 12:
        raise ArticleError(f"month {month} is out of range (1 to 12)")
    return month


def _date(el: etree._Element) -> dt.date:
    year = _year_of(el.findtext("Year"))
    month = _month(el.findtext("Month") or "1")
    day = _number(el.findtext("Day") or "1", "day")
    try:
        return dt.date(year, month, day)
    except ValueError as exc:
        raise ArticleError(f"date {year}-{month}-{day} does not exist") from exc


# --- parts of an article -----------------------------------------------------------------


def _text(el: etree._Element | None) -> str:
    """All text inside an element (inline markup kept as text), spaces folded.

    Inside MathML the layout whitespace between elements is dropped, so an indented
    ``<mml:msub><mml:mi>k</mml:mi><mml:mn>2</mml:mn></mml:msub>`` reads ``k2``, not ``k 2``.
    """
    if el is None:
        return ""
    if len(el) == 0:
        return " ".join((el.text or "").split())
    return " ".join("".join(_pieces(el)).split())


def _is_math(el: etree._Element) -> bool:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.startswith(f"{{{MATHML}}}") or tag.startswith("mml:")


def _pieces(el: etree._Element, in_math: bool = False) -> Iterator[str]:
    in_math = in_math or _is_math(el)
    if el.text and not (in_math and el.text.isspace()):
        yield el.text
    for child in el.iterchildren():
        if isinstance(child.tag, str):
            yield from _pieces(child, in_math)
        if child.tail and not (in_math and child.tail.isspace()):
            yield child.tail


def _abstract_sections(abstract: etree._Element | None) -> list[dict[str, str]]:
    if abstract is None:
        return []
    return [
        {"label": el.get("Label") or "", "category": el.get("NlmCategory") or "", "text": _text(el)}
        for el in abstract.iterfind("AbstractText")
    ]


def _joined(sections: list[dict[str, str]]) -> str:
    return "\n".join(f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections)


def _other_abstracts(citation: etree._Element) -> list[dict[str, str]]:
    """Abstracts in other languages or by other sources (``OtherAbstract``), kept whole."""
    return [
        {
            "type": el.get("Type") or "",
            "language": el.get("Language") or "",
            "text": _joined(_abstract_sections(el)),
        }
        for el in citation.iterfind("OtherAbstract")
    ]


def _authors(author_list: etree._Element | None) -> tuple[list[dict[str, str]], list[str]]:
    """Authors (last, fore, initials, suffix, or a collective name) and their affiliations."""
    authors: list[dict[str, str]] = []
    affiliations: list[str] = []
    if author_list is None:
        return authors, affiliations
    for el in author_list.iterfind("Author"):
        parts = {"last": "", "fore": "", "initials": ""}
        collective = None
        for child in el:  # one pass over the children: much faster than four findtext calls
            tag = child.tag
            if tag == "LastName":
                parts["last"] = child.text or ""
            elif tag == "ForeName":
                parts["fore"] = child.text or ""
            elif tag == "Initials":
                parts["initials"] = child.text or ""
            elif tag == "Suffix" and child.text:
                parts["suffix"] = child.text.strip()
            elif tag == "CollectiveName":
                collective = _text(child)
            elif tag == "AffiliationInfo":
                affiliations.extend(_text(a) for a in child.iterfind("Affiliation"))
            elif tag == "Affiliation":  # the 2013 form: an Affiliation right in the Author
                affiliations.append(_text(child))
        authors.append({"collective": collective} if collective else parts)
    return authors, list(dict.fromkeys(a for a in affiliations if a))


def _old_affiliations(art: etree._Element) -> list[str]:
    """The pre-2014 form: one ``Affiliation`` in the ``Article``, for the first author."""
    return [text for el in art.iterfind("Affiliation") if (text := _text(el))]


def _doi(ids: Iterator[etree._Element], located: etree._Element) -> str | None:
    """The DOI as PubMed wrote it (case kept: compare with ``.lower()``)."""
    candidates = [el.text for el in ids if el.get("IdType") == "doi"]
    candidates += [el.text for el in located.iterfind("ELocationID") if el.get("EIdType") == "doi"]
    for text in candidates:
        doi = (text or "").strip()
        if doi:
            if len(doi) > MAX_DOI:
                raise ArticleError(f"DOI of {len(doi)} characters (more than {MAX_DOI})")
            return doi
    return None


def _year(pub: etree._Element | None, fallback: etree._Element | None) -> int | None:
    if pub is not None and pub.find("Year") is not None:
        return _year_of(pub.findtext("Year"))
    medline = pub.findtext("MedlineDate") if pub is not None else None
    match = re.search(r"(?<![0-9])(1[89]|20)[0-9]{2}(?![0-9])", medline or "")
    if match:
        return int(match.group(0))
    if fallback is not None and fallback.find("Year") is not None:
        return _year_of(fallback.findtext("Year"))
    return None


def _pub_date(pub: etree._Element | None) -> str | None:
    """The publication date as printed: a MedlineDate ("2001 May-Jun") or Year Month|Season Day."""
    if pub is None:
        return None
    medline = " ".join((pub.findtext("MedlineDate") or "").split())
    if medline:
        return medline
    if pub.find("Month") is not None:
        _month(pub.findtext("Month") or "")  # a month out of 1..12 is an error, not a date
    parts = [pub.findtext(tag) for tag in ("Year", "Month", "Season", "Day")]
    return " ".join(p.strip() for p in parts if p and p.strip()) or None


def _history_date(history: etree._Element | None, status: str) -> dt.date | None:
    if history is None:
        return None
    for el in history.iterfind("PubMedPubDate"):
        if el.get("PubStatus") == status:
            return _date(el)
    return None


def _correction(el: etree._Element) -> dict[str, Any]:
    pmid = el.find("PMID")
    return {
        "type": el.get("RefType") or "",
        "source": _text(el.find("RefSource")),
        "pmid": None if pmid is None else _pmid(pmid.text),
    }


def title_key(title: str | None) -> str | None:
    """Normalised title for matching: lower case, letters and digits only, single spaces."""
    if not title:
        return None
    key = re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()
    return key[:255] or None
