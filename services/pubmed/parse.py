"""Parse PubMed efetch XML (``PubmedArticleSet``) into plain records.

lxml parses with DTD loading and network access off, so parsing never reaches the network.
Raises :class:`services.pubmed.errors.MalformedResponseError` on XML that is not a complete
``PubmedArticleSet`` (a truncated body, an HTML error page).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from typing import Any

from lxml import etree

from services.pubmed.errors import MalformedResponseError

RETRACTED_TYPE = "Retracted Publication"
RETRACTION_NOTICE_TYPE = "Retraction of Publication"
RETRACTION_REFS = {"RetractionIn", "RetractedandRepublishedIn"}
MONTHS = {
    m: i
    for i, m in enumerate(
        ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"], 1
    )
}

_PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False, huge_tree=True
)


@dataclass
class PubMedRecord:
    """One PubMed article as the service keeps it."""

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
        return self.authors[0].get("last") if self.authors else None

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


@dataclass
class ArticleSet:
    """The parsed contents of one efetch response."""

    records: list[PubMedRecord]
    deleted: list[int]


def parse_article_set(data: bytes) -> ArticleSet:
    """Parse one efetch response body; raise MalformedResponseError when it is not whole."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise MalformedResponseError(f"efetch returned malformed XML: {exc}") from exc
    if root.tag != "PubmedArticleSet":
        raise MalformedResponseError(f"efetch returned <{root.tag}>, not <PubmedArticleSet>")
    records = [parse_article(el) for el in root.iterchildren("PubmedArticle")]
    deleted = [int(p.text) for p in root.iterfind("DeleteCitation/PMID") if p.text]
    return ArticleSet(records=records, deleted=deleted)


def parse_article(article: etree._Element) -> PubMedRecord:
    citation = article.find("MedlineCitation")
    if citation is None or citation.findtext("PMID") is None:
        raise MalformedResponseError("a PubmedArticle has no MedlineCitation/PMID")
    pmid_el = citation.find("PMID")
    art = citation.find("Article")
    if art is None:
        raise MalformedResponseError(f"PMID {pmid_el.text}: no Article element")
    sections = _abstract_sections(art)
    authors, affiliations = _authors(art)
    return PubMedRecord(
        pmid=int(pmid_el.text or 0),
        pubmed_version=int(pmid_el.get("Version", "1")),
        title=_text(art.find("ArticleTitle")),
        abstract="\n".join(
            f"{s['label']}: {s['text']}" if s["label"] else s["text"] for s in sections
        ),
        abstract_sections=sections,
        doi=_doi(article, art),
        journal=art.findtext("Journal/Title") or art.findtext("Journal/ISOAbbreviation"),
        year=_year(art),
        pub_date=_pub_date(art),
        create_date=_history_date(article, "entrez"),
        authors=authors,
        affiliations=affiliations,
        languages=[x.text for x in art.iterfind("Language") if x.text],
        publication_types=[_text(x) for x in art.iterfind("PublicationTypeList/PublicationType")],
        mesh=[_text(x) for x in citation.iterfind("MeshHeadingList/MeshHeading/DescriptorName")],
        keywords=[_text(x) for x in citation.iterfind("KeywordList/Keyword")],
        comments_corrections=[
            _correction(c) for c in citation.iterfind("CommentsCorrectionsList/CommentsCorrections")
        ],
        xml_hash=hashlib.sha256(etree.tostring(article)).hexdigest(),
    )


def _text(el: etree._Element | None) -> str:
    """All text inside an element (inline markup such as <i> kept as text), spaces folded."""
    if el is None:
        return ""
    raw = (el.text or "") if len(el) == 0 else "".join(el.itertext())
    return " ".join(raw.split())


def _abstract_sections(art: etree._Element) -> list[dict[str, str]]:
    return [
        {"label": el.get("Label") or "", "category": el.get("NlmCategory") or "", "text": _text(el)}
        for el in art.iterfind("Abstract/AbstractText")
    ]


def _authors(art: etree._Element) -> tuple[list[dict[str, str]], list[str]]:
    """Authors (last, fore, initials, or a collective name) and their distinct affiliations."""
    authors: list[dict[str, str]] = []
    affiliations: list[str] = []
    for el in art.iterfind("AuthorList/Author"):
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
            elif tag == "CollectiveName":
                collective = _text(child)
            elif tag == "AffiliationInfo":
                for aff in child.iterfind("Affiliation"):
                    text = _text(aff)
                    if text and text not in affiliations:
                        affiliations.append(text)
        authors.append({"collective": collective} if collective else parts)
    return authors, affiliations


def _doi(article: etree._Element, art: etree._Element) -> str | None:
    for el in article.iterfind("PubmedData/ArticleIdList/ArticleId"):
        if el.get("IdType") == "doi" and el.text:
            return str(el.text).strip().lower()
    for el in art.iterfind("ELocationID"):
        if el.get("EIdType") == "doi" and el.text:
            return str(el.text).strip().lower()
    return None


def _year(art: etree._Element) -> int | None:
    year = art.findtext("Journal/JournalIssue/PubDate/Year")
    if year is None:
        medline = art.findtext("Journal/JournalIssue/PubDate/MedlineDate") or ""
        match = re.search(r"\b(1[89]|20)\d{2}\b", medline)
        year = match.group(0) if match else art.findtext("ArticleDate/Year")
    return int(year) if year and year.isdigit() else None


def _pub_date(art: etree._Element) -> str | None:
    pub = art.find("Journal/JournalIssue/PubDate")
    if pub is None:
        return None
    medline = pub.findtext("MedlineDate")
    if medline:
        return str(medline)
    parts = [pub.findtext(tag) for tag in ("Year", "Month", "Day")]
    return " ".join(p for p in parts if p) or None


def _history_date(article: etree._Element, status: str) -> dt.date | None:
    for el in article.iterfind("PubmedData/History/PubMedPubDate"):
        if el.get("PubStatus") == status:
            try:
                return dt.date(
                    int(el.findtext("Year") or 0),
                    _month(el.findtext("Month") or "1"),
                    int(el.findtext("Day") or 1),
                )
            except ValueError:
                return None
    return None


def _month(text: str) -> int:
    return int(text) if text.isdigit() else MONTHS.get(text[:3].lower(), 1)


def _correction(el: etree._Element) -> dict[str, Any]:
    pmid = el.findtext("PMID")
    return {
        "type": el.get("RefType") or "",
        "source": _text(el.find("RefSource")),
        "pmid": int(pmid) if pmid and pmid.strip().isdigit() else None,
    }


def iter_pmids(data: bytes) -> Iterator[int]:
    """PMIDs of the articles in a PubmedArticleSet (used by the replay server's index)."""
    for _event, el in etree.iterparse(io.BytesIO(data), tag="PubmedArticle"):
        yield int(el.findtext("MedlineCitation/PMID") or 0)
        el.clear()


def title_key(title: str | None) -> str | None:
    """Normalised title for matching: lower case, letters and digits only, single spaces."""
    if not title:
        return None
    key = re.sub(r"[^a-z0-9]+", " ", title.lower()).strip()
    return key[:255] or None
