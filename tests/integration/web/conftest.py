"""Fixtures of the web tests: the seeded review and a signed-in API client per user.
Databases come from tests/conftest.py (db_url, pg_url)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker
from web_seed import PASSWORD, Seed, seed_database

from db.session import make_engine, make_sessionmaker
from services.settings import Settings
from services.web import create_app


@pytest.fixture
def factory(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def seed(factory: sessionmaker[Session]) -> Seed:
    return seed_database(factory)


@pytest.fixture
def app_settings(db_url: str, tmp_path: Path) -> Settings:
    # No quiet time: the recompute after a confirmation starts at once, still off the request
    # (tests wait for it with ``make_client.app.state.recompute.wait_idle``).
    return Settings(
        database_url=db_url,
        secret_key="test-secret-" + "x" * 20,
        environment="test",
        base_url="http://testserver",
        queue_refit_seconds=None,  # these tests assert the seeded order; test_web_active_learning refits
        data_dir=tmp_path / "var",
        recompute_debounce_seconds=0,
    )


@pytest.fixture
def make_client(app_settings: Settings) -> Iterator[Callable[..., TestClient]]:
    """Clients of one app; ``make_client("alice")`` is signed in (CSRF header preset)."""
    app = create_app(app_settings)
    clients: list[TestClient] = []

    def make(user: str | None = None) -> TestClient:
        client = TestClient(app, follow_redirects=False)
        clients.append(client)
        token = client.get("/api/session").json()["csrf_token"]
        client.headers["X-CSRF-Token"] = token
        if user is not None:
            response = client.post(
                "/api/session", json={"email": f"{user}@example.org", "password": PASSWORD}
            )
            assert response.status_code == 200, response.text
            client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client

    make.app = app  # type: ignore[attr-defined]
    yield make
    for client in clients:
        client.close()
    app.state.engine.dispose()
