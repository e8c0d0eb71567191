"""The request guard: what every request must satisfy before a route (or FastAPI's body parsing)
sees it.

- A body larger than MAX_BODY_BYTES gets 413 without being read (declared by Content-Length) or
  as soon as the streamed bytes pass the limit.
- A state-changing request that is not a form must carry the session's CSRF token in the
  X-CSRF-Token header; without it the answer is 403 before a byte of the body is read (forms
  carry the token in the body, which :func:`services.web.security.csrf_protect` checks).
- Ids in the path above the database's integer range (and paths with a NUL) get 404, query
  strings with a NUL 422; JSON and form values holding a
  NUL character, an unpaired surrogate or an integer outside the 32-bit range get 422 naming the
  field, so nothing the database cannot store (or the pages cannot print) reaches a route.

Runs inside the session middleware (it reads ``scope["session"]``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web.security import CSRF_HEADER, SAFE_METHODS, tokens_match

MAX_BODY_BYTES = 1024 * 1024
MAX_DB_INT = 2**31 - 1
FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
_DIGITS = re.compile(r"^\d+$")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class RequestGuard:
    """Pure ASGI middleware applying the checks in the module docstring."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refuse_early(scope, headers)
        if refusal is None and scope["method"] not in SAFE_METHODS:
            body, too_large = await _read_body(receive, self.max_body)
            if too_large:
                refusal = _too_large(self.max_body)
            else:
                refusal = _check_values(body, headers.get("content-type", ""))
                receive = _replay(body)
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _refuse_early(self, scope: Scope, headers: Headers) -> JSONResponse | None:
        path = str(scope.get("path", ""))
        if _UNSTORABLE.search(path):
            return _refusal(404, "no such page: the address holds a NUL or invalid character")
        for segment in path.split("/"):
            if _DIGITS.match(segment) and int(segment) > MAX_DB_INT:
                return _refusal(404, f"no such item: {segment[:20]} is not a known id")
        query = bytes(scope.get("query_string", b"")).lower()
        if b"%00" in query or b"\x00" in query:
            return _refusal(422, "query: a parameter contains a NUL character")
        if scope["method"] in SAFE_METHODS:
            return None
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return _too_large(self.max_body)
        if not headers.get("content-type", "").startswith(FORM_TYPES):
            session = scope.get("session") or {}
            if not tokens_match(session.get("csrf"), headers.get(CSRF_HEADER)):
                return _refusal(403, "missing or wrong CSRF token: reload the page and try again")
        return None


async def _read_body(receive: Receive, limit: int) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return b"", True
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks), False


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _check_values(body: bytes, content_type: str) -> JSONResponse | None:
    """422 naming the first field whose value cannot be stored, or None."""
    if not body:
        return None
    if content_type.startswith("application/x-www-form-urlencoded"):
        text = body.decode("latin-1")
        for name, value in parse_qsl(text, keep_blank_values=True, errors="strict"):
            if "\x00" in value or "\x00" in name:
                return _bad_value(name.replace("\x00", ""), "contains a NUL character")
        return None
    if "json" not in content_type:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None  # FastAPI answers malformed JSON with its own 422
    for path, problem in _problems(data, ()):
        return _bad_value(".".join(path) or "body", problem)
    return None


def _problems(value: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        if _UNSTORABLE.search(value):
            yield path, "contains a NUL character or an unpaired surrogate"
    elif isinstance(value, bool):
        return
    elif isinstance(value, int):
        if abs(value) > MAX_DB_INT:
            yield path, f"is outside the accepted range (±{MAX_DB_INT})"
    elif isinstance(value, dict):
        for key, item in value.items():
            if _UNSTORABLE.search(key):
                yield (*path, key.encode("utf-8", "replace").decode()), "is not a valid name"
            yield from _problems(item, (*path, str(key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _problems(item, (*path, str(index)))


def _bad_value(field: str, problem: str) -> JSONResponse:
    clean = _UNSTORABLE.sub("", field)[:80]
    response = _refusal(422, f"{clean}: {problem}")
    response.body = json.dumps(
        {"detail": f"{clean}: {problem}", "errors": {clean: problem}, "field": clean}
    ).encode()
    response.headers["content-length"] = str(len(response.body))
    return response


def _too_large(limit: int) -> JSONResponse:
    return _refusal(413, f"request body too large: at most {limit // 1024} KiB")


def _refusal(status: int, message: str) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status)
