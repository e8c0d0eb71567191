"""The command line's contract, run as users run it (``python -m services.cli`` in a subprocess):
usage errors are one ``error:`` line with exit 2, failures one line with exit 1, no traceback;
flags read as flags in help; the account commands; a password typed at a terminal is not echoed."""

from __future__ import annotations

import os
import pty
import select as io_select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select

from db.models import Membership, Review, User
from db.session import make_engine, make_sessionmaker
from services.accounts import verify_password

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[3]
SECRET_TYPED = "typed at the terminal 42"


@pytest.fixture
def bare_env(tmp_path):
    """No database: usage errors are found before one is opened."""
    clean = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "ENVIRONMENT"}}
    return clean | {
        "DATABASE_URL": f"sqlite:///{tmp_path / 'none.sqlite3'}",
        "DATA_DIR": str(tmp_path),
        "PYTHONPATH": str(ROOT),
    }


@pytest.fixture
def env(db_url, bare_env):
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session, session.begin():
        session.add(Review(slug="ldh_resorption", title="T", protocol={}, protocol_hash="x"))
    engine.dispose()
    return bare_env | {"DATABASE_URL": db_url}


def run(env, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "services.cli", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env["DATA_DIR"],
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["serve", "--port", "abc"], "'--port'"),
        (["serve", "--port", "0"], "'--port'"),
        (["serve", "--no-such-option"], "--no-such-option"),
        (["no-such-command"], "no-such-command"),
        (["user", "add"], "--email"),
        (["user", "disable"], "'email'"),
        (["user", "remove-member", "a@b.org"], "--review"),
        (["extract", "--pmid", "abc"], "'--pmid'"),
        (["update", "--json", "yes"], "yes"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(bare_env, args, needle):
    result = run(bare_env, *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0] and "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["user", "disable", "nobody@example.org"], "no user with email"),
        (["user", "remove-member", "nobody@example.org", "--review", "ldh_resorption"], "no user"),
        (["user", "remove-member", "a@b.org", "--review", "nope"], "no review 'nope'"),
        (
            ["user", "add", "--email", "a@b.org", "--name", "N" * 300, "--password", "long pass 9"],
            "--name: name must have at most 200",
        ),
        (["user", "add", "--email", "a@b.org", "--password", "aaaaaaaaaa"], "--password"),
    ],
)
def test_failures_are_one_line_and_exit_1(env, args, needle):
    result = run(env, *args, "--role", "admin") if args[1] == "add" else run(env, *args)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], lines


def test_help_shows_flags_without_a_value(bare_env):
    for args in (["update", "--help"], ["user", "add", "--help"], ["status", "--help"]):
        result = run(bare_env, *args)
        assert result.returncode == 0 and "--help" in result.stdout
        assert "<bool>" not in result.stdout, result.stdout


def test_user_list_disable_and_remove_member(env):
    add = run(
        env,
        "user",
        "add",
        "--email",
        "Rev@Example.org",
        "--name",
        "Rev",
        "--password-stdin",
        "--review",
        "ldh_resorption",
        stdin="a sound passphrase\n",
    )
    assert add.returncode == 0, add.stderr
    listed = run(env, "user", "list")
    assert listed.stdout.splitlines() == [
        "rev@example.org\tRev\tactive\treviewer on ldh_resorption"
    ]
    removed = run(env, "user", "remove-member", "rev@example.org", "--review", "ldh_resorption")
    assert removed.returncode == 0, removed.stderr
    assert run(env, "user", "disable", "rev@example.org").returncode == 0
    listed = run(env, "user", "list")
    assert listed.stdout.splitlines() == ["rev@example.org\tRev\tdisabled\t-"]
    engine = make_engine(env["DATABASE_URL"])
    with make_sessionmaker(engine)() as session:
        user = session.scalars(select(User)).one()
        assert not user.is_active and user.session_version == 1
        assert session.scalars(select(Membership)).all() == []
    engine.dispose()


def _read_until(fd: int, needle: bytes, seen: bytearray, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while needle not in seen:
        ready, _, _ = io_select.select([fd], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            raise AssertionError(f"no {needle!r} in {bytes(seen)!r}")
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        seen.extend(chunk)


def test_password_stdin_at_a_terminal_is_asked_twice_without_echo(env):
    args = [
        sys.executable,
        "-m",
        "services.cli",
        "user",
        "add",
        "--email",
        "tty@example.org",
        "--password-stdin",
        "--role",
        "admin",
    ]
    pid, fd = pty.fork()
    if pid == 0:  # the child: its terminal is the pty
        os.chdir(env["DATA_DIR"])
        os.execve(sys.executable, args, env)
    seen = bytearray()
    try:
        _read_until(fd, b"Password:", seen)
        os.write(fd, SECRET_TYPED.encode() + b"\n")
        _read_until(fd, b"confirmation:", seen)
        os.write(fd, SECRET_TYPED.encode() + b"\n")
        _read_until(fd, b"of every review", seen)
    except BaseException:
        os.kill(pid, signal.SIGKILL)  # it would wait for input for ever
        raise
    finally:
        _, status = os.waitpid(pid, 0)
        os.close(fd)
    assert os.waitstatus_to_exitcode(status) == 0, bytes(seen)
    assert SECRET_TYPED.encode() not in seen
    engine = make_engine(env["DATABASE_URL"])
    with make_sessionmaker(engine)() as session:
        user = session.scalars(select(User)).one()
        assert verify_password(user.password_hash, SECRET_TYPED)
    engine.dispose()
