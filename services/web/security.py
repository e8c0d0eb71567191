"""CSRF tokens kept in the signed session, and the sign-in session itself.

A signed-in session holds the user id, the user's ``session_version`` when it started and when
it started (``iat``); :func:`session_is_current` refuses it once the version has moved on
(sign-out, password change, deactivation) or SESSION_LIFETIME has passed, however often the
cookie was re-signed since.

Errors: :class:`CsrfError` (web: 403) when a state-changing request lacks the session's token.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Mapping
from typing import Any

from fastapi import Request

from db.models import User

SESSION_LIFETIME = 12 * 3600  # seconds from sign-in, whatever happens in between
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


class CsrfError(Exception):
    """The request's CSRF token is missing or does not match the session's."""


def csrf_token(request: Request) -> str:
    """The session's CSRF token, created on first use."""
    token = request.session.get("csrf")
    if not isinstance(token, str) or len(token) < 32:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return token


async def csrf_protect(request: Request) -> None:
    """FastAPI dependency: refuse unsafe methods without the matching token (header or form)."""
    if request.method in SAFE_METHODS:
        return
    expected = request.session.get("csrf")
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not tokens_match(expected, sent):
        raise CsrfError("missing or wrong CSRF token: reload the page and try again")


def tokens_match(expected: object, sent: str | None) -> bool:
    """Constant-time comparison of the session's token with the one sent (any characters)."""
    if not isinstance(expected, str) or not expected or not sent:
        return False
    return hmac.compare_digest(expected.encode(), sent.encode("utf-8", "surrogateescape"))


def start_session(request: Request, user_id: int, session_version: int) -> None:
    """Sign a user in: a fresh session (new CSRF token) holding the id, version and start."""
    request.session.clear()
    request.session["uid"] = user_id
    request.session["sv"] = session_version
    request.session["iat"] = int(time.time())
    request.session["csrf"] = secrets.token_urlsafe(32)


def session_is_current(session: Mapping[str, Any], user: User) -> bool:
    """True when the session was started with ``user``'s current version, within the lifetime."""
    started = session.get("iat")
    return (
        session.get("sv") == user.session_version
        and isinstance(started, int)
        and 0 <= time.time() - started < SESSION_LIFETIME
    )


def end_session(request: Request) -> None:
    request.session.clear()


def flash(request: Request, message: str, kind: str = "info") -> None:
    """Queue a one-time message for the next page."""
    messages = list(request.session.get("flash") or [])
    messages.append([kind, message])
    request.session["flash"] = messages[-5:]


def pop_flashes(request: Request) -> list[list[str]]:
    return list(request.session.pop("flash", []) or [])
