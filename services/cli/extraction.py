"""``living-review extract``: the machine-proposed extraction of a passage or a stored record.

``--json`` prints (stable keys)::

    {"source": {"pmid": int} | {"file": str}, "title": str, "review": str,
     "extractor_version": str, "stored": bool,
     "fields": {"<field>": {"value", "unit", "start", "end", "evidence", "confidence",
                            "method", "source", "note", "reason"}}}

Fields are n_total, n_resorbed, percent, design, country, follow_up, age, sex, herniation_type,
predictors, mechanisms; a field with no support is absent; a count withheld on purpose has
``"value": null, "abstained": true`` and its ``reason``. ``start``/``end`` are character offsets
into the abstract (null when the support is the title or the PubMed metadata).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from sqlalchemy import select

from db.models import Record, Review
from services.cli.context import Context, context
from services.cli.errors import CliError
from services.extraction import (
    ExtractionSchema,
    Proposal,
    SchemaError,
    propose,
    schema_of,
)
from services.extraction.store import propose_record, store_proposal


def _schema(ctx: Context, review: str) -> ExtractionSchema:
    protocol = ctx.protocol(review)
    try:
        return schema_of(protocol)
    except SchemaError as exc:
        raise CliError(f"review {review}: {exc}") from exc


def read_passage(path: Path) -> tuple[str, str]:
    """(title, abstract) from a plain-text file: the title on the first non-empty line."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"--text {path}: no such file") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"--text {path}: cannot read it as UTF-8 text ({exc})") from exc
    lines = [line.strip() for line in text.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) < 2:
        raise CliError(f"--text {path}: give the title on the first line and the abstract after it")
    return lines[0], " ".join(lines[1:])


def _print_human(title: str, proposal: Proposal) -> None:
    typer.echo(title)
    if not proposal.fields:
        typer.echo("  (nothing proposed)")
    for name, fp in proposal.to_dict()["fields"].items():
        if fp.get("abstained"):
            typer.echo(f"  {name:<16} {'(left empty)':<28}       {fp['reason']}")
            continue
        value = fp["value"] if fp["unit"] is None else f"{fp['value']} {fp['unit']}"
        typer.echo(f"  {name:<16} {value!s:<28} {fp['confidence']:.2f}  {fp['method']}")
        typer.echo(f"  {'':<16} ↳ {fp['evidence'][:110]}")
        if fp.get("reason"):
            typer.echo(f"  {'':<16}   because {fp['reason']}")


def _output(data: dict[str, Any], title: str, proposal: Proposal, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({**data, **proposal.to_dict()}, indent=2, ensure_ascii=False))
    else:
        _print_human(title, proposal)


def extract(
    text: Annotated[
        Path | None, typer.Option("--text", help="Plain text: title, then abstract.")
    ] = None,
    pmid: Annotated[int | None, typer.Option("--pmid", help="PMID of a stored record.")] = None,
    review: Annotated[
        str, typer.Option("--review", "-r", help="Review whose protocol applies.")
    ] = "ldh_resorption",
    store: Annotated[
        bool, typer.Option("--store", help="With --pmid: keep the proposal in the database.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Machine-readable output (documented keys).")
    ] = False,
) -> None:
    """Propose extraction fields (counts, design, country, follow-up …) with their evidence."""
    if (text is None) == (pmid is None):
        raise CliError("give exactly one of --text FILE or --pmid N")
    if store and pmid is None:
        raise CliError("--store needs --pmid (a passage from --text has no record to attach to)")
    ctx = context()
    schema = _schema(ctx, review)
    if text is not None:
        title, abstract = read_passage(text)
        proposal = propose(title, abstract, metadata={}, schema=schema)
        base = {"source": {"file": str(text)}, "title": title, "review": review, "stored": False}
        _output(base, title, proposal, as_json)
        return
    _extract_pmid(ctx, int(pmid or 0), review, schema, store, as_json)


def _extract_pmid(
    ctx: Context, pmid: int, review: str, schema: ExtractionSchema, store: bool, as_json: bool
) -> None:
    factory = ctx.sessions()
    with factory.begin() as session:
        record = session.scalar(select(Record).where(Record.pmid == pmid))
        if record is None:
            raise CliError(
                f"no stored record with PMID {pmid} (harvest it first: living-review update)"
            )
        proposal = propose_record(record, schema)
        if store:
            row = session.scalar(select(Review).where(Review.slug == review))
            if row is None:
                raise CliError(f"review {review} is not in the database (run living-review init)")
            store_proposal(
                session=session, review_id=row.id, record_id=record.id, proposal=proposal
            )
        base = {"source": {"pmid": pmid}, "title": record.title, "review": review, "stored": store}
        _output(base, record.title, proposal, as_json)


def register(app: typer.Typer) -> None:
    """Add ``extract`` to the ``living-review`` app."""
    app.command("extract")(extract)
