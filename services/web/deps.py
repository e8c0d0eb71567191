"""Request dependencies: database session, signed-in user, review access by role.

Errors raised here (handled in :mod:`services.web.errors`): :class:`LoginRequired` (401 for the
API, a redirect to /login for pages), :class:`AccessDenied` (403), :class:`ReviewNotFound` (404,
also for reviews the user does not belong to, so their existence is not revealed).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Review, User
from services.accounts import role_in


class LoginRequired(Exception):
    """No signed-in user."""


class AccessDenied(Exception):
    """Signed in, but the role does not allow this."""


class ReviewNotFound(Exception):
    """No such review, or not one of the user's."""


def get_db(request: Request) -> Iterator[Session]:
    """One session per request; the route commits what it changes, the rest is rolled back."""
    session: Session = request.app.state.sessions()
    try:
        yield session
    finally:
        session.close()


DbSession = Annotated[Session, Depends(get_db)]


def optional_user(request: Request, session: DbSession) -> User | None:
    """The signed-in, active user, or None."""
    uid = request.session.get("uid")
    if not isinstance(uid, int):
        return None
    user = session.get(User, uid)
    if user is None or not user.is_active:
        request.session.clear()
        return None
    return user


def current_user(user: Annotated[User | None, Depends(optional_user)]) -> User:
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


def review_access(slug: str, user: CurrentUser, session: DbSession) -> ReviewAccess:
    """The review ``slug`` if the user belongs to it (any role); ReviewNotFound otherwise."""
    review = session.scalar(select(Review).where(Review.slug == slug))
    if review is None:
        raise ReviewNotFound(f"no review {slug!r}")
    role = role_in(session=session, user=user, review=review)
    if role is None:
        raise ReviewNotFound(f"no review {slug!r}")
    return ReviewAccess(review, role, user)


Member = Annotated[ReviewAccess, Depends(review_access)]


def admin_access(access: Member) -> ReviewAccess:
    """Like review_access, but only for the review's admins (AccessDenied for reviewers)."""
    if not access.is_admin:
        raise AccessDenied("only an admin of this review may do this")
    return access


Admin = Annotated[ReviewAccess, Depends(admin_access)]
