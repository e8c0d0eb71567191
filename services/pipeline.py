"""The update chain run in-process: ``living-review update`` without a worker.

The Celery tasks in ``workers`` run the same step functions of :mod:`services.update` one by
one; this module only strings them together for the embedded default.
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

from sqlalchemy.orm import Session, sessionmaker

from db.models import Review
from services import update as steps
from services.locks import ReviewBusyError, holding, make_review_lock
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
    base_url: str = ""
    mail_domain: str = "living-review.local"
    lock_dir: Path = field(
        default_factory=lambda: Path(tempfile.gettempdir()) / "living-review-locks"
    )
    lock_ttl: float = 3 * 3600

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
            base_url=settings.base_url,
            mail_domain=mail_domain_of(settings.mail_from),
            # one lock folder per database: two databases on one machine do not block each other
            lock_dir=Path(settings.data_dir)
            / "locks"
            / hashlib.sha256(settings.database_url.encode()).hexdigest()[:12],
            lock_ttl=float(settings.update_lock_ttl),
        )

    def with_base_url(self, url: str) -> PipelineOptions:
        return dataclasses.replace(self, client=dataclasses.replace(self.client, base_url=url))

    def make_client(self) -> EntrezClient:
        return EntrezClient(self.client, make_rate_limiter(self.rate_limit, self.redis_url))


def run_update(
    factory: sessionmaker[Session],
    protocol: Protocol,
    options: PipelineOptions,
    *,
    until: dt.date,
    progress: steps.Progress | None = None,
) -> steps.UpdateResult:
    """One full update of the review in this process; returns what it did.

    PubMed failures mark the run failed (nothing of it stored) and propagate.
    """
    with factory() as session:
        review_id = steps.review_by_slug(session, protocol.slug).id
    lock = make_review_lock(options.redis_url, options.lock_dir)
    token = f"cli:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    try:
        with holding(lock, review_id, token, options.lock_ttl):
            return _run_locked(factory, protocol, options, review_id, until, progress)
    except ReviewBusyError as exc:
        raise steps.UpdateInProgressError(
            f"another update of {protocol.slug} is running ({exc.holder or 'holder unknown'}); "
            "this one was not started"
        ) from exc


def _run_locked(
    factory: sessionmaker[Session],
    protocol: Protocol,
    options: PipelineOptions,
    review_id: int,
    until: dt.date,
    progress: steps.Progress | None,
) -> steps.UpdateResult:
    with factory.begin() as session:
        review = session.get_one(Review, review_id)
        run_id = steps.start_run(session, review, protocol, until).id
    client = options.make_client()
    summaries: dict[str, Any] = {}
    steps.harvest(factory, run_id, client, progress)
    summaries["prescreen"] = steps.prescreen(factory, run_id)
    summaries["propose"] = steps.propose(factory, run_id)
    summaries["recompute"] = steps.recompute(
        factory, run_id, base_url=options.base_url, mail_domain=options.mail_domain
    )
    run = steps.finish(factory, run_id)
    return steps.result_of(run, protocol.slug, summaries)
