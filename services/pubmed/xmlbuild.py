"""Write PubMed XML (``PubmedArticleSet``) for replay snapshots: the demo, tests, benchmarks.

The output follows the PubMed DTD's structure for the elements the service reads. Synthetic
records are marked as such in their titles and journals; they are not real citations.
"""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from services.pubmed.replay import PUBMED_DOCTYPE


@dataclass
class Article:
    """The parts of a PubMed record a snapshot needs."""

    pmid: int
    title: str
    created: dt.date
    abstract: list[tuple[str, str]] = field(default_factory=list)  # (label, text); label may be ""
    authors: list[tuple[str, str, str]] = field(default_factory=list)  # last, fore, affiliation
    journal: str = "Demo Journal of Spine Research"
    year: int | None = None
    doi: str | None = None
    language: str = "eng"
    publication_types: list[str] = field(default_factory=lambda: ["Journal Article"])
    mesh: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    corrections: list[tuple[str, str, int | None]] = field(default_factory=list)
    version: int = 1
    revised: dt.date | None = None


def _date(tag: str, day: dt.date, attrs: str = "") -> str:
    return (
        f"<{tag}{attrs}><Year>{day.year}</Year><Month>{day.month:02d}</Month>"
        f"<Day>{day.day:02d}</Day></{tag}>"
    )


def article_xml(a: Article) -> str:
    """One ``<PubmedArticle>`` element."""
    year = a.year or a.created.year
    abstract = "".join(
        f"<AbstractText{' Label=' + quoteattr(label) if label else ''}>{escape(text)}</AbstractText>"
        for label, text in a.abstract
    )
    authors = "".join(
        f'<Author ValidYN="Y"><LastName>{escape(last)}</LastName><ForeName>{escape(fore)}'
        f"</ForeName><Initials>{escape(fore[:1])}</Initials>"
        + (
            f"<AffiliationInfo><Affiliation>{escape(aff)}</Affiliation></AffiliationInfo>"
            if aff
            else ""
        )
        + "</Author>"
        for last, fore, aff in a.authors
    )
    ptypes = "".join(
        f'<PublicationType UI="D000000">{escape(p)}</PublicationType>' for p in a.publication_types
    )
    mesh = "".join(
        f'<MeshHeading><DescriptorName UI="D000000" MajorTopicYN="N">{escape(m)}'
        f"</DescriptorName></MeshHeading>"
        for m in a.mesh
    )
    keywords = "".join(f'<Keyword MajorTopicYN="N">{escape(k)}</Keyword>' for k in a.keywords)
    corrections = "".join(
        f'<CommentsCorrections RefType="{ref}"><RefSource>{escape(src)}</RefSource>'
        + (f'<PMID Version="1">{pmid}</PMID>' if pmid else "")
        + "</CommentsCorrections>"
        for ref, src, pmid in a.corrections
    )
    doi_loc = (
        f'<ELocationID EIdType="doi" ValidYN="Y">{escape(a.doi)}</ELocationID>' if a.doi else ""
    )
    doi_id = f'<ArticleId IdType="doi">{escape(a.doi)}</ArticleId>' if a.doi else ""
    revised = _date("DateRevised", a.revised or a.created)
    return (
        f'<PubmedArticle><MedlineCitation Status="PubMed-not-MEDLINE" Owner="NLM">'
        f'<PMID Version="{a.version}">{a.pmid}</PMID>{revised}'
        f'<Article PubModel="Print-Electronic"><Journal><ISSN IssnType="Electronic">0000-0000</ISSN>'
        f'<JournalIssue CitedMedium="Internet"><PubDate><Year>{year}</Year></PubDate></JournalIssue>'
        f"<Title>{escape(a.journal)}</Title></Journal><ArticleTitle>{escape(a.title)}</ArticleTitle>"
        f"{doi_loc}"
        + (f"<Abstract>{abstract}</Abstract>" if abstract else "")
        + (f'<AuthorList CompleteYN="Y">{authors}</AuthorList>' if authors else "")
        + f"<Language>{a.language}</Language><PublicationTypeList>{ptypes}</PublicationTypeList>"
        f"</Article>"
        + (
            f"<CommentsCorrectionsList>{corrections}</CommentsCorrectionsList>"
            if corrections
            else ""
        )
        + (f"<MeshHeadingList>{mesh}</MeshHeadingList>" if mesh else "")
        + (f'<KeywordList Owner="NOTNLM">{keywords}</KeywordList>' if keywords else "")
        + "</MedlineCitation><PubmedData><History>"
        + _date("PubMedPubDate", a.created, ' PubStatus="entrez"')
        + _date("PubMedPubDate", a.created, ' PubStatus="pubmed"')
        + "</History><PublicationStatus>ppublish</PublicationStatus><ArticleIdList>"
        f'<ArticleId IdType="pubmed">{a.pmid}</ArticleId>{doi_id}</ArticleIdList>'
        "</PubmedData></PubmedArticle>"
    )


