"""Resolving imported rows to PubMed records through Entrez: efetch by PMID, esearch by DOI,
then by title.

A row with a PMID is fetched by it; a row with only a DOI is searched as ``"<doi>"[doi]``
(ORed in groups, so a long list costs a few requests) and the records found are matched back by
their DOI; a row with neither is searched by its title (``"<words>"[ti]``) and accepted only
when the record's title, year and first author all agree. What cannot be resolved is returned as such; the caller keeps and reports it.
PubMed errors (:mod:`services.pubmed.errors`) propagate: nothing has been written yet.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.intake.formats import Row
from services.pubmed.client import EntrezClient
from services.pubmed.parse import PubMedRecord, title_key
from services.pubmed.replay import plain_words

DOI_GROUP = 40
TITLE_GROUP = 10


@dataclass
class Resolution:
    """Rows resolved to records (by row number) and the rows PubMed does not have."""

    records: dict[int, PubMedRecord] = field(default_factory=dict)
    unresolved: list[Row] = field(default_factory=list)


def resolve_rows(client: EntrezClient, rows: Iterable[Row]) -> Resolution:
    """Fetch the PubMed record of every row that has a PMID or a DOI."""
    rows = [r for r in rows if r.pmid or r.doi or r.title]
    by_doi: dict[str, PubMedRecord] = {}
    dois = sorted({r.doi for r in rows if r.doi and not r.pmid})
    for start in range(0, len(dois), DOI_GROUP):
        group = dois[start : start + DOI_GROUP]
        term = " OR ".join(f'"{doi}"[doi]' for doi in group)
        pmids = client.search_ids(term, retmax=len(group) * 2)
        for found in client.fetch_pmids(pmids).records if pmids else []:
            if found.doi:
                by_doi[found.doi.lower()] = found
    by_title = _by_title(client, [r for r in rows if not r.pmid and not r.doi and r.title])
    by_pmid = {
        record.pmid: record
        for record in client.fetch_pmids(sorted({r.pmid for r in rows if r.pmid})).records
    } if any(r.pmid for r in rows) else {}
    result = Resolution()
    for row in rows:
        record: PubMedRecord | None
        if row.pmid:
            record = by_pmid.get(row.pmid)
        elif row.doi:
            record = by_doi.get(row.doi)
        else:
            record = by_title.get(_title_key(row.title, row.year, row.first_author))
        if record is None:
            result.unresolved.append(row)
        else:
            result.records[row.number] = record
    return result


def _title_key(title: str | None, year: int | None, author: str | None) -> tuple[str, int | None, str]:
    surname = (author or "").split(" ")[0].split(",")[0].lower()
    return title_key(title or "") or "", year, surname


def _by_title(client: EntrezClient, rows: list[Row]) -> dict[tuple[str, int | None, str], PubMedRecord]:
    found: dict[tuple[str, int | None, str], PubMedRecord] = {}
    for start in range(0, len(rows), TITLE_GROUP):
        group = rows[start : start + TITLE_GROUP]
        term = " OR ".join(f'"{plain_words(r.title)}"[ti]' for r in group)
        pmids = client.search_ids(term, retmax=len(group) * 5)
        for record in client.fetch_pmids(pmids).records if pmids else []:
            found[_title_key(record.title, record.year, record.first_author)] = record
    return found
