"""Commands that start a review and bring in what it already has: new, import, backfill."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli.context import Context, context
from services.cli.errors import CliError

import_app = typer.Typer(help="Import included studies, their data, or prior screening decisions.",
                         no_args_is_help=True)
ReviewOpt = Annotated[str, typer.Option("--review", "-r", help="The review's name.")]
SnapshotOpt = Annotated[
    str | None,
    typer.Option(help="Ask a local replay of PubMed (a folder of PubMed XML) instead of NCBI."),
]
DryRunOpt = Annotated[bool, typer.Option("--dry-run", help="Report what would be done; write nothing.")]
FileArg = Annotated[Path, typer.Argument(help="The file to import.")]


@contextmanager
def entrez_client(ctx: Context, snapshot: str | None) -> Iterator[Any]:
    """The normal Entrez client (rate limit, retries), against NCBI or a replay snapshot."""
    from services.pipeline import PipelineOptions
    from services.pubmed.replay import FaultSpecError, ReplayServer, SnapshotError

    options = PipelineOptions.from_settings(ctx.settings)
    if snapshot is None:
        yield options.make_client()
        return
    try:
        server = ReplayServer(Path(snapshot))
    except (SnapshotError, FaultSpecError) as exc:
        raise CliError(str(exc)) from exc
    with server:
        yield options.with_base_url(server.url).make_client()


def _pubmed_errors() -> tuple[type[Exception], ...]:
    from services.pubmed.errors import PubMedError

    return (PubMedError,)


def new(
    slug: Annotated[str, typer.Argument(help="The review's name: lower-case letters, digits, _-.")],
    title: Annotated[str, typer.Option(help="The review's title.")],
    query: Annotated[str, typer.Option(help="The PubMed query (Entrez syntax).")],
    start_date: Annotated[str, typer.Option(help="First create date updates look at (YYYY-MM-DD); "
                                            "the baseline search ran up to the day before.")],
    outcome: Annotated[str, typer.Option(help="The outcome pooled as a proportion.")],
    outcome_description: Annotated[str, typer.Option(help="What counts as the outcome.")] = "",
    events_field: Annotated[str, typer.Option(help="Extraction field of the events.")] = "n_events",
    total_field: Annotated[str, typer.Option(help="Extraction field of the total.")] = "n_total",
    inclusion: Annotated[list[str] | None, typer.Option(help="An inclusion criterion (repeat).")] = None,
    exclusion: Annotated[list[str] | None, typer.Option(help="An exclusion criterion (repeat).")] = None,
    exclude_type: Annotated[list[str] | None, typer.Option(
        help="A PubMed publication type excluded by rule (repeat), e.g. Review.")] = None,
    keyword: Annotated[list[str] | None, typer.Option(help="A screening keyword (repeat).")] = None,
    snapshot: SnapshotOpt = None,
) -> None:
    """Write a validated protocol.toml under the reviews folder and create the review."""
    from db.migrate import upgrade
    from services.new_review import (
        NewReview,
        NewReviewError,
        protocol_path,
        protocol_text,
        remove_protocol,
        validate,
        write_protocol,
    )
    from services.reviews import ensure_review

    ctx = context()
    try:
        start = dt.date.fromisoformat(start_date)
    except ValueError as exc:
        raise CliError(f"--start-date {start_date!r} is not a date (YYYY-MM-DD)", 2) from exc
    answers = NewReview(
        slug=slug, title=title, query=query, start_date=start, outcome=outcome,
        outcome_description=outcome_description, events_field=events_field,
        total_field=total_field, inclusion=list(inclusion or []), exclusion=list(exclusion or []),
        exclude_publication_types=list(exclude_type or []), keywords=list(keyword or []),
    )
    try:
        target = protocol_path(ctx.settings.reviews_dir, slug)
        protocol = validate(answers, protocol_text(answers), target)
    except NewReviewError as exc:
        raise CliError(str(exc), 2) from exc
    try:
        with entrez_client(ctx, snapshot) as client:
            found = client.count(protocol.search.term)
            before = client.count(protocol.search.term, until=start - dt.timedelta(days=1))
    except _pubmed_errors() as exc:
        raise CliError(f"the query was not accepted: {exc}") from exc
    upgrade(ctx.engine)
    factory = ctx.sessions()
    try:
        write_protocol(target, protocol_text(answers))
        with factory.begin() as session:
            ensure_review(session, protocol)
    except NewReviewError as exc:
        raise CliError(str(exc)) from exc
    except Exception:
        remove_protocol(target)
        raise
    typer.echo(
        f"{slug}: created; protocol {target}; the query finds {found} PubMed records, "
        f"{before} of them before {start} (the baseline period: `living-review backfill`)"
    )


def _review_id(ctx: Context, slug: str) -> int:
    from services.pipeline import review_by_slug
    from services.runs import UpdateError

    ctx.protocol(slug)
    with ctx.sessions()() as session:
        try:
            return int(review_by_slug(session, slug).id)
        except UpdateError as exc:
            raise CliError(str(exc)) from exc


def _echo(lines: Sequence[str], dry_run: bool) -> None:
    for line in lines:
        typer.echo(line)
    if dry_run:
        typer.echo("dry run: nothing was written")


def _intake_errors() -> tuple[type[Exception], ...]:
    from services.intake.errors import IntakeError

    return (IntakeError, *_pubmed_errors())


@import_app.command("includes")
def import_includes(
    file: FileArg,
    review: ReviewOpt,
    fmt: Annotated[str, typer.Option("--format", help="auto, ris, csv or ids.")] = "auto",
    snapshot: SnapshotOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Included studies from RIS, CSV or a PMID/DOI list, resolved to PubMed records."""
    from services.intake.formats import read_includes
    from services.intake.resolve import resolve_rows
    from services.intake.store import apply_includes, plan_includes

    ctx = context()
    review_id = _review_id(ctx, review)
    factory = ctx.sessions()
    try:
        rows = read_includes(file, fmt)
        with entrez_client(ctx, snapshot) as client, factory() as session:
            plan = plan_includes(session, review_id, rows, lambda r: resolve_rows(client, r),
                                 file.name)
    except _intake_errors() as exc:
        raise CliError(str(exc)) from exc
    _echo(plan.report(), dry_run)
    if not dry_run:
        with factory.begin() as session:
            created = apply_includes(session, review_id, plan)
        typer.echo(f"{review}: {created} included studies added")


