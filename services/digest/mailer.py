"""Deliver pending outbox rows over SMTP and mark them sent, holding no lock while SMTP talks.

Each row goes through three steps: it is *claimed* in a short transaction (status ``sending``,
a random ``claim_token``, ``claimed_at``; a compare-and-set UPDATE, so two senders never claim
the same row), handed to the SMTP server outside any transaction, then marked ``sent`` in
another short transaction that checks the token. A sender that dies while holding a claim loses
nothing: once the claim is older than ``stale_after`` the row is claimed again. The email is
built only from the row (its stored Message-ID, subject, bodies, inline image and creation time
as the Date), so if the process dies after the server accepted the message but before marking
it sent, the next claim sends the *same* email again — recognisable as a duplicate by its
Message-ID — never a different digest. A failure to reach or talk to the server
(:class:`MailDeliveryError`) releases the row as pending with ``attempts`` and ``last_error``
updated, and ends the run: the next run tries again. Rows are never dropped.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import logging
import secrets
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from db.models import OutboxEmail, utcnow
from services.digest.errors import DigestInputError, MailDeliveryError

logger = logging.getLogger(__name__)

STALE_CLAIM = 600.0
"""Seconds after which a row still ``sending`` is taken to belong to a dead sender."""


@dataclass(frozen=True)
class SmtpConfig:
    """How to reach the SMTP server; ``timeout`` (seconds) bounds every socket operation."""

    host: str
    port: int
    mail_from: str
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    use_ssl: bool = False
    timeout: float = 30.0


@dataclass
class SendReport:
    """What one sender run did."""

    sent: int = 0
    failed: int = 0
    error: str | None = None


def build_message(row: OutboxEmail, mail_from: str) -> EmailMessage:
    """The email of an outbox row: text + HTML alternative with the forest plot inline."""
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = row.recipient
    message["Subject"] = row.subject
    message["Message-ID"] = row.message_id
    message["Date"] = format_datetime(row.created_at or utcnow())
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(row.body_text)
    message.add_alternative(row.body_html, subtype="html")
    html_part = message.get_body(preferencelist=("html",))
    if html_part is None:
        raise DigestInputError(f"outbox {row.id}: the HTML body is missing")
    for item in row.attachments or []:
        maintype, _, subtype = item["mime"].partition("/")
        html_part.add_related(
            base64.b64decode(item["data_b64"]),
            maintype=maintype,
            subtype=subtype,
            cid=f"<{item['cid']}>",
            filename=item.get("filename"),
        )
    _stable_boundaries(message, row.message_id)
    return message


def _stable_boundaries(message: EmailMessage, seed: str) -> None:
    """MIME boundaries derived from the Message-ID: a resend is byte-for-byte the same email."""
    digest = hashlib.sha256(seed.encode()).hexdigest()[:24]
    for number, part in enumerate(message.walk()):
        if part.is_multipart():
            part.set_boundary(f"=_lr_{digest}_{number}")


def deliver(message: EmailMessage, config: SmtpConfig) -> None:
    """Hand one message to the SMTP server; MailDeliveryError on any failure."""
    try:
        if config.use_ssl:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                config.host,
                config.port,
                timeout=config.timeout,
                context=ssl.create_default_context(),
            )
        else:
            client = smtplib.SMTP(config.host, config.port, timeout=config.timeout)
        with client:
            if config.starttls and not config.use_ssl:
                client.starttls(context=ssl.create_default_context())
            if config.user:
                client.login(config.user, config.password or "")
            client.send_message(message)
    except (OSError, smtplib.SMTPException) as exc:
        raise MailDeliveryError(
            f"SMTP {config.host}:{config.port}: {type(exc).__name__}: {exc}"
        ) from exc


def send_pending(
    session_factory: Callable[[], Session],
    config: SmtpConfig,
    *,
    limit: int = 200,
    review_id: int | None = None,
    stale_after: float | None = None,
) -> SendReport:
    """Send pending outbox rows (oldest first, at most ``limit``); stops at the first failure.

    A row claimed by a sender that has not finished within ``stale_after`` seconds (default:
    :data:`STALE_CLAIM`, at least ten SMTP timeouts) is claimed again: its sender died.
    """
    stale = stale_after if stale_after is not None else max(STALE_CLAIM, 10 * config.timeout)
    report = SendReport()
    last_id = 0
    while report.sent + report.failed < limit:
        claim = claim_next(session_factory, config.mail_from, last_id, review_id, stale)
        if claim is None:
            break
        last_id = claim.row_id
        try:
            deliver(claim.message, config)  # outside any transaction: no lock while SMTP talks
        except MailDeliveryError as exc:
            _finish(session_factory, claim, status="pending", last_error=str(exc)[:2000])
            report.failed += 1
            report.error = str(exc)
            logger.warning(
                "outbox %s: delivery failed (attempt %d): %s", claim.row_id, claim.attempts, exc
            )
            break
        if not _finish(session_factory, claim, status="sent", sent_at=utcnow(), last_error=None):
            logger.warning(
                "outbox %s: sent, but its claim had gone stale and was taken by another sender",
                claim.row_id,
            )
        report.sent += 1
        logger.info("outbox %s: sent %s", claim.row_id, claim.message_id)
    return report


@dataclass(frozen=True)
class Claim:
    """One outbox row this sender holds (status ``sending``, its ``claim_token``)."""

    row_id: int
    token: str
    attempts: int
    message_id: str
    message: EmailMessage


def claim_next(
    session_factory: Callable[[], Session],
    mail_from: str,
    after_id: int,
    review_id: int | None,
    stale_after: float,
) -> Claim | None:
    """Claim the next deliverable row after ``after_id`` in a short transaction of its own.

    Deliverable: ``pending``, or ``sending`` under a claim older than ``stale_after`` seconds.
    The claim is a compare-and-set UPDATE, so of two senders reaching one row only one wins;
    the other moves on to the next row (``SKIP LOCKED`` spares it the wait on PostgreSQL).
    """
    while True:
        now = utcnow()
        claimable = or_(
            OutboxEmail.status == "pending",
            and_(
                OutboxEmail.status == "sending",
                OutboxEmail.claimed_at < now - dt.timedelta(seconds=stale_after),
            ),
        )
        with session_factory() as session, session.begin():
            query = (
                select(OutboxEmail)
                .where(claimable, OutboxEmail.id > after_id)
                .order_by(OutboxEmail.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if review_id is not None:
                query = query.where(OutboxEmail.review_id == review_id)
            row = session.scalars(query).first()
            if row is None:
                return None
            message = build_message(row, mail_from)
            token = secrets.token_hex(16)
            taken = session.execute(
                update(OutboxEmail)
                .where(OutboxEmail.id == row.id, claimable)
                .values(
                    status="sending",
                    claim_token=token,
                    claimed_at=now,
                    attempts=OutboxEmail.attempts + 1,
                )
                .execution_options(synchronize_session=False)
            )
            if _rowcount(taken) == 1:
                return Claim(row.id, token, row.attempts + 1, row.message_id, message)
            after_id = row.id  # another sender claimed it first


def _finish(session_factory: Callable[[], Session], claim: Claim, **values: object) -> bool:
    """End ``claim`` (sent, or released as pending) in a short transaction; False when the
    claim was no longer this sender's."""
    with session_factory() as session, session.begin():
        result = session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == claim.row_id, OutboxEmail.claim_token == claim.token)
            .values(claim_token=None, claimed_at=None, **values)
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


UNSENT = ("pending", "sending")


def pending_count(session: Session) -> int:
    """How many rows wait for delivery (pending, or claimed by a sender not done yet)."""
    return len(session.scalars(select(OutboxEmail.id).where(OutboxEmail.status.in_(UNSENT))).all())
