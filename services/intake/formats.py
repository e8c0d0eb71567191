"""Reading the files reviewers bring: RIS, CSV and identifier lists, as the tools write them.

Every reader gives :class:`Row` objects: identifiers (PMID, DOI), what title+year+first-author
matching needs, and for decision files the decision with its reason. The structures read are
those of the tools' own exports:

* Rayyan (CSV ``key,title,authors,…,notes,…`` or RIS with the notes in ``N1``): the decision of
  each reviewer in ``RAYYAN-INCLUSION: {"Name"=>"Included", …}``, labels in ``RAYYAN-LABELS:``
  and reasons in ``RAYYAN-EXCLUSION-REASONS:``, the parts separated by `` | ``.
* Covidence (CSV ``Title,Authors,Abstract,Published Year,…,Accession Number,DOI,Ref,
  Covidence #,Study,Notes,Tags``): one file per list; the list (included, excluded,
  irrelevant, full text) is in the file name Covidence gives it, or named with ``--decision``.
* ASReview LAB (CSV with ``asreview_label`` 1/0/empty and ``asreview_note``, or the older
  ``included`` 1/0/-1; RIS with ``ASReview_relevant``/``ASReview_irrelevant``/
  ``ASReview_not_seen`` in ``N1``).
* a plain CSV ``pmid`` or ``doi``, ``decision``, ``reason``.

Errors: :class:`UnknownFormatError`, :class:`MissingColumnsError` (see :mod:`services.intake`).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from services.intake.errors import MissingColumnsError, UnknownFormatError

INCLUDE_FORMATS = ("auto", "ris", "csv", "ids")
DECISION_FORMATS = (
    "auto",
    "rayyan-ris",
    "rayyan-csv",
    "covidence-csv",
    "asreview-csv",
    "asreview-ris",
    "plain-csv",
)
DOI = re.compile(r"\b(10\.\d{4,9}/\S+)", re.IGNORECASE)
RIS_LINE = re.compile(r"^([A-Z][A-Z0-9])  -(?: (.*))?$")
RAYYAN_VOTE = re.compile(r'"([^"]+)"\s*=>\s*"(Included|Excluded|Maybe)"', re.IGNORECASE)
RAYYAN_PART = re.compile(r"(RAYYAN-[A-Z-]+|USER-NOTES):\s*")
ASREVIEW_TAG = re.compile(r"\bASReview_(relevant|irrelevant|not_seen)\b")
WORDS = {
    "include": "include", "included": "include", "relevant": "include", "1": "include",
    "yes": "include", "exclude": "exclude", "excluded": "exclude", "irrelevant": "exclude",
    "0": "exclude", "no": "exclude", "maybe": "maybe", "undecided": "maybe",
}
COLUMN_ALIASES = {
    "pmid": ("pmid", "pubmed_id", "pubmed id", "pubmedid", "accession number"),
    "doi": ("doi",),
    "title": ("title", "primary_title", "ti"),
    "authors": ("authors", "author", "au"),
    "year": ("year", "published year", "publication_year", "py"),
    "journal": ("journal", "journal_name", "source"),
    "abstract": ("abstract", "ab"),
}


@dataclass
class Row:
    """One reference or decision as read from a file (``number`` counts from 1)."""

    number: int
    pmid: int | None = None
    doi: str | None = None
    title: str = ""
    authors: str = ""
    year: int | None = None
    journal: str | None = None
    abstract: str = ""
    decision: str | None = None
    reason: str | None = None
    note: str | None = None

    @property
    def first_author(self) -> str | None:
        """The first author's surname, as ``"Smith J"``, ``"Smith, J."`` or ``"Smith, John"``."""
        head = re.split(r";| and |\n", self.authors)[0].strip()
        surname = head.split(",")[0].strip().split(" ")[0] if head else ""
        return surname or None

    def describe(self) -> str:
        """How the row reads in a report: its number and its best identifier."""
        if self.pmid:
            ident = f"PMID {self.pmid}"
        elif self.doi:
            ident = f"DOI {self.doi}"
        else:
            ident = f"{self.title[:60]!r} ({self.year or 'no year'})"
        return f"row {self.number}: {ident}"


