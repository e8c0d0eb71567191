"""Request dependencies: database session, signed-in user, review access by role.

Dependencies that do no I/O are ``async`` so that FastAPI runs them on the event loop instead of
sending each to the thread pool; those that query run in the pool. Review access (user, review
and role) is one query.

Errors raised here (handled in :mod:`services.web.errors`): :class:`LoginRequired` (401 for the
API, a redirect to /login for pages), :class:`AccessDenied` (403), :class:`ReviewNotFound` (404,
also for reviews the user does not belong to, so their existence is not revealed).
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated

import anyio
from fastapi import Depends, Request
from sqlalchemy import Integer, Select, String, and_, bindparam, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from db.models import Membership, Review, User
from services.web.security import session_is_current


class LoginRequired(Exception):
    """No signed-in user."""


class AccessDenied(Exception):
    """Signed in, but the role does not allow this."""


class ReviewNotFound(Exception):
    """No such review, or not one of the user's."""


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request; the route commits what it changes, the rest is rolled back.

    Making a session does no I/O. Closing one that still holds a connection (a rollback and the
    return to the pool) happens in a worker thread, shielded from cancellation.
    """
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        if session.in_transaction():
            with anyio.CancelScope(shield=True):
                await run_in_threadpool(session.close)
        else:
            session.close()


DbSession = Annotated[Session, Depends(get_db)]


def _signed_in_id(request: Request) -> int | None:
    uid = request.session.get("uid")
    return uid if isinstance(uid, int) else None


def _active(request: Request, user: User | None) -> User | None:
    """``user`` if it exists, is active and the session is still current (not revoked, not
    expired); otherwise the stale session is cleared."""
    if user is None or not user.is_active or not session_is_current(request.session, user):
        request.session.clear()
        return None
    return user


def optional_user(request: Request, session: DbSession) -> User | None:
    """The signed-in, active user, or None."""
    uid = _signed_in_id(request)
    if uid is None:
        return None
    return _active(request, session.get(User, uid))


async def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
    if user is None:
        raise LoginRequired("sign in first")
    return user


CurrentUser = Annotated[User, Depends(current_user)]


@dataclass(frozen=True)
class ReviewAccess:
    """A review the user may open, with their role in it."""

    review: Review
    role: str
    user: User

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def review_access(slug: str, request: Request, session: DbSession) -> ReviewAccess:
    """The review ``slug`` if the signed-in user belongs to it (any role; superusers are
    admins, as in :func:`services.accounts.role_in`); LoginRequired without an active user,
    ReviewNotFound otherwise. One query for the user, the review and the membership."""
    uid = _signed_in_id(request)
    if uid is None:
        raise LoginRequired("sign in first")
    row = session.execute(_access_query(), {"uid": uid, "slug": slug}).first()
    user = _active(request, row[0] if row else None)
    if user is None or row is None:
        raise LoginRequired("sign in first")
    review, member_role = row[1], row[2]
    role = "admin" if user.is_superuser else member_role
    if review is None or role is None:
        raise ReviewNotFound(f"no review {slug!r}")
    return ReviewAccess(review, role, user)


@functools.cache
def _access_query() -> Select:  # type: ignore[type-arg]
    """The signed-in user, the review named ``slug`` and the user's role in it (built once)."""
    return (
        select(User, Review, Membership.role)
        .select_from(User)
        .outerjoin(Review, Review.slug == bindparam("slug", type_=String))
        .outerjoin(
            Membership, and_(Membership.user_id == User.id, Membership.review_id == Review.id)
        )
        .where(User.id == bindparam("uid", type_=Integer))
    )


Member = Annotated[ReviewAccess, Depends(review_access)]


async def admin_access(access: Member) -> ReviewAccess:
    """Like review_access, but only for the review's admins (AccessDenied for reviewers)."""
    if not access.is_admin:
        raise AccessDenied("only an admin of this review may do this")
    return access


Admin = Annotated[ReviewAccess, Depends(admin_access)]
