"""The digest outbox on PostgreSQL and delivery to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select
from wk_parts import ROOT, SmtpServer
from wk_seed import RECIPIENTS, add_review, add_snapshot, add_studies

from db.models import OutboxEmail
from services.digest import SmtpConfig, queue_digest, send_pending

pytestmark = [pytest.mark.integration, pytest.mark.postgres]
CHANGED = {"reasons": ["k changed from 2 to 3", "estimate moved by 4.0 percentage points"]}


def make_update(sessions, changes=CHANGED):  # type: ignore[no-untyped-def]
    """An old snapshot, then a new one with a third study and its digest, in one transaction."""
    with sessions.begin() as session:
        review = add_review(session)
        a, b, c = add_studies(session, review, ["Autio 2006", "Benson 2010", "Chiu 2025"])
        add_snapshot(session, review, [a, b], 0.62)
        new = add_snapshot(session, review, [a, b, c], 0.66, changes)
        rows = queue_digest(
            session, review, new, changes, base_url="http://lr.test", mail_domain="example.org"
        )
        return review.id, new.id, [r.id for r in rows]


def smtp(server: SmtpServer) -> SmtpConfig:
    return SmtpConfig(
        host="127.0.0.1", port=server.port, mail_from="lr <digest@example.org>", timeout=5
    )


def parse(raw: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[return-value]


def test_digest_rows_written_with_snapshot_and_sent_once(wk_sessions, smtp_server) -> None:
    review_id, snapshot_id, row_ids = make_update(wk_sessions)
    assert len(row_ids) == 2
    with wk_sessions.begin() as session:  # queueing again (a redelivered task) adds nothing
        from db.models import EstimateSnapshot, Review

        again = queue_digest(
            session,
            session.get(Review, review_id),
            session.get(EstimateSnapshot, snapshot_id),
            CHANGED,
            mail_domain="example.org",
        )
        assert sorted(r.id for r in again) == sorted(row_ids)
    smtp_server.start()
    report = send_pending(wk_sessions, smtp(smtp_server))
    assert (report.sent, report.failed) == (2, 0)
    assert send_pending(wk_sessions, smtp(smtp_server)).sent == 0
    assert sorted(r[0] for r in smtp_server.inbox.rcpts) == RECIPIENTS
    message = parse(smtp_server.inbox.messages[0])
    assert message["Message-ID"].startswith(f"<digest.ldh_resorption.{snapshot_id}.")
    assert " ".join(message["Subject"].split()).endswith("62.0% (k=2) → 66.0% (k=3)")
    text = message.get_body(("plain",)).get_content()
    assert "Pooled estimate" in text and "62.0%" in text and "66.0%" in text
    assert "  - Chiu 2025" in text and "k changed from 2 to 3" in text
    assert "Records waiting for screening: 0" in text
    assert "/queue" not in text and "Screen them" not in text  # no link to an empty queue
    html = message.get_body(("html",)).get_content()
    image = next(p for p in message.walk() if p.get_content_type() == "image/png")
    assert f'src="cid:{image["Content-ID"].strip("<>")}"' in html
    assert image.get_content()[:8] == b"\x89PNG\r\n\x1a\n"
    with wk_sessions() as session:
        statuses = session.scalars(select(OutboxEmail.status)).all()
        assert statuses == ["sent", "sent"]


def test_no_change_no_email_and_rollback_leaves_nothing(wk_sessions) -> None:
    make_update(wk_sessions, changes={"reasons": []})
    with wk_sessions() as session:
        assert session.scalar(select(func.count(OutboxEmail.id))) == 0
    with pytest.raises(RuntimeError), wk_sessions.begin() as session:
        review = add_review(session, slug="other")
        (study,) = add_studies(session, review, ["Only 2020"])
        snap = add_snapshot(session, review, [study], 0.5)
        assert len(queue_digest(session, review, snap, CHANGED)) == 2
        raise RuntimeError("the snapshot's transaction fails")
    with wk_sessions() as session:
        assert session.scalar(select(func.count(OutboxEmail.id))) == 0


def test_smtp_down_stays_pending_then_delivered_exactly_once(wk_sessions, smtp_server) -> None:
    make_update(wk_sessions)
    report = send_pending(wk_sessions, smtp(smtp_server))  # nothing listens on the port yet
    assert (report.sent, report.failed) == (0, 1) and "ConnectionRefused" in (report.error or "")
    with wk_sessions() as session:
        rows = session.scalars(select(OutboxEmail).order_by(OutboxEmail.id)).all()
        assert [r.status for r in rows] == ["pending", "pending"]
        assert rows[0].attempts == 1 and "ConnectionRefused" in (rows[0].last_error or "")
    smtp_server.start()
    assert send_pending(wk_sessions, smtp(smtp_server)).sent == 2
    assert send_pending(wk_sessions, smtp(smtp_server)).sent == 0
    assert len(smtp_server.inbox.messages) == 2
    assert len({parse(m)["Message-ID"] for m in smtp_server.inbox.messages}) == 2


def test_crash_after_smtp_accept_resends_the_same_message(
    wk_sessions, wk_pg_url, smtp_server
) -> None:
    make_update(wk_sessions)
    env = dict(
        os.environ,
        DATABASE_URL=wk_pg_url,
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(smtp_server.port),
        MAIL_FROM="lr <digest@example.org>",
    )
    sender = subprocess.Popen(
        [sys.executable, "-c", "from services.cli import main; main()", "digest", "--send"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    # The server accepts the first message, then the sender dies before it can mark it sent.
    smtp_server.inbox.on_data = lambda: os.kill(sender.pid, signal.SIGKILL)
    smtp_server.start()
    sender.wait(60)
    assert sender.returncode == -signal.SIGKILL
    first = smtp_server.inbox.messages[0]
    with wk_sessions() as session:  # the dead sender's claim stays until it is stale
        statuses = session.scalars(select(OutboxEmail.status).order_by(OutboxEmail.id)).all()
        assert statuses == ["sending", "pending"]
    smtp_server.inbox.on_data = None
    assert send_pending(wk_sessions, smtp(smtp_server)).sent == 1  # a fresh claim is left alone
    assert send_pending(wk_sessions, smtp(smtp_server), stale_after=0).sent == 1  # a stale one not
    with wk_sessions() as session:
        assert session.scalars(select(OutboxEmail.status)).all() == ["sent", "sent"]
    received = smtp_server.inbox.messages
    assert len(received) == 3
    ids = [parse(m)["Message-ID"] for m in received]
    assert ids[0] == ids[2] and ids[1] != ids[0]
    assert received[2] == first  # byte for byte the same digest, recognisable by its Message-ID


def test_digest_preview_prints_the_next_digest_without_sending(wk_sessions, wk_pg_url) -> None:
    make_update(wk_sessions)
    env = dict(os.environ, DATABASE_URL=wk_pg_url)
    shown = subprocess.run(
        [sys.executable, "-m", "services.cli", "digest", "--preview"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0, shown.stderr
    assert (
        "Subject: [living-review] Spontaneous resorption of LDH: 62.0% (k=2) → 66.0% (k=3)"
        in shown.stdout
    )
    assert "  - Chiu 2025" in shown.stdout
    with wk_sessions() as session:
        assert session.scalars(select(OutboxEmail.status)).all() == ["pending", "pending"]
    neither = subprocess.run(
        [sys.executable, "-m", "services.cli", "digest"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert neither.returncode == 1 and "--preview" in neither.stderr
