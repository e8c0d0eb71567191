"""Sign in and out: the login page and form, and the JSON session endpoints of the API."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response

from services.accounts import (
    MAX_EMAIL_LENGTH,
    MAX_PASSWORD_LENGTH,
    AuthenticationError,
    TooManyAttempts,
    normalise_email,
    revoke_sessions,
    sign_in,
)
from services.web.deps import CurrentUser, DbSession, optional_user
from services.web.errors import error_response
from services.web.schemas import LoginIn, SessionOut
from services.web.security import csrf_protect, csrf_token, end_session, start_session

router = APIRouter(dependencies=[Depends(csrf_protect)])


def _client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _safe_next(target: str | None) -> str:
    """Only same-site paths are followed after sign-in."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


@router.get("/login", include_in_schema=False)
def login_page(request: Request, next: str | None = None) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "login.html", {"next": _safe_next(next), "error": None, "email": ""}
    )


@router.post("/login", include_in_schema=False)
def login_form(
    request: Request,
    email: Annotated[str, Form(max_length=MAX_EMAIL_LENGTH)],
    password: Annotated[str, Form(max_length=MAX_PASSWORD_LENGTH)],
    next: Annotated[str | None, Form(max_length=2048)] = None,
) -> Response:
    status, error, user = 303, None, (0, 0)
    try:
        user = sign_in(
            sessions=request.app.state.sessions,
            email=email,
            password=password,
            ip=_client_ip(request),
        )
    except TooManyAttempts as exc:
        status, error = 429, str(exc)
    except AuthenticationError as exc:
        status, error = 401, str(exc)
    if error is not None:
        return request.app.state.templates.TemplateResponse(
            request,
            "login.html",
            {"next": _safe_next(next), "error": error, "email": email},
            status_code=status,
        )
    start_session(request, *user)
    return RedirectResponse(_safe_next(next), status_code=303)


def _sign_out(request: Request, session: DbSession) -> None:
    """End this session and every other of the same user (their version moves on)."""
    user = optional_user(request, session)
    if user is not None:
        revoke_sessions(user)
        session.commit()
    end_session(request)


@router.post("/logout", include_in_schema=False)
def logout(request: Request, session: DbSession) -> Response:
    _sign_out(request, session)
    return RedirectResponse("/login", status_code=303)


@router.get("/api/session", response_model=SessionOut, tags=["session"])
def session_info(request: Request, session: DbSession) -> SessionOut:
    """The CSRF token to send as X-CSRF-Token, and the signed-in user if any."""
    user = optional_user(request, session)
    return SessionOut(
        csrf_token=csrf_token(request),
        email=user.email if user else None,
        user_id=user.id if user else None,
    )


@router.post(
    "/api/session",
    response_model=SessionOut,
    tags=["session"],
    responses={
        401: {"description": "wrong email or password"},
        429: {"description": "too many failed attempts"},
    },
)
def api_login(body: LoginIn, request: Request) -> Response:
    """Sign in (needs the CSRF token from GET /api/session); sets the session cookie."""
    try:
        user_id, version = sign_in(
            sessions=request.app.state.sessions,
            email=body.email,
            password=body.password,
            ip=_client_ip(request),
        )
    except TooManyAttempts as exc:
        return JSONResponse(
            {"detail": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after)}
        )
    except AuthenticationError as exc:
        return error_response(request, 401, str(exc))
    start_session(request, user_id, version)
    return JSONResponse(
        SessionOut(
            csrf_token=csrf_token(request), email=normalise_email(body.email), user_id=user_id
        ).model_dump()
    )


@router.delete("/api/session", status_code=204, tags=["session"])
def api_logout(request: Request, session: DbSession, user: CurrentUser) -> Response:
    """Sign out: this session and every other session of the user end."""
    _sign_out(request, session)
    return Response(status_code=204)
