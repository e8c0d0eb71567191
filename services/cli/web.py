"""CLI: ``living-review serve`` (the reviewer web app under uvicorn) and ``living-review user add``."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from sqlalchemy import select

from db.migrate import NotMigratedError, require_migrated
from db.models import Review
from db.session import make_engine, make_sessionmaker
from services.accounts import InvalidAccountInput, add_user
from services.cli.errors import CliError
from services.settings import get_settings

user_app = typer.Typer(help="Manage reviewer accounts.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the reviewer web app (needs a migrated database: `living-review init`)."""
    import uvicorn

    from services.web import create_app

    settings = get_settings()
    try:
        settings.session_secret()
        require_migrated(make_engine(settings.database_url))
    except (ValueError, NotMigratedError) as exc:
        raise CliError(str(exc)) from exc
    # X-Forwarded-For decides the address sign-in attempts are counted for: believe it only
    # from the proxies named in FORWARDED_ALLOW_IPS (uvicorn would trust 127.0.0.1 by default).
    proxies = settings.forwarded_allow_ips
    options = {"proxy_headers": proxies is not None, "forwarded_allow_ips": proxies or ""}
    if workers > 1:
        uvicorn.run("services.web.asgi:app", host=host, port=port, workers=workers, **options)
    else:
        uvicorn.run(create_app(settings), host=host, port=port, **options)


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    name: Annotated[str, typer.Option(help="Name shown to other reviewers.")] = "",
    password: Annotated[
        str | None, typer.Option(help="Password (prefer --password-stdin).")
    ] = None,
    password_stdin: Annotated[bool, typer.Option(help="Read the password from stdin.")] = False,
    role: Annotated[str, typer.Option(help="admin or reviewer.")] = "reviewer",
    review: Annotated[
        str | None,
        typer.Option(
            help="Review slug to grant the role on; omit with --role admin for a superuser."
        ),
    ] = None,
) -> None:
    """Create a user (or reset their password) and grant a role on a review."""
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise CliError("give --password or --password-stdin")
    if review is None and role != "admin":
        raise CliError("--review is required for a reviewer")
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        require_migrated(engine)
    except NotMigratedError as exc:
        raise CliError(str(exc)) from exc
    with make_sessionmaker(engine)() as session, session.begin():
        target = None
        if review is not None:
            target = session.scalar(select(Review).where(Review.slug == review))
            if target is None:
                raise CliError(
                    f"--review: no review {review!r} in the database "
                    f"(run `living-review init --review {review}` first)"
                )
        try:
            user = add_user(
                session=session, email=email, name=name, password=password, role=role, review=target
            )
        except InvalidAccountInput as exc:
            raise CliError(f"--{exc.field}: {exc}") from exc
        typer.echo(
            f"user {user.email} (id {user.id}): {role}"
            + (f" on {review}" if review else " of every review")
        )


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``user add`` to the CLI."""
    app.command("serve")(serve)
    app.add_typer(user_app, name="user")
