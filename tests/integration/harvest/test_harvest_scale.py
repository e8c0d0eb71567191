"""The shared rate limit over real HTTP (date splitting is in test_harvest_date_split.py)."""

from __future__ import annotations

import datetime as dt
import multiprocessing

import pytest
from harvest_helpers import init_review, ldh_protocol, options, update

from services.pubmed.client import ClientConfig, EntrezClient
from services.pubmed.ratelimit import RedisRateLimiter
from services.pubmed.replay import ReplayServer

# serial: the rate-limit tests time requests at the server, which other tests running beside
# them on two cores would delay and bunch together (scripts/test runs these on their own).
pytestmark = [pytest.mark.integration, pytest.mark.serial]


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