def clean_doi(value: str | None) -> str | None:
    """A DOI from a cell (bare, ``doi:``-prefixed or a doi.org URL), lower-cased; else None."""
    match = DOI.search(value or "")
    return match.group(1).rstrip(".,;").lower() if match else None


def clean_pmid(value: str | None) -> int | None:
    """A PMID from a cell (``123``, ``PMID:123``, ``PMID: 123``, a PubMed URL); else None."""
    text = (value or "").strip()
    match = re.search(r"(?:pubmed\.ncbi\.nlm\.nih\.gov/|PMID:?\s*)?(\d{1,9})/?$", text)
    return int(match.group(1)) if match and text else None


def _year(value: str | None) -> int | None:
    match = re.search(r"\b(1[89]\d\d|20\d\d)\b", value or "")
    return int(match.group(1)) if match else None


def _word(value: str | None) -> str | None:
    return WORDS.get((value or "").strip().lower())


# --- RIS ------------------------------------------------------------------------------------


def read_ris(text: str) -> list[dict[str, list[str]]]:
    """RIS records as tag -> values (continuation lines joined to the previous value)."""
    records: list[dict[str, list[str]]] = []
    current: dict[str, list[str]] = {}
    last = ""
    for line in text.lstrip("\ufeff").splitlines():
        match = RIS_LINE.match(line.rstrip())
        if match:
            tag, value = match.group(1), (match.group(2) or "").strip()
            if tag == "ER":
                records.append(current)
                current, last = {}, ""
                continue
            current.setdefault(tag, []).append(value)
            last = tag
        elif line.strip() and last:
            current[last][-1] += " " + line.strip()
    if current:
        records.append(current)
    return records


def _ris_row(number: int, tags: dict[str, list[str]]) -> Row:
    def first(*names: str) -> str:
        for name in names:
            if tags.get(name):
                return tags[name][0]
        return ""

    pmid = None
    for name in ("AN", "PM", "ID", "UR", "C7"):
        for value in tags.get(name, []):
            if name in ("AN", "PM") or "pubmed" in value.lower() or value.upper().startswith("PMID"):
                pmid = pmid or clean_pmid(value)
    return Row(
        number=number,
        pmid=pmid,
        doi=clean_doi(first("DO")) or clean_doi(" ".join(tags.get("UR", []))),
        title=first("TI", "T1", "CT"),
        authors="; ".join(tags.get("AU", []) or tags.get("A1", [])),
        year=_year(first("PY", "Y1", "DA")),
        journal=first("JO", "JF", "T2", "JA") or None,
        abstract=first("AB", "N2"),
        note=" ".join(tags.get("N1", [])) or None,
    )


# --- CSV ------------------------------------------------------------------------------------


def csv_rows(text: str, source: str) -> tuple[list[str], list[dict[str, str]]]:
    text = text.lstrip("\ufeff")
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in reader.fieldnames or []]
    if not header:
        raise UnknownFormatError(f"{source} has no header row")
    rows = [{(k or "").strip().lower(): (v or "").strip() for k, v in r.items()} for r in reader]
    return header, rows


def _column(header: Iterable[str], field: str) -> str | None:
    names = {h.strip().lower() for h in header}
    return next((alias for alias in COLUMN_ALIASES[field] if alias in names), None)


def csv_reference(number: int, cells: dict[str, str], columns: dict[str, str | None]) -> Row:
    def cell(field: str) -> str:
        name = columns.get(field)
        return cells.get(name, "") if name else ""

    return Row(
        number=number,
        pmid=clean_pmid(cell("pmid")),
        doi=clean_doi(cell("doi")),
        title=cell("title"),
        authors=cell("authors"),
        year=_year(cell("year")),
        journal=cell("journal") or None,
        abstract=cell("abstract"),
    )


def reference_columns(header: list[str], source: str) -> dict[str, str | None]:
    columns = {field: _column(header, field) for field in COLUMN_ALIASES}
    if not (columns["pmid"] or columns["doi"] or columns["title"]):
        raise MissingColumnsError(
            f"{source}: no column identifies the records (need PMID, DOI or title; "
            f"the header is {', '.join(header)})"
        )
    return columns


