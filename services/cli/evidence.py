"""Evidence commands: ``evidence`` (the predictor and mechanism tables) and ``summary``.

``--json`` output (stable):

- ``evidence``: ``{"review", "predictors": {"studies", "rows": [...], "factors": [{"factor",
  "in_vocabulary", "k", "patients", "directions", "studies", "study_ids", "pooled_or",
  "notes"}]}, "mechanisms": {"studies", "rows": [...], "modulators": [{"modulator", "k",
  "species", "studies", "study_ids"}]}, "certainty": {...}, "risk_of_bias": {...}}``;
- ``summary``: the summary of findings (see :func:`services.evidence.summary.summary_of_findings`).

``evidence --csv predictors|mechanisms`` prints one table as CSV; ``summary`` without ``--json``
prints the summary-of-findings table as CSV.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from services.cli.context import context
from services.cli.errors import CliError

ReviewOpt = Annotated[str, typer.Option("--review", "-r", help="Review folder under reviews/.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (documented keys).")]


def _review(session, slug: str):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from db.models import Review

    review = session.scalars(select(Review).where(Review.slug == slug)).first()
    if review is None:
        raise CliError(f"review {slug!r} is not in the database; run living-review init")
    return review


def evidence(
    review: ReviewOpt = "ldh_resorption",
    json_out: JsonOpt = False,
    csv_table: Annotated[
        str | None, typer.Option("--csv", help="Print one table as CSV: predictors or mechanisms.")
    ] = None,
) -> None:
    """The predictor and mechanism evidence tables, with a summary per factor."""
    from services.evidence.snapshots import build_report
    from services.evidence.summary import mechanisms_csv, predictors_csv

    if csv_table not in (None, "predictors", "mechanisms"):
        raise CliError(f"--csv takes predictors or mechanisms, not {csv_table!r}")
    ctx = context()
    ctx.protocol(review)
    with ctx.sessions()() as session:
        report = build_report(session, _review(session, review))
    if csv_table is not None:
        writer = predictors_csv if csv_table == "predictors" else mechanisms_csv
        typer.echo(writer(report.tables), nl=False)
    elif json_out:
        typer.echo(json.dumps({"review": review, **report.to_dict()}, indent=2, default=str))
    else:
        tables = report.tables
        typer.echo(f"{review}: predictors from {tables.predictor_studies} studies")
        for f in tables.factors:
            stated = ", ".join(f"{n} {d}" for d, n in f.directions.items() if n)
            typer.echo(f"  {f.factor}: {f.k} studies, {f.patients} patients ({stated})")
            typer.echo(f"    {'; '.join(f.studies)}")
        typer.echo(f"{review}: mechanisms from {len(tables.mechanisms)} studies")
        for m in tables.modulators:
            typer.echo(f"  {m.modulator}: {m.k} studies ({', '.join(f'{n} {s}' for s, n in m.species.items())})")
        cert = report.certainty
        typer.echo(f"certainty of {cert.outcome}: {cert.level} ({cert.status})")
        for d in cert.domains:
            typer.echo(f"  {d.label}: −{d.downgrade} — {d.reason}")


def summary(
    review: ReviewOpt = "ldh_resorption",
    json_out: JsonOpt = False,
) -> None:
    """The summary of findings as CSV (or ``--json``): each question, answer, certainty."""
    from services.evidence.summary import sof_csv, summary_of_findings

    ctx = context()
    ctx.protocol(review)
    with ctx.sessions()() as session:
        sof = summary_of_findings(session, _review(session, review))
    if json_out:
        typer.echo(json.dumps(sof, indent=2, default=str))
    else:
        typer.echo(sof_csv(sof), nl=False)


def register(app: typer.Typer) -> None:
    """Add the evidence commands to the ``living-review`` app."""
    app.command("evidence")(evidence)
    app.command("summary")(summary)
