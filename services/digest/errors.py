"""Errors of the digest service.

:class:`DigestError` is the base. :class:`MailDeliveryError` means the SMTP server could not be
reached or refused the message for a reason that may pass (the outbox row stays pending and the
next sender run tries again); :class:`DigestInputError` means the snapshot or its review lacks what
a digest needs (a bug or a bad protocol, not retried).
"""

from __future__ import annotations


class DigestError(Exception):
    """Base of the digest errors."""


class DigestInputError(DigestError):
    """The snapshot, its review or the changes dict cannot make a digest."""


class MailDeliveryError(DigestError):
    """SMTP delivery failed; the row stays pending."""
