"""A new review from a few answers: its ``protocol.toml`` written and validated, then created.

:func:`protocol_text` turns the answers (title, PubMed query, start date, outcome, criteria) into
protocol TOML; :func:`write_protocol` validates that text with the protocol loader and writes it
to ``<reviews folder>/<slug>/protocol.toml`` atomically, refusing a review that exists or a
folder inside the installed package. The query is checked against PubMed by the caller (an
esearch count through the normal client) before anything is written.

Errors: :class:`NewReviewError` (one line naming what to fix).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from services.protocol import SLUG, Protocol, ProtocolError, parse_protocol

PACKAGE_ROOT = Path(__file__).resolve().parent


class NewReviewError(Exception):
    """The answers cannot make a review, or it cannot be written where configured."""


@dataclass(frozen=True)
class NewReview:
    """What ``living-review new`` asks for."""

    slug: str
    title: str
    query: str
    start_date: dt.date
    outcome: str
    outcome_description: str = ""
    events_field: str = "n_events"
    total_field: str = "n_total"
    events_label: str = "Participants with the outcome"
    inclusion: list[str] = field(default_factory=list)
    exclusion: list[str] = field(default_factory=list)
    languages: list[str] = field(default_factory=lambda: ["eng"])
    exclude_publication_types: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)


def _q(value: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's)."""
    return json.dumps(value, ensure_ascii=False)


def _list(values: list[str]) -> str:
    return "[" + ", ".join(_q(v) for v in values) + "]"


def protocol_text(answers: NewReview) -> str:
    """The protocol TOML of a new review (the shape of ``reviews/ldh_resorption``)."""
    lines = [
        f"# Living review protocol written by `living-review new` on {dt.date.today()}.",
        "# This file is the review's single source of truth: edit it, then run an update.",
        "",
        f"slug = {_q(answers.slug)}",
        f"title = {_q(answers.title)}",
        "",
        "[search]",
        f"query = {_q(' '.join(answers.query.split()))}",
        f'start_date = "{answers.start_date.isoformat()}"',
        "",
        "[criteria]",
        f"languages = {_list(answers.languages)}",
        f"exclude_publication_types = {_list(answers.exclude_publication_types)}",
        f"inclusion = {_list(answers.inclusion)}",
        f"exclusion = {_list(answers.exclusion)}",
        "",
        "[screening]",
        "reviewers_per_record = 1",
        "recall_target = 0.95",
        "audit_fraction = 0.05",
        f"keywords = {_list(answers.keywords)}",
        "",
        "[outcome]",
        f"name = {_q(answers.outcome)}",
        f"description = {_q(answers.outcome_description)}",
        f"events_field = {_q(answers.events_field)}",
        f"total_field = {_q(answers.total_field)}",
        "",
        "[extraction]",
        f"outcome_terms = {_list([answers.outcome])}",
        "",
        "  [[extraction.fields]]",
        f"  name = {_q(answers.total_field)}",
        '  type = "int"',
        '  label = "Sample size (analysed)"',
        "  required = true",
        "  [[extraction.fields]]",
        f"  name = {_q(answers.events_field)}",
        '  type = "int"',
        f"  label = {_q(answers.events_label)}",
        "  required = true",
        "",
    ]
    return "\n".join(lines)


def validate(answers: NewReview, text: str, target: Path) -> Protocol:
    """The protocol the text makes; NewReviewError naming the field when it is not valid."""
    if not SLUG.match(answers.slug):
        raise NewReviewError(
            f"review name {answers.slug!r} is not valid: use lower-case letters, digits, _ and -"
        )
    if answers.events_field == answers.total_field:
        raise NewReviewError("--events-field and --total-field must name different fields")
    try:
        return parse_protocol(text, source=str(target), slug=answers.slug)
    except ProtocolError as exc:
        raise NewReviewError(str(exc)) from exc


def protocol_path(reviews_dir: Path, slug: str) -> Path:
    """Where the review's protocol goes; refuses an existing review or the package's folder."""
    folder = reviews_dir.resolve()
    if folder.is_relative_to(PACKAGE_ROOT) or any(
        part in ("site-packages", "dist-packages") for part in folder.parts
    ):
        raise NewReviewError(
            f"the reviews folder {folder} is inside the installed package: set REVIEWS_DIR to a "
            "folder of your own"
        )
    target = folder / slug / "protocol.toml"
    if target.exists():
        raise NewReviewError(f"review {slug!r} exists already ({target}); choose another name")
    return target


def write_protocol(target: Path, text: str) -> None:
    """Write the protocol atomically (a temporary file renamed into place)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".toml.part")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, target)
    except OSError as exc:
        raise NewReviewError(f"cannot write {target}: {exc.strerror}") from exc


def remove_protocol(target: Path) -> None:
    """Undo :func:`write_protocol` when creating the review in the database failed."""
    target.unlink(missing_ok=True)
    with contextlib.suppress(OSError):
        target.parent.rmdir()
