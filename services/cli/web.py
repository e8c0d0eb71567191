"""CLI: ``living-review serve`` (the reviewer web app under uvicorn) and ``living-review user
add|list|disable|remove-member`` (accounts; disabling or a new password ends their sessions)."""

from __future__ import annotations

import getpass
import sys
from typing import Annotated

import typer
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Review
from services.accounts import (
    InvalidAccountInput,
    UnknownAccount,
    add_user,
    disable_user,
    list_users,
    remove_member,
)
from services.cli.context import context
from services.cli.errors import CliError

user_app = typer.Typer(help="Manage reviewer accounts.", no_args_is_help=True)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="uvicorn worker processes.")] = 1,
) -> None:
    """Run the reviewer web app (needs a migrated database: `living-review init`)."""
    import uvicorn

    from services.web import create_app

    ctx = context()
    settings = ctx.settings
    try:
        settings.session_secret()
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc
    ctx.sessions()  # refuses a database that is not migrated
    # X-Forwarded-For decides the address sign-in attempts are counted for: believe it only
    # from the proxies named in FORWARDED_ALLOW_IPS (uvicorn would trust 127.0.0.1 by default).
    proxies = settings.forwarded_allow_ips
    trusted, allowed = proxies is not None, proxies or ""
    if workers > 1:
        uvicorn.run(
            "services.web.asgi:app",
            host=host,
            port=port,
            workers=workers,
            proxy_headers=trusted,
            forwarded_allow_ips=allowed,
        )
    else:
        uvicorn.run(
            create_app(settings),
            host=host,
            port=port,
            proxy_headers=trusted,
            forwarded_allow_ips=allowed,
        )


@user_app.command("add")
def user_add(
    email: Annotated[str, typer.Option(help="Sign-in email.")],
    name: Annotated[str, typer.Option(help="Name shown to other reviewers.")] = "",
    password: Annotated[
        str | None, typer.Option(help="Password (prefer --password-stdin).")
    ] = None,
    password_stdin: Annotated[
        bool,
        typer.Option(help="Read the password from stdin (asked twice, not echoed, at a terminal)."),
    ] = False,
    role: Annotated[str, typer.Option(help="admin or reviewer.")] = "reviewer",
    review: Annotated[
        str | None,
        typer.Option(
            help="Review slug to grant the role on; omit with --role admin for a superuser."
        ),
    ] = None,
) -> None:
    """Create a user (or reset their password, ending their sessions) and grant a role."""
    if password_stdin:
        password = _read_password()
    if not password:
        raise CliError("give --password or --password-stdin")
    if review is None and role != "admin":
        raise CliError("--review is required for a reviewer")
    with context().sessions().begin() as session:
        target = None if review is None else _review(session, review)
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


def _read_password() -> str:
    """The password from stdin: prompted twice without echo at a terminal, else one line."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    try:
        first = getpass.getpass("Password: ")
        second = getpass.getpass("Repeat for confirmation: ")
    except EOFError as exc:
        raise CliError("no password typed") from exc
    if first != second:
        raise CliError("the two passwords differ: run the command again")
    return first


def _review(session: Session, slug: str) -> Review:
    target = session.scalar(select(Review).where(Review.slug == slug))
    if target is None:
        raise CliError(
            f"--review: no review {slug!r} in the database "
            f"(run `living-review init --review {slug}` first)"
        )
    return target


@user_app.command("list")
def user_list() -> None:
    """Every account: email, name, active or disabled, superuser, roles per review."""
    with context().sessions().begin() as session:
        for user, roles in list_users(session=session):
            status = "active" if user.is_active else "disabled"
            grants = "superuser" if user.is_superuser else ""
            grants = ", ".join([grants] * bool(grants) + [f"{r} on {s}" for s, r in roles])
            typer.echo(f"{user.email}\t{user.name}\t{status}\t{grants or '-'}")


@user_app.command("disable")
def user_disable(email: Annotated[str, typer.Argument(help="Sign-in email.")]) -> None:
    """Deactivate an account: it can no longer sign in and its sessions end at once."""
    with context().sessions().begin() as session:
        try:
            user = disable_user(session=session, email=email)
        except UnknownAccount as exc:
            raise CliError(str(exc)) from exc
        typer.echo(f"user {user.email} disabled; their sessions have ended")


@user_app.command("remove-member")
def user_remove_member(
    email: Annotated[str, typer.Argument(help="Sign-in email.")],
    review: Annotated[str, typer.Option(help="Review slug to take the role away on.")],
) -> None:
    """Take a user's role on one review away (their past decisions stay)."""
    with context().sessions().begin() as session:
        target = _review(session, review)
        try:
            removed = remove_member(session=session, email=email, review=target)
        except UnknownAccount as exc:
            raise CliError(str(exc)) from exc
        if not removed:
            raise CliError(f"{email} holds no role on {review}")
        typer.echo(f"{email} no longer has a role on {review}")


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``user add|list|disable|remove-member`` to the CLI."""
    app.command("serve")(serve)
    app.add_typer(user_app, name="user")
