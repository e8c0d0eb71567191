"""Date splitting past PubMed's 9,999 cap, and the shared rate limit, over real HTTP."""

from __future__ import annotations

import datetime as dt
import multiprocessing
from pathlib import Path

import pytest
from harvest_helpers import init_review, ldh_protocol, options, record_count, update
from sqlalchemy import select

from db.models import SearchRun
from services.pubmed.client import ClientConfig, EntrezClient
from services.pubmed.ratelimit import RedisRateLimiter
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import write_synthetic_snapshot

# serial: the rate-limit tests time requests at the server, which other tests running beside
# them on two cores would delay and bunch together (scripts/test runs these on their own).
pytestmark = [pytest.mark.integration, pytest.mark.serial]


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_snapshot(tmp_path_factory.mktemp("big"), 25_000, dt.date(2024, 2, 1), 40)


def test_25000_records_are_fetched_through_date_splitting(session_factory, big_snapshot) -> None:
    protocol = ldh_protocol(start_date=dt.date(2024, 1, 1))
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(big_snapshot) as server:
        result = update(session_factory, protocol, options(server.url), dt.date(2024, 3, 31))
        counts = [e for e in server.state.log if e["utility"] == "esearch"]
    assert result.status == "succeeded" and result.new == 25_000
    assert record_count(session_factory) == 25_000
    with session_factory() as session:
        run = session.scalars(select(SearchRun)).one()
        assert len(run.windows) >= 3 and all(w["count"] <= 9_999 for w in run.windows)
        assert sum(w["count"] for w in run.windows) == 25_000
    assert len(counts) > len(run.windows)  # the over-cap windows were searched, then split


def max_in_any_second(times: list[float]) -> int:
    times = sorted(times)
    return max(sum(1 for u in times[i:] if u - t < 1.0) for i, t in enumerate(times))


def test_no_more_than_3_requests_a_second_without_api_key(session_factory, demo_snapshot) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(demo_snapshot) as server:
        opts = options(server.url, rate=3, api_key=None, batch=1)  # 1 record a request: 21 requests
        update(session_factory, protocol, opts, dt.date(2024, 1, 14))
        times = [e["t"] for e in server.state.log]
    assert len(times) >= 20
    assert max_in_any_second(times) <= 3


def _hammer(url: str, redis_url: str, prefix: str, n: int) -> None:
    import redis

    limiter = RedisRateLimiter(redis.Redis.from_url(redis_url), rate=3, key=f"{prefix}ncbi-rate")
    client = EntrezClient(ClientConfig(base_url=url, api_key="k", timeout=10), limiter)
    for _ in range(n):
        client.search("lumbar", dt.date(2024, 1, 1), dt.date(2024, 1, 14))


def test_the_limit_holds_across_processes_through_redis(demo_snapshot, redis_url,
                                                       redis_prefix) -> None:
    with ReplayServer(demo_snapshot) as server:
        context = multiprocessing.get_context("spawn")
        workers = [context.Process(target=_hammer, args=(server.url, redis_url, redis_prefix, 6)) for _ in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
        assert all(w.exitcode == 0 for w in workers)
        times = [e["t"] for e in server.state.log]
    assert len(times) == 18
    # three processes each free to send 10/s (API key): together still at most 3 in any second
    assert max_in_any_second(times) <= 3
