"""CSRF tokens kept in the signed session, and the sign-in session itself.

Errors: :class:`CsrfError` (web: 403) when a state-changing request lacks the session's token.
"""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request

from db.models import User

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
    if not expected or not sent or not hmac.compare_digest(str(expected), sent):
        raise CsrfError("missing or wrong CSRF token: reload the page and try again")


def start_session(request: Request, user: User) -> None:
    """Sign ``user`` in: a fresh session (new CSRF token) holding the user id."""
    request.session.clear()
    request.session["uid"] = user.id
    request.session["csrf"] = secrets.token_urlsafe(32)


def end_session(request: Request) -> None:
    request.session.clear()


def flash(request: Request, message: str, kind: str = "info") -> None:
    """Queue a one-time message for the next page."""
    messages = list(request.session.get("flash") or [])
    messages.append([kind, message])
    request.session["flash"] = messages[-5:]


def pop_flashes(request: Request) -> list[list[str]]:
    return list(request.session.pop("flash", []) or [])
