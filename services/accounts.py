"""Accounts: argon2 password hashing, users and their roles per review, sign-in with rate limiting.

Errors (all :class:`AccountError`):
- :class:`InvalidAccountInput` — a bad email, name, password or role (``field`` names it);
- :class:`AuthenticationError` — unknown email, wrong password or inactive account (one message for all);
- :class:`TooManyAttempts` — too many failed sign-ins for this email from this address
  (``retry_after`` seconds);
- :class:`UnknownAccount` — no user with that email (command line).

Functions take ``*, session``, may flush, never commit — except :func:`sign_in`, which takes a
sessionmaker because counting attempts atomically needs the attempt committed before it is counted.
"""

from __future__ import annotations

import datetime as dt
import logging
import re

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import LoginAttempt, Membership, Review, User, utcnow

logger = logging.getLogger(__name__)

ROLES = ("admin", "reviewer")
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024  # what the sign-in form and API accept
MAX_NAME_LENGTH = 200  # users.name
MAX_EMAIL_LENGTH = 320  # users.email
MIN_DISTINCT_CHARACTERS = 5
# Passwords of ten characters or more that lead every published list of leaked passwords, or
# that are keyboard walks and counting; refused whatever their case.
COMMON_PASSWORDS = frozenset(
    {
        "1234567890",
        "12345678910",
        "123456789012",
        "0987654321",
        "1q2w3e4r5t",
        "1qaz2wsx3edc",
        "qwertyuiop",
        "asdfghjkl;",
        "zxcvbnm,./",
        "password12",
        "password123",
        "password1234",
        "passw0rd123",
        "iloveyou12",
        "letmein123",
        "welcome123",
        "admin12345",
        "administrator",
        "qwerty12345",
        "abcdefghij",
        "abc1234567",
        "changeme123",
        "livingreview",
        "living-review",
    }
)
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


class UnknownAccount(AccountError):
    """No user has this email."""


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
    if len(email) > MAX_EMAIL_LENGTH or not EMAIL.match(email):
        raise InvalidAccountInput("email", f"email {email[:80]!r} is not an email address")
    if role not in ROLES:
        raise InvalidAccountInput("role", f"role must be one of {', '.join(ROLES)}, not {role!r}")
    name = name.strip()
    if len(name) > MAX_NAME_LENGTH:
        raise InvalidAccountInput("name", f"name must have at most {MAX_NAME_LENGTH} characters")
    check_password(password, email=email)
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        user = User(email=email, name=name, password_hash=hash_password(password))
        session.add(user)
    else:
        user.password_hash = hash_password(password)
        user.name = name or user.name
        revoke_sessions(user)
    if review is None and role == "admin":
        user.is_superuser = True
    session.flush()
    if review is not None:
        _grant(session, user, review, role)
    logger.info("account %s: role %s on review %s", user.id, role, review.slug if review else "-")
    return user


def check_password(password: str, *, email: str) -> None:
    """Refuse (InvalidAccountInput, field ``password``) a password that is too short or too long
    to be typed into the sign-in form, trivial (few distinct characters, only spaces, the
    email, mostly the email's local part) or one of the most common ones."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidAccountInput(
            "password", f"password must have at least {MIN_PASSWORD_LENGTH} characters"
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidAccountInput(
            "password", f"password must have at most {MAX_PASSWORD_LENGTH} characters"
        )
    folded = password.strip().casefold()
    local_part = email.split("@", 1)[0]
    if len(set(folded)) < MIN_DISTINCT_CHARACTERS:
        raise InvalidAccountInput(
            "password",
            f"password must use at least {MIN_DISTINCT_CHARACTERS} different characters",
        )
    mostly_the_email = (
        len(local_part) >= 3 and local_part in folded and (2 * len(local_part) > len(folded))
    )
    if folded in COMMON_PASSWORDS or email in folded or mostly_the_email:
        raise InvalidAccountInput(
            "password", "password is too easy to guess (a common password or the email)"
        )


def revoke_sessions(user: User) -> None:
    """End every sign-in session of ``user`` (their cookies carry the old version)."""
    user.session_version = (user.session_version or 0) + 1


def find_user(*, session: Session, email: str) -> User:
    """The user with ``email``; UnknownAccount otherwise."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise UnknownAccount(f"no user with email {normalise_email(email)[:80]!r}")
    return user


