"""Deliver pending outbox rows over SMTP and mark them sent.

Each row is claimed in its own short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two senders never send the same row at once), handed to the SMTP server, then marked ``sent`` in
that transaction. The email is built only from the row (its stored Message-ID, subject, bodies,
inline image and creation time as the Date), so if the process dies after the server accepted
the message but before the commit, the next run sends the *same* email again — recognisable as a
duplicate by its Message-ID — never a different digest. A failure to reach or talk to the server
(:class:`MailDeliveryError`) leaves the row pending with ``attempts`` and ``last_error`` updated,
and ends the run: the next run tries again. Rows are never dropped.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import smtplib
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import OutboxEmail, utcnow
from services.digest.errors import DigestInputError, MailDeliveryError

logger = logging.getLogger(__name__)


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
) -> SendReport:
    """Send pending outbox rows (oldest first, at most ``limit``); stops at the first failure."""
    report = SendReport()
    last_id = 0
    while report.sent + report.failed < limit:
        with session_factory() as session, session.begin():
            row = _claim_next(session, last_id, review_id)
            if row is None:
                break
            last_id = row.id
            row.attempts += 1
            try:
                deliver(build_message(row, config.mail_from), config)
            except MailDeliveryError as exc:
                row.last_error = str(exc)[:2000]
                report.failed += 1
                report.error = str(exc)
                logger.warning(
                    "outbox %s: delivery failed (attempt %d): %s", row.id, row.attempts, exc
                )
                break
            row.status = "sent"
            row.sent_at = utcnow()
            row.last_error = None
            report.sent += 1
            logger.info("outbox %s: sent %s", row.id, row.message_id)
    return report


def _claim_next(session: Session, after_id: int, review_id: int | None) -> OutboxEmail | None:
    query = (
        select(OutboxEmail)
        .where(OutboxEmail.status == "pending", OutboxEmail.id > after_id)
        .order_by(OutboxEmail.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if review_id is not None:
        query = query.where(OutboxEmail.review_id == review_id)
    return session.scalars(query).first()


def pending_count(session: Session) -> int:
    """How many rows wait for delivery."""
    return len(session.scalars(select(OutboxEmail.id).where(OutboxEmail.status == "pending")).all())
