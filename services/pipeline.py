"""The update chain run in-process: ``living-review update`` without a worker.

The Celery tasks in ``workers`` run the same step functions of :mod:`services.update` one by
one, started, resumed and settled by the same engine (:mod:`services.runs`); this module strings
them together for the embedded default.

The review's lock is held with a short lease renewed by a :class:`services.locks.Heartbeat`
thread, so a process killed mid-update frees the review within one lease; the next update says
that it took the lock over from that dead holder (log and audit ``lock.taken_over``). Before each
step the heartbeat is checked: an update whose lock was lost stops before writing more. An
update that finds an interrupted run finishes it first and then, in the same call, harvests the
window up to ``until`` (:func:`services.runs.needs_next_window`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import os
import socket
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Review, SearchRun
from services import runs
from services import update as steps
from services.locks import (
    DEFAULT_LEASE,
    Heartbeat,
    LockLostError,
    ReviewBusyError,
    holding,
    make_review_lock,
)
from services.protocol import Protocol
from services.pubmed.client import ClientConfig, EntrezClient
from services.pubmed.ratelimit import make_rate_limiter
from services.settings import Settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PipelineOptions:
    """Everything an update needs besides the database: how to reach PubMed."""

    client: ClientConfig
    rate_limit: float
    redis_url: str | None = None
    redis_key_prefix: str = "living-review:"
    base_url: str = ""
    mail_domain: str = "living-review.local"
    lock_dir: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "living-review-locks"
    )
    lock_ttl: float = DEFAULT_LEASE  # the lock's lease, renewed every third of it

    @classmethod
    def from_settings(cls, settings: Settings) -> PipelineOptions:
        config = ClientConfig(
            base_url=settings.entrez_base_url,
            email=settings.entrez_email,
            tool=settings.entrez_tool,
            api_key=settings.entrez_api_key,
            timeout=settings.entrez_timeout,
            max_tries=settings.entrez_max_tries,
            backoff_base=settings.entrez_backoff_base,
            backoff_max=settings.entrez_backoff_max,
            batch_size=settings.entrez_batch_size,
            esearch_cap=settings.entrez_esearch_cap,
        )
        from services.digest.outbox import mail_domain_of

        return cls(
            client=config,
            rate_limit=settings.rate_limit,
            redis_url=settings.redis_url,
            redis_key_prefix=settings.redis_key_prefix,
            base_url=settings.base_url,
            mail_domain=mail_domain_of(settings.mail_from),
            # one lock folder per database: two databases on one machine do not block each other
            lock_dir=Path(settings.data_dir)
            / "locks"
            / hashlib.sha256(settings.database_url.encode()).hexdigest()[:12],
            lock_ttl=float(settings.update_lock_lease),
        )

    def with_base_url(self, url: str) -> PipelineOptions:
        return dataclasses.replace(self, client=dataclasses.replace(self.client, base_url=url))

    def make_client(self) -> EntrezClient:
        limiter = make_rate_limiter(self.rate_limit, self.redis_url, self.redis_key_prefix)
        return EntrezClient(self.client, limiter)


def run_update(
    factory: sessionmaker[Session],
    protocol: Protocol,
    options: PipelineOptions,
    *,
    until: dt.date,
    today: dt.date | None = None,
    progress: steps.Progress | None = None,
    accept_empty: bool = False,
) -> steps.UpdateResult:
    """One full update of the review in this process, under its lock; what it did.

    The run is started (or an interrupted one resumed) by :func:`services.runs.begin`. A resumed
    run that succeeds is followed by the next window up to ``until`` (the result is that run's,
    with the resumed one in ``resumed``). A step that fails ends the run through
    :func:`services.runs.settle` and its error propagates; a run held for a person is returned
    with status ``held`` and its reason.
    """
    with factory() as session:
        review_id = review_by_slug(session, protocol.slug).id
    lock = make_review_lock(options.redis_url, options.lock_dir, options.redis_key_prefix)
    token = f"cli:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    try:
        with holding(lock, review_id, token, options.lock_ttl) as beat:
            with factory.begin() as session:
                if beat.took_over is not None:
                    runs.audit_takeover(session, review_id, token, beat.took_over)
                run = runs.begin(session, protocol, until, today)
            result = _run_steps(factory, protocol.slug, run.id, options, progress, accept_empty,
                                beat)
            with factory() as session:
                if not runs.needs_next_window(session, result.run_id, until):
                    return result
            try:
                with factory.begin() as session:
                    run = runs.begin(session, protocol, until, today)
            except runs.WindowCoveredError:
                return result
            following = _run_steps(factory, protocol.slug, run.id, options, progress,
                                   accept_empty, beat)
            return dataclasses.replace(following, resumed=result.to_dict())
    except ReviewBusyError as exc:
        raise runs.UpdateInProgressError(
            f"another update of {protocol.slug} is running ({exc.holder or 'holder unknown'}); "
            "this one was not started"
        ) from exc


def review_by_slug(session: Session, slug: str) -> Review:
    review = session.scalars(select(Review).where(Review.slug == slug)).first()
    if review is None:
        raise runs.UpdateError(
            f"review {slug!r} is not in the database: run `living-review init --review {slug}`"
        )
    return review


def _run_steps(
    factory: sessionmaker[Session],
    slug: str,
    run_id: int,
    options: PipelineOptions,
    progress: steps.Progress | None,
    accept_empty: bool,
    beat: Heartbeat,
) -> steps.UpdateResult:
    summaries: dict[str, Any] = {}
    try:
        beat.check()
        steps.harvest(factory, run_id, options.make_client(), progress, accept_empty=accept_empty)
        beat.check()
        summaries["prescreen"] = steps.prescreen(factory, run_id)
        beat.check()
        summaries["propose"] = steps.propose(factory, run_id)
        beat.check()
        summaries["recompute"] = steps.recompute(
            factory, run_id, base_url=options.base_url, mail_domain=options.mail_domain
        )
        beat.check()
        run = steps.finish(factory, run_id)
    except LockLostError as exc:  # another update holds the review now and finishes the run
        raise runs.UpdateInProgressError(
            f"{exc}; this update stopped before writing more (run {run_id} is left to it)"
        ) from exc
    except runs.RunHeldError as exc:
        runs.settle(factory, run_id, exc)
        with factory() as session:
            run = session.get_one(SearchRun, run_id)
    except Exception as exc:  # the engine's failure policy: any error ends the run failed
        runs.settle(factory, run_id, exc)
        raise
    return steps.result_of(run, slug, summaries)