def list_users(*, session: Session) -> list[tuple[User, list[tuple[str, str]]]]:
    """Every user by email, with their (review slug, role) memberships."""
    users = session.scalars(select(User).order_by(User.email)).all()
    rows = session.execute(
        select(Membership.user_id, Review.slug, Membership.role)
        .join(Review, Review.id == Membership.review_id)
        .order_by(Review.slug)
    ).all()
    roles: dict[int, list[tuple[str, str]]] = {}
    for user_id, slug, role in rows:
        roles.setdefault(user_id, []).append((slug, role))
    return [(user, roles.get(user.id, [])) for user in users]


def disable_user(*, session: Session, email: str) -> User:
    """Deactivate the account and end its sessions (its decisions and history stay)."""
    user = find_user(session=session, email=email)
    user.is_active = False
    revoke_sessions(user)
    session.flush()
    logger.info("account %s disabled", user.id)
    return user


def remove_member(*, session: Session, email: str, review: Review) -> bool:
    """Take the user's role on ``review`` away; False when they held none."""
    user = find_user(session=session, email=email)
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.review_id == review.id)
    )
    if membership is None:
        return False
    session.delete(membership)
    session.flush()
    logger.info("account %s removed from review %s", user.id, review.slug)
    return True


def _grant(session: Session, user: User, review: Review, role: str) -> None:
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user.id, Membership.review_id == review.id)
    )
    if membership is None:
        session.add(Membership(user_id=user.id, review_id=review.id, role=role))
    else:
        membership.role = role
    session.flush()


def sign_in(
    *, sessions: sessionmaker[Session], email: str, password: str, ip: str
) -> tuple[int, int]:
    """Check a sign-in; return the user's id and session version.

    The attempt is committed as a failure first and only then are the failures of this email
    from ``ip`` within FAILURE_WINDOW counted (this one included), so concurrent attempts
    cannot all pass the check: of N simultaneous wrong passwords at most MAX_FAILURES are
    verified. Over the limit the attempt is removed again and TooManyAttempts raised; a correct
    password marks the attempt succeeded. Unknown, inactive and active accounts cost the same
    (one argon2 verification each).
    """
    email = normalise_email(email)[:MAX_EMAIL_LENGTH]
    ip = ip[:64]
    with sessions.begin() as session:
        attempt = LoginAttempt(email=email, ip=ip, succeeded=False)
        session.add(attempt)
    with sessions.begin() as session:
        since = utcnow() - FAILURE_WINDOW
        failures, oldest = session.execute(
            select(func.count(), func.min(LoginAttempt.created_at)).where(
                LoginAttempt.email == email,
                LoginAttempt.ip == ip,
                LoginAttempt.succeeded.is_(False),
                LoginAttempt.created_at >= since,
            )
        ).one()
        blocked = failures > MAX_FAILURES
        if blocked:
            session.execute(delete(LoginAttempt).where(LoginAttempt.id == attempt.id))
            retry_after = int((_aware(oldest) + FAILURE_WINDOW - utcnow()).total_seconds()) + 1
    if blocked:
        raise TooManyAttempts(retry_after)
    with sessions.begin() as session:
        user = session.scalar(select(User).where(User.email == email))
        matches = verify_password(user.password_hash if user else _DUMMY_HASH, password)
        if user is None or not user.is_active or not matches:
            raise AuthenticationError("email or password is wrong")
        session.get_one(LoginAttempt, attempt.id).succeeded = True
        return user.id, user.session_version


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


_DUMMY_HASH = _hasher.hash("not-a-real-password-0")
