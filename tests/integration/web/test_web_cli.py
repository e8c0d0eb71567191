"""`living-review user add` against a migrated SQLite database (module registered on a bare app)."""

from __future__ import annotations

import pytest
import typer
from sqlalchemy import select
from typer.testing import CliRunner

from db.models import Membership, Review, User
from db.session import make_engine, make_sessionmaker
from services.cli import web
from services.cli.errors import CliError
from services.settings import get_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def cli(sqlite_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", sqlite_url)
    get_settings.cache_clear()
    app = typer.Typer()
    web.register(app)
    engine = make_engine(sqlite_url)
    with make_sessionmaker(engine)() as session, session.begin():
        session.add(Review(slug="ldh_resorption", title="T", protocol={}, protocol_hash="x"))
    yield app, make_sessionmaker(engine)
    engine.dispose()
    get_settings.cache_clear()


def test_user_add_with_password_on_stdin(cli):
    app, factory = cli
    result = CliRunner().invoke(
        app,
        [
            "user",
            "add",
            "--email",
            "Rev@Example.org",
            "--name",
            "Rev",
            "--password-stdin",
            "--role",
            "reviewer",
            "--review",
            "ldh_resorption",
        ],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    with factory() as session:
        user = session.scalars(select(User)).one()
        assert user.email == "rev@example.org" and user.password_hash.startswith("$argon2id$")
        assert session.scalars(select(Membership.role)).one() == "reviewer"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--email", "x@y.org", "--password", "a long enough password", "--review", "nope"],
            "--review: no review 'nope'",
        ),
        (
            [
                "--email",
                "bad",
                "--password",
                "a long enough password",
                "--review",
                "ldh_resorption",
            ],
            "--email: email 'bad' is not an email address",
        ),
        (
            ["--email", "x@y.org", "--password", "short", "--review", "ldh_resorption"],
            "--password: password must have at least 10 characters",
        ),
        (
            ["--email", "x@y.org", "--review", "ldh_resorption"],
            "give --password or --password-stdin",
        ),
    ],
)
def test_user_add_refuses_bad_input(cli, args, message):
    app, factory = cli
    result = CliRunner().invoke(app, ["user", "add", *args])
    assert isinstance(result.exception, CliError)
    assert message in str(result.exception)
    with factory() as session:
        assert session.scalars(select(User)).all() == []
