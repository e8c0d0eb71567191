"""Helpers for the harvest integration tests: a protocol, options and a run against a server."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from db.models import Record
from services.baseline import import_baseline
from services.pipeline import PipelineOptions, run_update
from services.protocol import Protocol, load_protocol
from services.pubmed.client import ClientConfig
from services.reviews import ensure_review
from services.update import UpdateResult

ROOT = Path(__file__).resolve().parents[3]
REVIEWS = ROOT / "reviews"


def ldh_protocol(**search: object) -> Protocol:
    protocol = load_protocol(REVIEWS, "ldh_resorption")
    if search:
        protocol = protocol.model_copy(update={"search": protocol.search.model_copy(update=search)})
    return protocol


def init_review(factory: sessionmaker[Session], protocol: Protocol, baseline: bool = True) -> None:
    with factory.begin() as session:
        review = ensure_review(session, protocol)
        if baseline:
            import_baseline(session, review, REVIEWS / protocol.slug / "baseline")


def options(
    url: str,
    *,
    rate: float = 0,
    api_key: str | None = "test-key",
    batch: int = 500,
    cap: int = 9_999,
    tries: int = 5,
    redis_url: str | None = None,
) -> PipelineOptions:
    config = ClientConfig(
        base_url=url,
        api_key=api_key,
        timeout=10,
        max_tries=tries,
        backoff_base=0.01,
        backoff_max=0.05,
        batch_size=batch,
        esearch_cap=cap,
    )
    return PipelineOptions(
        client=config,
        rate_limit=rate,
        redis_url=redis_url,
        lock_dir=Path(tempfile.mkdtemp(prefix="lr-locks-")),
    )


def update(
    factory: sessionmaker[Session], protocol: Protocol, opts: PipelineOptions, until: dt.date
) -> UpdateResult:
    return run_update(factory, protocol, opts, until=until)


def record_count(factory: sessionmaker[Session]) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(Record)) or 0)


def with_url(opts: PipelineOptions, url: str) -> PipelineOptions:
    return dataclasses.replace(opts, client=dataclasses.replace(opts.client, base_url=url))
