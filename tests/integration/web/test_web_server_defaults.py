"""`living-review serve` started as a new user starts it (no SECRET_KEY, no ENVIRONMENT, no proxy
settings), attacked over real HTTP: forged cookies, forwarded addresses, concurrent guesses,
oversized and unauthenticated bodies. SQLite and PostgreSQL (``db_url``)."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from itsdangerous import TimestampSigner
from web_seed import PASSWORD, ROOT, Seed

from services.settings import PLACEHOLDER_SECRETS, SECRET_FILE

pytestmark = pytest.mark.integration


@dataclass
class Server:
    url: str
    data_dir: Path
    port: int


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"SECRET_KEY", "ENVIRONMENT", "FORWARDED_ALLOW_IPS", "DATA_DIR", "DATABASE_URL"}
    }
    return env | extra


@pytest.fixture
def server(seed: Seed, db_url: str, tmp_path: Path) -> Iterator[Server]:
    port = _free_port()
    data_dir = tmp_path / "data"
    env = _clean_env(DATABASE_URL=db_url, DATA_DIR=str(data_dir))
    log = (tmp_path / "server.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "serve", "--port", str(port)],
        cwd=tmp_path,  # no .env of the developer's is read
        env=env | {"PYTHONPATH": str(ROOT)},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            httpx.get(f"{url}/api/session", timeout=2)
            break
        except httpx.TransportError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                pytest.fail((tmp_path / "server.log").read_text(), pytrace=False)
            time.sleep(0.1)
    yield Server(url, data_dir, port)
    process.terminate()
    process.wait(timeout=20)
    log.close()


def _forged_cookie(secret: str, uid: int) -> str:
    """A session cookie as Starlette's SessionMiddleware writes it, signed with ``secret``."""
    payload = {"uid": uid, "sv": 0, "iat": int(time.time()), "csrf": "x" * 43}
    data = base64.b64encode(json.dumps(payload).encode())
    return TimestampSigner(secret).sign(data).decode()


def _env_example_secret() -> str:
    """The SECRET_KEY line of .env.example (now empty, so compose refuses to start)."""
    for line in (ROOT / ".env.example").read_text(encoding="utf-8").splitlines():
        if line.startswith("SECRET_KEY="):
            return line.split("=", 1)[1]
    return ""


def test_forged_cookies_with_placeholder_secrets_are_refused(server, seed):
    secrets = sorted(PLACEHOLDER_SECRETS | {_env_example_secret()} - {""})
    assert "dev-insecure-change-me" in secrets and len(secrets) >= 9
    for secret in secrets:
        cookie = _forged_cookie(secret, seed.users["admin"])
        r = httpx.get(f"{server.url}/api/reviews", cookies={"lr_session": cookie})
        assert r.status_code == 401, secret
    secret_file = server.data_dir / SECRET_FILE
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    generated = secret_file.read_text().strip()
    assert len(generated) >= 48
    # the control: a cookie signed with the generated secret is what the server accepts
    accepted = httpx.get(
        f"{server.url}/api/reviews",
        cookies={"lr_session": _forged_cookie(generated, seed.users["admin"])},
    )
    assert accepted.status_code == 200 and accepted.json()[0]["slug"] == seed.slug


@contextlib.contextmanager
def _client(server: Server) -> Iterator[httpx.Client]:
    """A client holding an anonymous session and its CSRF token."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        client.headers["X-CSRF-Token"] = client.get("/api/session").json()["csrf_token"]
        yield client


def test_forwarded_for_is_not_believed_by_default(server):
    with _client(server) as client:
        codes = [
            client.post(
                "/api/session",
                json={"email": "bob@example.org", "password": "wrong password"},
                headers={"X-Forwarded-For": f"203.0.113.{i}"},
            ).status_code
            for i in range(7)
        ]
    assert codes == [401] * 5 + [429] * 2


def test_concurrent_wrong_passwords_check_at_most_five(server):
    with _client(server) as client:

        def attempt(_: int) -> int:
            body = {"email": "alice@example.org", "password": "not the password"}
            return client.post("/api/session", json=body).status_code

        with ThreadPoolExecutor(max_workers=30) as pool:
            codes = list(pool.map(attempt, range(30)))
        assert codes.count(401) <= 5 and codes.count(401) + codes.count(429) == 30
        later = [attempt(i) for i in range(6)]
        # the burst and the attempts after it: five passwords checked in all, then locked out
        assert codes.count(401) + later.count(401) == 5 and later[-1] == 429
        right = client.post(
            "/api/session", json={"email": "alice@example.org", "password": PASSWORD}
        )
        assert right.status_code == 429


def _raw_request(server: Server, head: str, body: bytes = b"") -> bytes:
    """Send ``head`` (and part of a body) and return what the server answers within 10 s,
    without ever sending the rest of the declared body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as conn:
        conn.sendall(head.replace("\n", "\r\n").encode() + b"\r\n" + body)
        return conn.recv(65536)


def test_huge_declared_body_is_refused_before_reading_it(server, seed):
    answer = _raw_request(
        server,
        f"POST /api/reviews/{seed.slug}/decisions HTTP/1.1\nHost: x\n"
        "Content-Type: application/json\nContent-Length: 314572800\n",
        b'{"review_record_id": 1,',
    )
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_anonymous_streamed_body_gets_403_before_it_is_read(server, seed):
    answer = _raw_request(
        server,
        f"POST /api/reviews/{seed.slug}/decisions HTTP/1.1\nHost: x\n"
        "Content-Type: application/json\nTransfer-Encoding: chunked\n",
        b"10\r\n" + b"[" * 16 + b"\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 403"), answer[:200]


@pytest.mark.parametrize(
    "secret",
    ["dev-insecure-change-me", "change-me-to-a-long-random-string", "CHANGE-ME", "a", "x" * 31],
)
def test_serve_refuses_placeholder_and_short_secrets(tmp_path, sqlite_url, secret):
    env = _clean_env(
        DATABASE_URL=sqlite_url, DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT), SECRET_KEY=secret
    )
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "--port", str(_free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "SECRET_KEY" in lines[0]


def test_serve_refuses_an_unknown_environment(tmp_path, sqlite_url):
    env = _clean_env(
        DATABASE_URL=sqlite_url, DATA_DIR=str(tmp_path), PYTHONPATH=str(ROOT), ENVIRONMENT="prod"
    )
    result = subprocess.run(
        [sys.executable, "-m", "services.cli", "serve", "--port", str(_free_port())],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.startswith("error: bad setting: ENVIRONMENT: ")
    assert "Traceback" not in result.stderr
