"""The study record the engine works on, and reading a CSV of studies.

A CSV for ``living-review pool`` has columns ``study,events,total`` and optionally ``group`` and
``year`` (any other column is kept in ``extra`` and can be used for subgroups). Bad cells raise
:class:`~services.meta_analysis.errors.InvalidStudyData` naming the study (or row) and column.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.meta_analysis.errors import InvalidStudyData, InvalidStudyFile

MAX_CSV_BYTES = 50 * 10**6  # pool refuses larger files (README, "Pooled estimates")
MAX_STUDIES = 1_000_000


@dataclass(frozen=True)
class Study:
    """One study's prevalence extraction: counts plus what the audit and subgroups look at."""

    label: str
    events: float | None
    total: float | None
    reported_percent: float | None = None
    year: int | None = None
    first_author: str | None = None
    country: str | None = None
    design: str | None = None
    age_range: str | None = None
    sex: str | None = None
    group: str | None = None
    study_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    # Why the study is retracted ("retraction notice PMID 123"), None when it is not; a
    # retracted study is left out of pooling and kept for the sensitivity estimate.
    retracted: str | None = None
    # "baseline" for the seed review's studies, "screening" for those included since.
    source: str | None = None

    def value(self, name: str) -> Any:
        """The value of field ``name`` (attribute, ``decade`` from the year, or an extra field)."""
        if name == "decade":
            return None if self.year is None else f"{self.year // 10 * 10}s"
        if name in self.__dataclass_fields__ and name != "extra":
            return getattr(self, name)
        return self.extra.get(name)


def parse_number(raw: str | None, label: str, column: str, *, whole: bool) -> float | None:
    """Read one numeric cell; empty or NA is None; anything else unreadable raises."""
    text = (raw or "").strip()
    if text == "" or text.upper() in {"NA", "N/A", "NR"}:
        return None
    try:
        value = float(text.rstrip("%"))
    except ValueError:
        raise InvalidStudyData(label, column, f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise InvalidStudyData(label, column, f"{text!r} is not a finite number")
    if whole and value != round(value):
        raise InvalidStudyData(label, column, f"{text!r} is not a whole number")
    return value


def studies_from_rows(rows: Iterable[dict[str, str]]) -> list[Study]:
    """Build studies from CSV rows (``study,events,total[,group,year]``; other columns kept)."""
    studies = []
    for i, row in enumerate(rows, start=2):
        label = (row.get("study") or "").strip() or f"row {i}"
        events = parse_number(row.get("events"), label, "events", whole=True)
        total = parse_number(row.get("total"), label, "total", whole=True)
        if events is None:
            raise InvalidStudyData(label, "events", "missing")
        if total is None:
            raise InvalidStudyData(label, "total", "missing")
        year = parse_number(row.get("year"), label, "year", whole=True)
        known = {"study", "events", "total", "group", "year"}
        studies.append(
            Study(
                label=label,
                events=events,
                total=total,
                year=None if year is None else int(year),
                group=(row.get("group") or None),
                extra={key: value for key, value in row.items() if key not in known and key},
            )
        )
    return studies


def read_studies_csv(path: Path) -> list[Study]:
    """Read a CSV of studies, streaming, up to :data:`MAX_CSV_BYTES` and :data:`MAX_STUDIES`.

    Raises :class:`InvalidStudyFile` for a missing required column (named), a file with no
    rows, one past the limits, or one that is not UTF-8; :class:`InvalidStudyData` for a bad
    cell (study and column named).
    """
    size = path.stat().st_size
    if size > MAX_CSV_BYTES:
        raise InvalidStudyFile(
            f"{size / 1e6:.0f} MB is over the {MAX_CSV_BYTES // 10**6} MB limit for pooling a CSV"
        )
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            missing = [
                c for c in ("study", "events", "total") if c not in (reader.fieldnames or [])
            ]
            if missing:
                raise InvalidStudyFile(
                    f"missing required column{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(repr(c) for c in missing)} (need study,events,total)"
                )
            studies = studies_from_rows(_limited(reader))
    except UnicodeDecodeError as exc:
        raise InvalidStudyFile(f"not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except csv.Error as exc:
        raise InvalidStudyFile(f"not a readable CSV: {exc}") from None
    if not studies:
        raise InvalidStudyFile("no studies: the file has a header but no rows")
    return studies


def _limited(rows: Iterable[dict[str, str]]) -> Iterator[dict[str, str]]:
    for count, row in enumerate(rows, start=1):
        if count > MAX_STUDIES:
            raise InvalidStudyFile(f"more than {MAX_STUDIES:,} studies; split the file")
        yield row
