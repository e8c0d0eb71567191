"""Commands of the harvest side: init, update, status, runs, replay-server."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from services.cli.context import Context, context
from services.cli.errors import CliError

ReviewOpt = Annotated[
    str, typer.Option("--review", "-r", help="Review folder name under reviews/.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output (documented keys).")]


def _echo_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _progress(message: str) -> None:
    if sys.stderr.isatty():
        sys.stderr.write(f"\r{message}\033[K")
    else:
        sys.stderr.write(message + "\n")


def snapshot_dir(ctx: Context, slug: str, snapshot: str) -> Path:
    """``demo`` names the review's bundled demo snapshot; anything else is a folder."""
    path = ctx.review_dir(slug) / "demo" if snapshot == "demo" else Path(snapshot)
    if not path.is_dir():
        raise CliError(
            f"snapshot folder {path} does not exist (give a folder of PubMed XML, or demo)"
        )
    return path


def init(review: ReviewOpt = "ldh_resorption") -> None:
    """Migrate the database, load the review's protocol and import its baseline studies."""
    from sqlalchemy import select

    from db.migrate import upgrade
    from db.models import EstimateSnapshot
    from services.baseline import BaselineError, import_baseline
    from services.digest.estimates import recompute_and_queue
    from services.reviews import ensure_review

    ctx = context()
    protocol = ctx.protocol(review)
    upgrade(ctx.engine)
    factory = ctx.sessions()
    try:
        with factory.begin() as session:
            row = ensure_review(session, protocol)
            counts = import_baseline(session, row, ctx.review_dir(review) / "baseline")
            if not session.scalar(
                select(EstimateSnapshot.id).where(EstimateSnapshot.review_id == row.id)
            ):
                # the baseline's estimate: what later updates are compared with; no email for it
                recompute_and_queue(session, row, trigger="init", notify=False)
    except BaselineError as exc:
        raise CliError(str(exc)) from exc
    typer.echo(
        f"{review}: database ready; baseline {counts.references} references, "
        f"{counts.prevalence} prevalence, {counts.predictors} predictor and "
        f"{counts.mechanisms} mechanism studies"
    )


