"""Helpers of the workers' tests: SMTP inbox, worker subprocesses, polling, ports."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from aiosmtpd.controller import Controller

PG_ADMIN = os.environ.get("LR_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "tests" / "artifacts" / "workers"
DEMO = ROOT / "reviews" / "ldh_resorption" / "demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns a truthy value; fail naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


@dataclass
class Inbox:
    """What the SMTP server received: raw messages and envelope recipients."""

    messages: list[bytes] = field(default_factory=list)
    rcpts: list[list[str]] = field(default_factory=list)
    on_data: Callable[[], None] | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append(bytes(envelope.original_content or envelope.content))
        self.rcpts.append(list(envelope.rcpt_tos))
        if self.on_data is not None:
            self.on_data()
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    port: int
    inbox: Inbox
    controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


def worker_env(pg_url: str, redis_url: str, prefix: str, smtp_port: int,
               **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "DATABASE_URL": pg_url, "REDIS_URL": redis_url, "REDIS_KEY_PREFIX": prefix,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port), "SMTP_TIMEOUT": "5", "BASE_URL": "http://lr.test",
        "DATA_DIR": str(ARTIFACTS / "data"), "PYTHONUNBUFFERED": "1",
    })
    env.update(extra)
    return env


@dataclass
class WorkerProcess:
    """A ``celery worker`` subprocess in its own process group (so SIGKILL takes its children)."""

    env: dict[str, str]
    name: str
    concurrency: int = 1
    proc: subprocess.Popen[bytes] | None = None
    log: Path | None = None

    def start(self) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.log = ARTIFACTS / f"{self.name}.log"
        handle = open(self.log, "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "worker", "-l", "info",
             "-c", str(self.concurrency), "-Q", "living-review", "-n", f"{self.name}@%h",
             "--without-gossip", "--without-mingle", "--without-heartbeat"],
            cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log else ""



def start_redis(port: int, folder: Path, procs: list[subprocess.Popen[bytes]]) -> None:
    """Start a redis-server of our own on ``port`` (append-only file in ``folder``, fsync'd at
    every write so a SIGKILL loses nothing) and wait until it answers."""
    proc = subprocess.Popen([str(shutil.which("redis-server")), "--port", str(port), "--bind",
                             "127.0.0.1", "--dir", str(folder), "--appendonly", "yes",
                             "--appendfsync", "always", "--save", ""],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(proc)
    client = redis.Redis(port=port)
    wait_for(lambda: _pings(client), 20, f"redis-server on {port}")


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False
