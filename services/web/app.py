"""The reviewer web app: ``create_app(settings)`` wires database, sessions, pages and the API.

Sessions are Starlette's signed cookie (itsdangerous), signed with SECRET_KEY or the secret
generated in DATA_DIR (:meth:`Settings.session_secret`): HttpOnly, SameSite=Lax, Secure when the
base URL is https; the user's session version and an absolute lifetime are checked on each
request (:mod:`services.web.security`). Every state-changing request must carry the session's
CSRF token; bodies are capped and checked first (:mod:`services.web.guard`). A request whose
database was busy is tried again, then answered 503 with Retry-After; an unexpected error is
answered 500 in the API's JSON error shape (:mod:`services.web.retry`). Every response
carries ``Server-Timing: app;dur=<ms>`` (read by benchmarks/queue_pages.py); everything but
static files ``Cache-Control: no-store``.
"""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.middleware.sessions import SessionMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from db.session import make_engine, make_sessionmaker
from services.digest.outbox import mail_domain_of
from services.locks import make_review_lock
from services.screening.active import QueueRefitter
from services.settings import Settings
from services.web import api_docs, errors
from services.web.cache import SnapshotCache
from services.web.guard import RequestGuard
from services.web.recompute import LocalRecompute
from services.web.retry import BusyRetry
from services.web.routes import (
    auth,
    conflicts,
    evidence,
    exports,
    extraction,
    reviews,
    rob,
    screening,
)
from services.web.routes.reviews import FOREST_CACHE_SIZE
from services.web.security import SESSION_LIFETIME
from services.web.templating import make_templates

logger = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"
CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Keep full garbage collections short: what exists once the app is up (modules, routes,
    compiled templates and queries) lives as long as the process, so it is frozen out of the
    cyclic collector's scans (a full scan of it took ~200 ms on a busy 2-core machine);
    unfrozen again at shutdown, after the recomputes still waiting have run."""
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        if app.state.refitter is not None:
            app.state.refitter.stop()
        app.state.recompute.close()
        app.state.background_engine.dispose()
        gc.unfreeze()


def create_app(settings: Settings) -> FastAPI:
    """Build the app for ``settings`` (database URL, secret key, base URL)."""
    secret = settings.session_secret()
    # requests wait a few seconds for a busy database, then BusyRetry tries again or answers
    # 503; the recompute off the request waits as long as the workers do
    engine = make_engine(settings.database_url, lock_wait=settings.web_db_busy_timeout)
    background_engine = make_engine(settings.database_url)
    app = FastAPI(
        title="living-review",
        summary="Screen records, resolve conflicts, confirm extractions, follow the estimate.",
        version="0.1.0",
        openapi_url="/api/openapi.json",
        docs_url=None,  # served by services.web.api_docs from packaged assets (see there)
        redoc_url=None,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.background_engine = background_engine
    app.state.sessions = make_sessionmaker(engine)
    app.state.templates = make_templates()
    app.state.refitter = (
        None
        if settings.queue_refit_seconds is None
        else QueueRefitter(settings.database_url, debounce=settings.queue_refit_seconds)
    )
    app.state.recompute = LocalRecompute(
        make_sessionmaker(background_engine),
        make_review_lock(None, settings.data_dir),
        settings.recompute_debounce_seconds,
        base_url=settings.base_url,
        mail_domain=mail_domain_of(settings.mail_from),
    )
    app.state.forest_cache = SnapshotCache(size=FOREST_CACHE_SIZE)
    if settings.redis_url:
        from workers.celery_app import configure

        configure(settings)  # the tasks enqueued here use this app's broker, not the env's
    app.add_middleware(BusyRetry, attempts=settings.web_db_attempts)
    app.add_middleware(RequestGuard)
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret,
        session_cookie="lr_session",
        max_age=SESSION_LIFETIME,
        same_site="lax",
        https_only=settings.base_url.startswith("https://"),
    )
    app.add_middleware(TimingAndHeaders)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    api_docs.install(app)
    for module in (auth, reviews, screening, conflicts, extraction, exports, evidence, rob):
        app.include_router(module.router)
    errors.install(app)
    return app


class TimingAndHeaders:
    """Pure ASGI middleware: ``Server-Timing`` (time to the response's headers) and security
    headers on every HTTP response; ``Cache-Control: no-store`` on all but static files (pages,
    the API and exports hold the review's data)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        is_static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                elapsed_ms = (time.perf_counter() - started) * 1000
                headers["Server-Timing"] = f"app;dur={elapsed_ms:.2f}"
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
                headers.setdefault("X-Frame-Options", "DENY")
                if not is_static:
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
