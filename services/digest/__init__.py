"""The email digest of changed estimates: compose, write to the outbox, deliver over SMTP.

- :func:`queue_digest` (outbox.py) writes one row per recipient in the caller's transaction.
- :func:`send_pending` (mailer.py) delivers pending rows and marks them sent.
- :func:`preview` (preview.py) composes the next digest without writing or sending anything.

Errors (errors.py): ``DigestError`` → ``DigestInputError`` (cannot compose), ``MailDeliveryError``
(SMTP failed; the row stays pending).
"""

from services.digest.errors import DigestError, DigestInputError, MailDeliveryError
from services.digest.mailer import SendReport, SmtpConfig, build_message, send_pending
from services.digest.outbox import message_id, queue_digest

__all__ = [
    "DigestError",
    "DigestInputError",
    "MailDeliveryError",
    "SendReport",
    "SmtpConfig",
    "build_message",
    "message_id",
    "queue_digest",
    "send_pending",
]
