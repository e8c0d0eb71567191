"""CLI commands of the scheduled service: ``worker``, ``beat`` and ``digest``.

``worker`` and ``beat`` need ``REDIS_URL`` (the Celery broker) and say so when it is unset;
``digest --preview`` prints the next digest without sending; ``digest --send`` delivers the
pending digests now (what the workers' periodic sender does).
"""

from __future__ import annotations

import typer
from sqlalchemy import select

from db.models import Review
from services.cli.context import Context, context
from services.cli.errors import CliError


def _broker(ctx: Context) -> None:
    from workers.celery_app import BrokerNotConfiguredError, require_broker

    try:
        require_broker(ctx.settings)
    except BrokerNotConfiguredError as exc:
        raise CliError(str(exc)) from exc


def worker(
    concurrency: int = typer.Option(2, "--concurrency", "-c", min=1, help="Worker processes."),
    loglevel: str = typer.Option("info", "--loglevel", "-l"),
) -> None:
    """Run a Celery worker (needs REDIS_URL): updates, recomputes, digest delivery."""
    ctx = context()
    _broker(ctx)
    ctx.sessions()  # refuse an unmigrated database before taking work
    from workers.celery_app import QUEUE, app

    app.worker_main(
        [
            "worker",
            "-l",
            loglevel,
            "-c",
            str(concurrency),
            "-Q",
            QUEUE,
            "--without-gossip",
            "--without-mingle",
        ]
    )


def beat(loglevel: str = typer.Option("info", "--loglevel", "-l")) -> None:
    """Run Celery beat (needs REDIS_URL): one per deployment; a second one stands by."""
    ctx = context()
    _broker(ctx)
    ctx.sessions()
    from workers.celery_app import app, runtime
    from workers.schedule import LEADER_KEY

    holder = runtime().redis.get(f"{ctx.settings.redis_key_prefix}{LEADER_KEY}")
    if holder:
        typer.echo(
            f"another beat is scheduling ({holder.decode()}); this one stands by and "
            "takes over if it stops",
            err=True,
        )
    app.start(["beat", "-l", loglevel])


def digest(
    review: str | None = typer.Option(None, "--review", "-r", help="Review slug (default: all)."),
    preview_only: bool = typer.Option(
        False, "--preview", help="Print the next digest, send nothing."
    ),
    send: bool = typer.Option(False, "--send", help="Deliver pending digests now over SMTP."),
) -> None:
    """Preview the next digest, or deliver the pending ones."""
    if preview_only == send:
        raise CliError("say what to do: --preview (print the next digest) or --send (deliver)")
    ctx = context()
    sessions = ctx.sessions()
    if send:
        _send(ctx, sessions)
        return
    from services.digest.preview import preview

    with sessions() as session:
        query = select(Review).order_by(Review.slug)
        if review:
            query = query.where(Review.slug == review)
        reviews = list(session.scalars(query))
        if not reviews:
            raise CliError(
                f"no review {review!r} in the database: run `living-review init`"
                if review
                else "no review in the database: run `living-review init`"
            )
        for item in reviews:
            shown = preview(session, item, base_url=ctx.settings.base_url)
            if shown is None:
                typer.echo(f"{item.slug}: no estimate yet, no digest")
                continue
            note = "" if shown.would_send else " (no change: this digest would NOT be sent)"
            typer.echo(f"Subject: {shown.subject}{note}\n\n{shown.text}")


def _send(ctx: Context, sessions: object) -> None:
    from services.digest import send_pending
    from workers.celery_app import smtp_config

    report = send_pending(sessions, smtp_config(ctx.settings))  # type: ignore[arg-type]
    typer.echo(f"sent {report.sent}, failed {report.failed}")
    if report.error:
        raise CliError(f"SMTP delivery failed, digests stay pending: {report.error}")


def register(app: typer.Typer) -> None:
    """Add worker, beat and digest to the ``living-review`` command."""
    app.command("worker")(worker)
    app.command("beat")(beat)
    app.command("digest")(digest)