def write_article_set(
    path: Path, articles: list[Article], deleted: list[int] | None = None
) -> None:
    """Write one efetch-like file of articles (and DeleteCitation PMIDs)."""
    body = "\n".join(article_xml(a) for a in articles)
    if deleted:
        body += (
            "\n<DeleteCitation>"
            + "".join(f'<PMID Version="1">{p}</PMID>' for p in deleted)
            + "</DeleteCitation>"
        )
    path.write_text(
        f'<?xml version="1.0" encoding="UTF-8" ?>\n{PUBMED_DOCTYPE}\n'
        f"<PubmedArticleSet>\n{body}\n</PubmedArticleSet>\n",
        encoding="utf-8",
    )


_WORDS = (
    "lumbar disc herniation resorption regression conservative treatment magnetic resonance "
    "imaging follow-up patients sciatica extrusion sequestration protrusion outcome cohort "
    "prospective retrospective inflammatory macrophage spontaneous reduction volume pain"
).split()


def synthetic_articles(
    n: int, start: dt.date, days: int, *, first_pmid: int = 90_000_000, seed: int = 7
) -> list[Article]:
    """``n`` synthetic records with create dates spread evenly over ``days`` from ``start``."""
    return list(iter_synthetic_articles(n, start, days, first_pmid=first_pmid, seed=seed))


def iter_synthetic_articles(
    n: int, start: dt.date, days: int, *, first_pmid: int = 90_000_000, seed: int = 7
) -> Iterator[Article]:
    """The records of :func:`synthetic_articles`, one at a time (a large snapshot is written
    without holding it)."""
    rng = random.Random(seed)
    for i in range(n):
        sentences = [" ".join(rng.choices(_WORDS, k=18)).capitalize() + "." for _ in range(8)]
        yield (
            Article(
                pmid=first_pmid + i,
                title=f"Synthetic record {i}: " + " ".join(rng.choices(_WORDS, k=10)),
                created=start + dt.timedelta(days=i * days // max(n, 1)),
                abstract=[
                    ("BACKGROUND", " ".join(sentences[:3])),
                    ("METHODS", sentences[3]),
                    ("RESULTS", " ".join(sentences[4:7])),
                    ("CONCLUSIONS", sentences[7]),
                ],
                authors=[
                    (f"Author{j}", "Synthetic", "Synthetic University, Nowhere")
                    for j in range(rng.randint(1, 6))
                ],
                journal="Synthetic Journal (generated data)",
                doi=f"10.99999/synthetic.{i}",
                mesh=rng.sample(
                    [
                        "Intervertebral Disc Displacement",
                        "Lumbar Vertebrae",
                        "Magnetic Resonance Imaging",
                        "Humans",
                        "Remission, Spontaneous",
                    ],
                    3,
                ),
            )
        )


def write_synthetic_snapshot(
    directory: Path, n: int, start: dt.date, days: int, per_file: int = 5_000
) -> Path:
    """A replay snapshot of ``n`` synthetic records, in files of ``per_file`` records."""
    directory.mkdir(parents=True, exist_ok=True)
    articles = iter_synthetic_articles(n, start, days)
    for i in range(0, n, per_file):
        part = list(itertools.islice(articles, per_file))
        write_article_set(directory / f"synthetic-{i // per_file:04d}.xml", part)
    return directory