@import_app.command("decisions")
def import_decisions(
    file: FileArg,
    review: ReviewOpt,
    fmt: Annotated[str, typer.Option("--format", help=(
        "auto, rayyan-ris, rayyan-csv, covidence-csv, asreview-csv, asreview-ris or plain-csv."))
    ] = "auto",
    decision: Annotated[str | None, typer.Option(
        help="For a Covidence list whose file name does not say it: include or exclude.")] = None,
    snapshot: SnapshotOpt = None,
    dry_run: DryRunOpt = False,
) -> None:
    """Prior screening decisions (Rayyan, Covidence, ASReview LAB, plain CSV)."""
    from services.intake.formats import read_decisions
    from services.intake.resolve import resolve_rows
    from services.intake.store import apply_decisions, plan_decisions

    if decision not in (None, "include", "exclude"):
        raise CliError(f"--decision {decision!r}: use include or exclude", 2)
    ctx = context()
    review_id = _review_id(ctx, review)
    factory = ctx.sessions()
    try:
        rows = read_decisions(file, fmt, decision=decision)
        with entrez_client(ctx, snapshot) as client, factory() as session:
            plan = plan_decisions(session, review_id, review, rows,
                                  lambda r: resolve_rows(client, r), file.name)
    except _intake_errors() as exc:
        raise CliError(str(exc)) from exc
    _echo(plan.report(), dry_run)
    if not dry_run:
        with factory.begin() as session:
            counts = apply_decisions(session, review_id, plan)
        typer.echo(
            f"{review}: {counts['decided']} decisions imported; {counts['kept_included']} on "
            f"included studies (kept included); {counts['kept_reviewer']} records already decided "
            "by this review's reviewers (kept)"
        )


@import_app.command("data")
def import_data(
    file: FileArg,
    review: ReviewOpt,
    column: Annotated[list[str], typer.Option(
        "--map", help="FIELD=COLUMN: the extraction field a CSV column holds (repeat).")],
    dry_run: DryRunOpt = False,
) -> None:
    """Extracted data of the included studies from a CSV, audited on import."""
    from services.intake.data import apply_data, parse_mapping, plan_data

    ctx = context()
    protocol = ctx.protocol(review)
    review_id = _review_id(ctx, review)
    factory = ctx.sessions()
    try:
        mapping = parse_mapping(column, protocol)
        with factory() as session:
            plan = plan_data(session, review_id, file, mapping, protocol)
    except _intake_errors() as exc:
        raise CliError(str(exc)) from exc
    _echo(plan.report(), dry_run)
    if not dry_run:
        with factory.begin() as session:
            written = apply_data(session, review_id, plan)
        typer.echo(f"{review}: {written} extractions imported")


def backfill(
    review: ReviewOpt = "ldh_resorption",
    snapshot: SnapshotOpt = None,
    since: Annotated[str | None, typer.Option(help="Earliest create date (YYYY-MM-DD).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Harvest the baseline search period; its records not included become inferred excludes."""
    from services.backfill import EARLIEST, BackfillError
    from services.backfill import backfill as run_backfill
    from services.cli.harvest import _progress, snapshot_dir
    from services.runs import UpdateError

    ctx = context()
    protocol = ctx.protocol(review)
    factory = ctx.sessions()
    try:
        lower = dt.date.fromisoformat(since) if since else EARLIEST
    except ValueError as exc:
        raise CliError(f"--since {since!r} is not a date (YYYY-MM-DD)", 2) from exc
    folder = str(snapshot_dir(ctx, review, snapshot)) if snapshot else None
    try:
        with entrez_client(ctx, folder) as client:
            result = run_backfill(factory, protocol, client, since=lower, progress=_progress)
    except (BackfillError, UpdateError, *_pubmed_errors()) as exc:  # type: ignore[misc]
        raise CliError(f"backfill failed: {exc}") from exc
    if as_json:
        typer.echo(json.dumps(asdict(result), indent=2))
        return
    typer.echo(
        f"{review}: baseline period {result.window_start}..{result.window_end}: {result.found} "
        f"found, {result.new} new, {result.linked} linked to included studies, "
        f"{result.inferred_excludes} inferred excludes (the model trains on them; they are not "
        "shown as anyone's decision)"
    )


def register(app: typer.Typer) -> None:
    app.command()(new)
    app.command()(backfill)
    app.add_typer(import_app, name="import")
