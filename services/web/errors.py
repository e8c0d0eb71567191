"""Mapping of errors to responses: JSON for /api/ paths, an HTML page (or redirect) otherwise.

Screening: NotFoundError 404, ConflictError 409, InvalidInputError 422 (fields named).
Access: LoginRequired 401 (pages: 303 to /login), AccessDenied 403, ReviewNotFound 404,
CsrfError 403. Request validation (FastAPI) 422 with the field named.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from services.screening.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    ScreeningError,
)
from services.web.deps import AccessDenied, LoginRequired, ReviewNotFound
from services.web.security import CsrfError

logger = logging.getLogger(__name__)


def is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_response(
    request: Request, status: int, message: str, errors: dict[str, str] | None = None
) -> Response:
    """A JSON error for the API, a small HTML page for browsers."""
    if is_api(request):
        body: dict[str, Any] = {"detail": message}
        if errors:
            body["errors"] = errors
            body["field"] = next(iter(errors))
        return JSONResponse(body, status_code=status)
    templates = request.app.state.templates
    return templates.TemplateResponse(
        request,
        "error.html",
        {"status": status, "message": message, "errors": errors or {}},
        status_code=status,
    )


async def _screening(request: Request, exc: Exception) -> Response:
    status = 500
    errors = None
    if isinstance(exc, NotFoundError):
        status = 404
    elif isinstance(exc, ConflictError):
        status = 409
    elif isinstance(exc, InvalidInputError):
        status, errors = 422, exc.errors
    return error_response(request, status, str(exc), errors)


async def _login_required(request: Request, exc: Exception) -> Response:
    if is_api(request):
        return JSONResponse(
            {"detail": str(exc)}, status_code=401, headers={"WWW-Authenticate": "Cookie"}
        )
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


async def _denied(request: Request, exc: Exception) -> Response:
    return error_response(request, 403, str(exc))


async def _not_found(request: Request, exc: Exception) -> Response:
    return error_response(request, 404, str(exc))


async def _validation(request: Request, exc: Exception) -> Response:
    errors: dict[str, str] = {}
    for item in getattr(exc, "errors", lambda: [])():
        loc = [str(p) for p in item.get("loc", ()) if p not in ("body", "query", "path", "form")]
        errors[".".join(loc) or "request"] = str(item.get("msg", "invalid"))
    field = next(iter(errors), "request")
    return error_response(request, 422, f"{field}: {errors.get(field, 'invalid')}", errors)


async def _http(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 500)
    detail = getattr(exc, "detail", "error")
    response = error_response(request, status, str(detail))
    response.headers.update(getattr(exc, "headers", None) or {})
    if status == 405:
        response.headers["Allow"] = ", ".join(_allowed_methods(request))
    return response


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(ScreeningError, _screening)
    app.add_exception_handler(LoginRequired, _login_required)
    app.add_exception_handler(AccessDenied, _denied)
    app.add_exception_handler(CsrfError, _denied)
    app.add_exception_handler(ReviewNotFound, _not_found)
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