# --- included studies -----------------------------------------------------------------------


def read_includes(path: Path, fmt: str = "auto") -> list[Row]:
    """Included studies from RIS, CSV or a list of PMIDs/DOIs (one per line)."""
    text = read_text(path)
    fmt = _detect_include_format(path, text) if fmt == "auto" else fmt
    if fmt == "ris":
        return [_ris_row(n, tags) for n, tags in enumerate(read_ris(text), start=1) if tags]
    if fmt == "csv":
        header, rows = csv_rows(text, str(path))
        columns = reference_columns(header, str(path))
        return [csv_reference(n, cells, columns) for n, cells in enumerate(rows, start=1)]
    if fmt == "ids":
        return _read_ids(text, path)
    raise UnknownFormatError(f"--format {fmt!r} is not one of {', '.join(INCLUDE_FORMATS)}")


def _read_ids(text: str, path: Path) -> list[Row]:
    out = []
    for number, line in enumerate((ln.strip() for ln in text.splitlines() if ln.strip()), 1):
        doi, pmid = clean_doi(line), None if DOI.search(line) else clean_pmid(line)
        if doi is None and pmid is None:
            raise UnknownFormatError(
                f"{path} line {number}: {line[:60]!r} is neither a PMID nor a DOI"
            )
        out.append(Row(number=number, pmid=pmid, doi=doi))
    return out


def _detect_include_format(path: Path, text: str) -> str:
    head = text.lstrip("\ufeff").lstrip()
    if RIS_LINE.match(head.splitlines()[0] if head else ""):
        return "ris"
    first = head.splitlines()[0] if head else ""
    if re.fullmatch(r"\s*(?:PMID:?\s*)?\d{1,9}\s*|\s*(?:doi:|https?://doi\.org/)?10\.\S+\s*", first,
                    flags=re.IGNORECASE):
        return "ids"
    if path.suffix.lower() in (".csv", ".tsv", ".txt") and ("," in first or "\t" in first or ";" in first):
        return "csv"
    raise UnknownFormatError(
        f"{path}: not RIS, CSV or a list of PMIDs/DOIs; name the format with --format"
    )


def read_text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UnknownFormatError(f"cannot read {path}: {exc.strerror}") from exc
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise UnknownFormatError(f"{path} is not text (UTF-8 or Windows-1252)")


# --- prior decisions ------------------------------------------------------------------------


def detect_decision_format(path: Path, text: str) -> str:
    """Which tool wrote a decisions file, from its structure."""
    head = text.lstrip("\ufeff").lstrip()
    if head and RIS_LINE.match(head.splitlines()[0]):
        if "RAYYAN-INCLUSION" in text:
            return "rayyan-ris"
        if ASREVIEW_TAG.search(text):
            return "asreview-ris"
        raise UnknownFormatError(
            f"{path}: a RIS file without Rayyan (RAYYAN-INCLUSION) or ASReview (ASReview_…) "
            "labels in its notes: it holds no decisions"
        )
    header = {h.lower() for h in csv_rows(text, str(path))[0]}
    if "notes" in header and "RAYYAN-INCLUSION" in text:
        return "rayyan-csv"
    if "asreview_label" in header or ("included" in header and "title" in header):
        return "asreview-csv"
    if "covidence #" in header:
        return "covidence-csv"
    if "decision" in header:
        return "plain-csv"
    raise UnknownFormatError(
        f"{path}: not a decisions export we read (Rayyan RIS/CSV, Covidence CSV, ASReview "
        "LAB CSV/RIS, or CSV with pmid|doi,decision,reason)"
    )


