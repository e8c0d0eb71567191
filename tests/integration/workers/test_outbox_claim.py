"""Outbox claims on SQLite and PostgreSQL against a real SMTP server (aiosmtpd): no lock is held
while the server receives, two senders at once send each digest once, a stale claim is retried."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import sqlite3
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session
from wk_parts import Inbox, SmtpServer, free_port
from wk_seed import add_review, add_snapshot, add_studies

from db.models import OutboxEmail
from db.session import make_engine
from services.digest import SendReport, SmtpConfig, queue_digest, send_pending
from services.digest.mailer import STALE_CLAIM, claim_next

pytestmark = [pytest.mark.integration]
CHANGED = {"reasons": ["k changed from 2 to 3"]}
MAIL_FROM = "lr <digest@example.org>"


@dataclass
class HeldInbox(Inbox):
    """An inbox whose DATA step waits until ``release`` is set, counting the messages waiting
    (the server's event loop stays free, so several senders can be inside DATA at once)."""

    release: threading.Event = field(default_factory=threading.Event)
    waiting: int = 0
    changed: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.changed:
            self.waiting += 1
            self.changed.notify_all()
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 60)
        return await super().handle_DATA(server, session, envelope)

    def wait_for(self, count: int) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: self.waiting >= count, timeout=60)


@pytest.fixture
def held_server() -> Iterator[SmtpServer]:
    server = SmtpServer(free_port(), HeldInbox())
    server.start()
    yield server
    assert isinstance(server.inbox, HeldInbox)
    server.inbox.release.set()
    server.stop()


def queue(sessions: Callable[[], Session], recipients: list[str]) -> list[int]:
    """A new snapshot of the LDH review and its digest rows, one per recipient."""
    with sessions() as session, session.begin():
        review = add_review(session, recipients=recipients)
        a, b, c = add_studies(session, review, ["Dalen 2008", "Eriks 2012", "Fuji 2024"])
        add_snapshot(session, review, [a, b], 0.58)
        new = add_snapshot(session, review, [a, b, c], 0.63, CHANGED)
        rows = queue_digest(session, review, new, CHANGED, mail_domain="example.org")
        return sorted(r.id for r in rows)


def config(server: SmtpServer) -> SmtpConfig:
    return SmtpConfig(host="127.0.0.1", port=server.port, mail_from=MAIL_FROM, timeout=5)


def rows(sessions: Callable[[], Session]) -> list[OutboxEmail]:
    with sessions() as session:
        return list(session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)))


def in_thread(target: Callable[[], SendReport], reports: list[SendReport]) -> threading.Thread:
    thread = threading.Thread(target=lambda: reports.append(target()), daemon=True)
    thread.start()
    return thread


def lock_probe(db_url: str, row_id: int) -> str:
    """From another connection, lock the row (PostgreSQL: ``FOR UPDATE NOWAIT``) or take the
    database's write lock (SQLite: ``BEGIN IMMEDIATE`` without waiting); the row's status. Raises
    when the sender holds a lock."""
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0)
        try:
            conn.execute("BEGIN IMMEDIATE")
            found = conn.execute("SELECT status FROM outbox_emails WHERE id = ?", (row_id,))
            return str(found.fetchone()[0])
        finally:
            conn.rollback()
            conn.close()
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn, conn.begin():
            query = text("SELECT status FROM outbox_emails WHERE id = :id FOR UPDATE NOWAIT")
            return str(conn.execute(query, {"id": row_id}).scalar_one())
    finally:
        engine.dispose()


def test_no_lock_is_held_while_the_smtp_server_receives(
    session_factory: Any, db_url: str, held_server: SmtpServer
) -> None:
    (row_id,) = queue(session_factory, ["ana@example.org"])
    inbox = held_server.inbox
    assert isinstance(inbox, HeldInbox)
    reports: list[SendReport] = []
    sender = in_thread(lambda: send_pending(session_factory, config(held_server)), reports)
    assert inbox.wait_for(1)  # the sender is inside SMTP DATA, blocked
    # the claim is committed and the row is free: another connection locks it at once
    assert lock_probe(db_url, row_id) == "sending"
    inbox.release.set()
    sender.join(60)
    assert [(r.sent, r.failed) for r in reports] == [(1, 0)]
    (row,) = rows(session_factory)
    assert (row.status, row.attempts, row.claim_token, row.claimed_at) == ("sent", 1, None, None)
    assert len(inbox.messages) == 1


def test_two_senders_at_once_send_each_digest_exactly_once(
    session_factory: Any, held_server: SmtpServer
) -> None:
    recipients = [f"reader{n}@example.org" for n in range(6)]
    row_ids = queue(session_factory, recipients)
    inbox = held_server.inbox
    assert isinstance(inbox, HeldInbox)
    reports: list[SendReport] = []
    senders = [
        in_thread(lambda: send_pending(session_factory, config(held_server)), reports)
        for _ in range(2)
    ]
    assert inbox.wait_for(2)  # both senders are talking to the server, each with its own row
    inbox.release.set()
    for sender in senders:
        sender.join(60)
    assert len(reports) == 2 and sum(r.sent for r in reports) == 6
    assert all(r.sent >= 1 and r.failed == 0 for r in reports)
    stored = rows(session_factory)
    assert [r.id for r in stored] == row_ids
    assert {(r.status, r.attempts) for r in stored} == {("sent", 1)}
    received = [
        email.message_from_bytes(raw, policy=email.policy.default)["Message-ID"]
        for raw in inbox.messages
    ]
    assert sorted(received) == sorted(r.message_id for r in stored)
    assert sorted(rcpt for (rcpt,) in inbox.rcpts) == recipients


def test_a_stale_claim_is_claimed_again_a_fresh_one_is_left_alone(
    session_factory: Any, smtp_server: SmtpServer
) -> None:
    first, second = queue(session_factory, ["ana@example.org", "ben@example.org"])
    # a sender claims the first row, then dies before it talks to the server
    dead = claim_next(session_factory, MAIL_FROM, 0, None, STALE_CLAIM)
    assert dead is not None and dead.row_id == first
    smtp_server.start()
    report = send_pending(session_factory, config(smtp_server))
    assert (report.sent, report.failed) == (1, 0)  # the second row only: the claim is fresh
    held, done = rows(session_factory)
    assert (held.status, held.claim_token, held.attempts) == ("sending", dead.token, 1)
    assert (done.id, done.status) == (second, "sent")
    assert held.claimed_at is not None
    older = held.claimed_at - dt.timedelta(seconds=STALE_CLAIM + 60)
    with session_factory() as session, session.begin():  # the claim grows older than the timeout
        session.execute(update(OutboxEmail).where(OutboxEmail.id == first).values(claimed_at=older))
    report = send_pending(session_factory, config(smtp_server))
    assert (report.sent, report.failed) == (1, 0)
    again, _ = rows(session_factory)
    assert (again.status, again.attempts, again.claim_token) == ("sent", 2, None)
    assert sorted(rcpt for (rcpt,) in smtp_server.inbox.rcpts) == [
        "ana@example.org",
        "ben@example.org",
    ]
    assert send_pending(session_factory, config(smtp_server)).sent == 0
