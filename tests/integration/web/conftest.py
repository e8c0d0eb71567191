"""Fixtures of the web tests: the seeded review, a signed-in API client per user (in-process), and
the app under a real uvicorn server (``live_server``). Databases come from tests/conftest.py
(db_url, pg_url)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
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
    app.state.recompute.close()  # the TestClients ran no lifespan: no recompute outlives the test
    app.state.engine.dispose()


@dataclass
class LiveServer:
    """The app under uvicorn on a free local port (a real HTTP server in a thread)."""

    url: str
    app: Any

    def client(self, user: str) -> httpx.Client:
        """An HTTP client signed in as ``user`` (CSRF header set)."""
        client = httpx.Client(base_url=self.url, timeout=60)
        token = client.get("/api/session").json()["csrf_token"]
        response = client.post(
            "/api/session",
            json={"email": f"{user}@example.org", "password": PASSWORD},
            headers={"X-CSRF-Token": token},
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return client


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def live_server(app_settings: Settings) -> Iterator[Callable[..., LiveServer]]:
    """``live_server(**settings)`` starts the app (``app_settings`` with those changes) under
    uvicorn; ``hook(app)`` may add test routes before it starts."""
    servers: list[tuple[Any, threading.Thread, Any]] = []

    def start(hook: Callable[[Any], None] | None = None, **changes: Any) -> LiveServer:
        import uvicorn

        app = create_app(app_settings.model_copy(update=changes))
        if hook is not None:
            hook(app)
        port = free_port()
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread, app))
        deadline = time.monotonic() + 30
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "uvicorn did not start within 30 s"
        return LiveServer(f"http://127.0.0.1:{port}", app)

    yield start
    for server, thread, app in servers:
        server.should_exit = True
        thread.join(15)
        app.state.engine.dispose()
