"""Accounts: argon2 password hashing, users and their roles per review, sign-in with rate limiting.

Errors (all :class:`AccountError`):
- :class:`InvalidAccountInput` — a bad email, name, password or role (``field`` names it);
- :class:`AuthenticationError` — unknown email, wrong password or inactive account (one message for all);
- :class:`TooManyAttempts` — too many failed sign-ins for this email from this address
  (``retry_after`` seconds).

Functions take ``*, session``, may flush, never commit.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from db.models import LoginAttempt, Membership, Review, User, utcnow

logger = logging.getLogger(__name__)

ROLES = ("admin", "reviewer")
MIN_PASSWORD_LENGTH = 10
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(minutes=15)
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

_hasher = PasswordHasher()


class AccountError(Exception):
    """Base of account errors."""


class InvalidAccountInput(AccountError):
    """A field of a new account is not acceptable; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class AuthenticationError(AccountError):
    """The email and password do not match an active account."""


class TooManyAttempts(AccountError):
    """Sign-in refused for a while after repeated failures."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(
            f"too many failed sign-ins: try again in {max(1, retry_after // 60)} minute(s)"
        )
        self.retry_after = retry_after


def hash_password(password: str) -> str:
    """An argon2id hash of ``password`` (salted, parameters embedded)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; never raises for a mismatch."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def normalise_email(email: str) -> str:
    return email.strip().lower()


def add_user(
    *, session: Session, email: str, name: str, password: str, role: str, review: Review | None
) -> User:
    """Create a user (or update the password and name of an existing one) and grant ``role``.

    ``review`` None grants nothing (a superuser is made with role ``admin`` and no review).
    Raises InvalidAccountInput naming the bad field.
    """
    email = normalise_email(email)
    if not EMAIL.match(email):
        raise InvalidAccountInput("email", f"email {email!r} is not an email address")
    if role not in ROLES:
        raise InvalidAccountInput("role", f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidAccountInput(
            "password", f"password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name.strip(), password_hash=hash_password(password))
        session.add(user)
    else:
        user.password_hash = hash_password(password)
        user.name = name.strip() or user.name
    if review is None and role == "admin":
        user.is_superuser = True
    session.flush()
    if review is not None:
        _grant(session, user, review, role)
    logger.info("account %s: role %s on review %s", user.id, role, review.slug if review else "-")
    return user


def _grant(session: Session, user: User, review: Review, role: str) -> None:
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.review_id == review.id)
    )
    if membership is None:
        session.add(Membership(user_id=user.id, review_id=review.id, role=role))
    else:
        membership.role = role
    session.flush()


def authenticate(*, session: Session, email: str, password: str, ip: str) -> User:
    """Check a sign-in and record the attempt.

    Refuses (TooManyAttempts) when this email had MAX_FAILURES failures from ``ip`` within
    FAILURE_WINDOW, before looking at the password. The caller commits even on failure so the
    attempt is counted.
    """
    email = normalise_email(email)[:320]
    ip = ip[:64]
    since = utcnow() - FAILURE_WINDOW
    failures = session.execute(
        select(func.count(), func.min(LoginAttempt.created_at)).where(
            LoginAttempt.email == email,
            LoginAttempt.ip == ip,
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.created_at >= since,
        )
    ).one()
    if failures[0] >= MAX_FAILURES:
        oldest = _aware(failures[1])
        retry_after = int((oldest + FAILURE_WINDOW - utcnow()).total_seconds()) + 1
        raise TooManyAttempts(retry_after)
    user = session.scalar(select(User).where(User.email == email))
    ok = user is not None and user.is_active and verify_password(user.password_hash, password)
    if user is None:
        verify_password(_dummy_hash(), password)  # same cost whether or not the account exists
    session.add(LoginAttempt(email=email, ip=ip, succeeded=ok))
    session.flush()
    if not ok or user is None:
        raise AuthenticationError("email or password is wrong")
    return user


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def role_in(*, session: Session, user: User, review: Review) -> str | None:
    """The user's role in the review: 'admin', 'reviewer' or None; superusers are admins."""
    if user.is_superuser:
        return "admin"
    return session.scalar(
        select(Membership.role).where(
            Membership.user_id == user.id, Membership.review_id == review.id
        )
    )


def reviews_of(*, session: Session, user: User) -> list[tuple[Review, str]]:
    """The reviews a user may open, with the role held in each, by title."""
    if user.is_superuser:
        reviews = session.scalars(select(Review).order_by(Review.title)).all()
        return [(r, "admin") for r in reviews]
    rows = session.execute(
        select(Review, Membership.role)
        .join(Membership, Membership.review_id == Review.id)
        .where(Membership.user_id == user.id)
        .order_by(Review.title)
    ).all()
    return [(r, role) for r, role in rows]


@functools.cache
def _dummy_hash() -> str:
    """A hash to verify against for unknown accounts; computed at the first sign-in, not import."""
    return _hasher.hash("not-a-real-password-0")
