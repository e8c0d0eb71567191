"""A request's transaction tried again on a busy database; every unexpected error answered.

:class:`BusyRetry` (pure ASGI, innermost middleware) runs the request again when the database
was busy with another transaction (:func:`db.session.is_busy`: SQLite's write lock held by an
update storing records, a PostgreSQL row lock, serialization failure or deadlock), up to
WEB_DB_ATTEMPTS tries with a short jittered backoff; each statement waits WEB_DB_BUSY_TIMEOUT
seconds for the lock first. A busy error aborts the whole unit of work (the route's session is
closed, its transaction rolled back) before anything was answered, so a try again is the same
request on a clean slate: a decision is stored once or not at all. The body (already capped by
:class:`services.web.guard.RequestGuard`) is replayed and the session cookie's contents are put
back as they came before each new try.

When the database stays busy the answer is 503 with ``Retry-After`` in the app's error shape
(:func:`services.web.errors.error_response`: JSON ``{"detail": …}`` on /api/, the error page
elsewhere); any other unexpected exception is logged and answered 500 in the same shape, so no
request ends in a plain-text 500 nor a closed connection (unless its response had already
started: then the exception goes on to the server).
"""

from __future__ import annotations

import logging
import random

import anyio
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.session import is_busy
from services.web.errors import error_response

logger = logging.getLogger(__name__)
RETRY_AFTER_SECONDS = 5
BACKOFF_SECONDS = 0.1


class BusyRetry:
    """The middleware of the module docstring."""

    def __init__(self, app: ASGIApp, attempts: int = 3, backoff: float = BACKOFF_SECONDS) -> None:
        self.app = app
        self.attempts = max(1, attempts)
        self.backoff = backoff

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        messages = await _read_request(receive)
        session = scope.get("session")
        saved = dict(session) if isinstance(session, dict) else None
        for attempt in range(1, self.attempts + 1):
            started = False

            async def tracking_send(message: Message) -> None:
                nonlocal started
                if message["type"] == "http.response.start":
                    started = True
                await send(message)

            try:
                await self.app(scope, _replay(messages, receive), tracking_send)
                return
            except Exception as exc:
                if started:
                    raise
                busy = is_busy(exc)
                if busy and attempt < self.attempts:
                    logger.warning(
                        "%s %s: database busy (%s), try %d of %d",
                        scope["method"], scope["path"], _first_line(exc), attempt + 1,
                        self.attempts,
                    )
                    if saved is not None and isinstance(session, dict):
                        session.clear()
                        session.update(saved)
                    await anyio.sleep(self.backoff * 2 ** (attempt - 1) * random.uniform(0.5, 1.5))
                    continue
                request = Request(scope)
                if busy:
                    logger.warning(
                        "%s %s: database still busy after %d tries: 503",
                        scope["method"], scope["path"], attempt,
                    )
                    response = error_response(
                        request,
                        503,
                        "the database is busy (an update is storing records): nothing was "
                        f"saved; try again in {RETRY_AFTER_SECONDS} s",
                    )
                    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
                else:
                    logger.exception("%s %s failed", scope["method"], scope["path"])
                    response = error_response(
                        request, 500, "internal error: nothing was saved (the error is logged)"
                    )
                await response(scope, _replay(messages, receive), send)
                return


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0][:200]


async def _read_request(receive: Receive) -> list[Message]:
    """The request's body messages, read to the end (the guard outside has capped the size)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive giving the body messages again, then the connection's own (disconnect)."""
    queue = list(messages)

    async def replay() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replay