def update(
    review: ReviewOpt = "ldh_resorption",
    snapshot: Annotated[
        str | None,
        typer.Option(
            help="Replay PubMed from this folder of XML (or 'demo', the bundled demo) instead of NCBI."
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(help="Upper create date of the window (YYYY-MM-DD); default today."),
    ] = None,
    fault: Annotated[
        str | None, typer.Option(help="With --snapshot: faults to inject, e.g. 429:2,500:1.")
    ] = None,
    accept_empty: Annotated[
        bool,
        typer.Option(
            "--accept-empty",
            help="Accept a search that finds 0 records where earlier windows found some "
            "(otherwise the run is held for a person).",
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Run one full update of a review: harvest, pre-screen, propose, recompute, digest."""
    from services.pipeline import PipelineOptions, run_update
    from services.protocol import ProtocolError
    from services.pubmed.errors import PubMedError
    from services.pubmed.replay import FaultSpecError, ReplayServer, SnapshotError
    from services.runs import UpdateError, WindowCoveredError

    ctx = context()
    protocol = ctx.protocol(review)
    try:
        upper = dt.date.fromisoformat(until) if until else dt.date.today()
    except ValueError as exc:
        raise CliError(f"--until {until!r} is not a date (YYYY-MM-DD)") from exc
    if upper > dt.date.today():
        raise CliError(f"--until {upper} is after today ({dt.date.today()}): PubMed has no records from the future")
    factory = ctx.sessions()
    options = PipelineOptions.from_settings(ctx.settings)
    try:
        if snapshot is None:
            result = run_update(factory, protocol, options, until=upper, progress=_progress,
                                    accept_empty=accept_empty)
        else:
            with ReplayServer(snapshot_dir(ctx, review, snapshot), faults=fault) as server:
                options = options.with_base_url(server.url)
                result = run_update(factory, protocol, options, until=upper, progress=_progress,
                                    accept_empty=accept_empty)
    except CliError:
        raise
    except WindowCoveredError as exc:
        typer.echo(f"{review}: {exc}")
        return
    except (SnapshotError, FaultSpecError, ProtocolError, UpdateError) as exc:
        raise CliError(str(exc)) from exc
    except PubMedError as exc:
        raise CliError(f"update failed: {exc}") from exc
    except Exception as exc:  # any step failing: the run is marked failed with its reason
        raise CliError(f"update failed ({type(exc).__name__}): {exc}") from exc
    if result.status == "held":
        if as_json:
            _echo_json(result.to_dict())
        raise CliError(f"run {result.run_id} held for a person: {result.error}")
    if as_json:
        _echo_json(result.to_dict())
        return
    if result.resumed:
        done = result.resumed
        typer.echo(
            f"{review}: finished the interrupted run {done['run_id']} first (window "
            f"{done['window_start']}..{done['window_end']}; {done['found']} found, "
            f"{done['new']} new), then searched the next window"
        )
    typer.echo(
        f"{review}: run {result.run_id} {result.status}; window {result.window_start}..{result.window_end}; "
        f"{result.found} found, {result.new} new, {result.updated} revised, {result.linked} linked to "
        f"included studies; {result.requests} E-utilities requests"
    )
    for line in _step_lines(result.steps):
        typer.echo(f"  {line}")


def _step_lines(steps: dict[str, Any]) -> list[str]:
    """One readable line per step of an update (the --json output keeps the raw figures)."""
    lines = []
    pre = steps.get("prescreen")
    if pre:
        rules = ", ".join(f"{k} {v}" for k, v in pre.get("by_rule", {}).items())
        how = {
            "cold_start": "ranked by similarity to included studies",
            "model": f"model {pre.get('model_version')}",
        }.get(pre.get("mode", ""), "")
        lines.append(
            f"prescreen: {pre['records']} new records; {pre['rule_excluded']} excluded by protocol "
            f"rules{f' ({rules})' if rules else ''}, {pre['model_excluded']} by the model, "
            f"{pre['queued']} queued ({pre['audit_sample']} audit sample, {pre['flagged']} flagged)"
            + (f"; {how}" if how else "")
            + (f" — {pre['note']}" if pre.get("note") else "")
        )
    if "propose" in steps:
        lines.append(f"propose: {steps['propose']['proposed']} extraction proposals")
    rec = steps.get("recompute")
    if rec and rec.get("estimate") is not None:
        low, high = rec["ci"]
        lines.append(
            f"recompute: pooled {100 * rec['estimate']:.1f}% [{100 * low:.1f}; {100 * high:.1f}], "
            f"k = {rec['k']}; "
            + (
                f"{rec['digests_queued']} digest(s) queued"
                if rec["digests_queued"]
                else "no digest (no change past the protocol's thresholds)"
            )
        )
    return lines


def status(as_json: JsonOpt = False) -> None:
    """Where each review stands: records by state, included studies, the last run."""
    from services.status import all_status

    factory = context().sessions()
    with factory() as session:
        data = all_status(session)
    if as_json:
        _echo_json(data)
        return
    for item in data:
        typer.echo(
            f"{item['review']}: {item['records']} records, {item['linked_to_baseline']} linked to "
            f"baseline studies, {item['queued']} queued, {item['excluded']} excluded, "
            f"{item['included']} included; {item['studies_included']} included studies"
        )
        last = item["last_run"]
        if last:
            typer.echo(
                f"  last run {last['id']}: {last['status']} {last['window_start']}..{last['window_end']}"
                + (f" ({last['error']})" if last["error"] else "")
            )


def runs(
    review: Annotated[str | None, typer.Option("--review", "-r")] = None, as_json: JsonOpt = False
) -> None:
    """Past update runs, newest first."""
    from services.status import list_runs

    factory = context().sessions()
    with factory() as session:
        data = list_runs(session, review)
    if as_json:
        _echo_json(data)
        return
    for run in data:
        typer.echo(
            f"{run['id']:>5} {run['review']} {run['status']:<10} {run['window_start']}..{run['window_end']} "
            f"found {run['found']} new {run['new']} revised {run['updated']} linked {run['linked']}"
            + (f"  error: {run['error']}" if run["error"] else "")
        )


def replay_server(
    snapshot: Annotated[str, typer.Option(help="Folder of PubMed XML, or 'demo'.")],
    port: Annotated[int, typer.Option(help="TCP port on 127.0.0.1.")] = 8765,
    fault: Annotated[
        str | None, typer.Option(help="Faults, e.g. 429:2,500:1,truncate:1,slow=2:1")
    ] = None,
    review: ReviewOpt = "ldh_resorption",
) -> None:
    """Serve E-utilities (esearch, efetch) from a folder of PubMed XML until interrupted."""
    from services.pubmed.replay import FaultSpecError, ReplayServer, SnapshotError

    ctx = context()
    try:
        server = ReplayServer(snapshot_dir(ctx, review, snapshot), port=port, faults=fault)
    except (SnapshotError, FaultSpecError) as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise CliError(f"cannot listen on port {port}: {exc.strerror}") from exc
    typer.echo(
        f"replaying {len(server.state.records)} records at {server.url} "
        f"(set ENTREZ_BASE_URL to it); Ctrl-C stops"
    )
    try:
        server.serve_forever()
    finally:
        server.stop()


def register(app: typer.Typer) -> None:
    app.command()(init)
    app.command()(update)
    app.command()(status)
    app.command()(runs)
    app.command("replay-server")(replay_server)