def read_decisions(path: Path, fmt: str = "auto", *, decision: str | None = None) -> list[Row]:
    """Prior screening decisions; ``decision`` names a Covidence list's decision."""
    text = read_text(path)
    if fmt not in DECISION_FORMATS:
        raise UnknownFormatError(f"--format {fmt!r} is not one of {', '.join(DECISION_FORMATS)}")
    fmt = detect_decision_format(path, text) if fmt == "auto" else fmt
    if fmt.endswith("-ris"):
        rows = [_ris_row(n, tags) for n, tags in enumerate(read_ris(text), start=1) if tags]
        if not rows:
            raise UnknownFormatError(f"{path} holds no RIS records")
        reader = _rayyan_decision if fmt == "rayyan-ris" else _asreview_ris_decision
        for row in rows:
            reader(row, row.note or "")
        return rows
    header, cells = csv_rows(text, str(path))
    columns = reference_columns(header, str(path))
    rows = [csv_reference(n, c, columns) for n, c in enumerate(cells, start=1)]
    if fmt == "rayyan-csv":
        for row, c in zip(rows, cells, strict=True):
            _rayyan_decision(row, c.get("notes", ""))
    elif fmt == "asreview-csv":
        _asreview_csv(rows, cells, header, path)
    elif fmt == "covidence-csv":
        _covidence(rows, cells, path, decision)
    else:
        _plain(rows, cells, header, path)
    return rows


def _rayyan_decision(row: Row, notes: str) -> None:
    parts: dict[str, str] = {}
    pieces = RAYYAN_PART.split(notes)
    for name, value in zip(pieces[1::2], pieces[2::2], strict=False):
        parts[name] = value.strip().rstrip("|").strip()
    votes = RAYYAN_VOTE.findall(parts.get("RAYYAN-INCLUSION", ""))
    decisions = {WORDS[v.lower()] for _who, v in votes}
    if len(decisions) == 1:
        row.decision = decisions.pop()
    elif decisions:
        row.decision = "maybe"  # reviewers disagree: a conflict Rayyan left open
    row.reason = parts.get("RAYYAN-EXCLUSION-REASONS") or None
    row.note = "; ".join(f"{who}={vote}" for who, vote in votes) or None


def _asreview_ris_decision(row: Row, notes: str) -> None:
    tag = ASREVIEW_TAG.search(notes)
    row.decision = {"relevant": "include", "irrelevant": "exclude"}.get(tag.group(1) if tag else "")
    row.note = ASREVIEW_TAG.sub("", notes).strip() or None


def _asreview_csv(rows: list[Row], cells: list[dict[str, str]], header: list[str], path: Path
                  ) -> None:
    names = {h.lower() for h in header}
    column = "asreview_label" if "asreview_label" in names else "included"
    for row, c in zip(rows, cells, strict=True):
        value = c.get(column, "").strip()
        row.decision = None if value in ("", "-1") else _word(value.split(".")[0])
        row.note = c.get("asreview_note") or None


COVIDENCE_LISTS = {
    "included": "include", "excluded": "exclude", "irrelevant": "exclude",
    "fulltext": "include", "full_text": "include", "select": "include",
}


def _covidence(rows: list[Row], cells: list[dict[str, str]], path: Path, decision: str | None
               ) -> None:
    if decision is None:
        tokens = re.split(r"[_\-\s.]+", path.name.lower())
        found = [COVIDENCE_LISTS[t] for t in tokens if t in COVIDENCE_LISTS]
        if not found:
            raise MissingColumnsError(
                f"{path}: a Covidence export holds one list and its name does not say which "
                "(included, excluded, irrelevant): give --decision include|exclude"
            )
        decision = found[0]
    for row, c in zip(rows, cells, strict=True):
        row.decision = decision
        reason = re.search(r"exclusion reason:\s*([^;\n]+)", c.get("notes", ""), re.IGNORECASE)
        row.reason = reason.group(1).strip() if reason else None
        row.note = c.get("covidence #") and f"Covidence #{c['covidence #'].lstrip('#')}"


def _plain(rows: list[Row], cells: list[dict[str, str]], header: list[str], path: Path) -> None:
    names = {h.lower() for h in header}
    if not ({"pmid", "doi"} & names):
        raise MissingColumnsError(f"{path}: a plain decisions CSV needs a pmid or doi column")
    for row, c in zip(rows, cells, strict=True):
        row.decision = _word(c.get("decision"))
        if row.decision is None and c.get("decision"):
            raise UnknownFormatError(
                f"{path} row {row.number}: decision {c['decision']!r} is not include, exclude "
                "or maybe"
            )
        row.reason = c.get("reason") or None
