"""The review lock as a lease: a live holder keeps it, a dead holder's lock is taken over within
one lease (and the new holder says so), a holder that lost it stops — on the real Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import redis
from sqlalchemy import select
from wk_parts import DEMO, ROOT, wait_for

from db.models import AuditLog, SearchRun
from db.session import make_engine, make_sessionmaker
from services.locks import (
    FileReviewLock,
    LockLostError,
    RedisReviewLock,
    ReviewBusyError,
    holding,
)
from services.pubmed.replay import ReplayServer

pytestmark = [pytest.mark.integration, pytest.mark.redis]
LEASE = 3  # seconds; the default is 90


def test_a_live_holder_keeps_its_lease_and_one_that_lost_it_stops(wk_redis, redis_prefix) -> None:
    lock = RedisReviewLock(wk_redis, redis_prefix)
    with holding(lock, 5, "live", ttl=1.0) as beat:
        # three leases pass while the holder works: the heartbeat renews it every third of one
        start = time.monotonic()
        while time.monotonic() - start < 3.0:
            assert lock.holder(5) == "live"
            with pytest.raises(ReviewBusyError):
                lock.acquire(5, "other", 1.0)
            time.sleep(0.25)
        wk_redis.set(lock.key(5), "thief")  # the lease was lost (e.g. a long pause) and taken
        wait_for(lambda: beat.lost is not None, 5, "the heartbeat to notice the loss")
        with pytest.raises(LockLostError, match="thief holds it now"):
            beat.check()
    assert lock.holder(5) == "thief"  # the release did not free the new holder's lock


def test_a_lock_whose_holder_stopped_renewing_is_taken_over_naming_it(wk_redis, redis_prefix) -> None:
    lock = RedisReviewLock(wk_redis, redis_prefix)
    assert lock.acquire(9, "dead-one", 0.3) is None
    wait_for(lambda: lock.holder(9) is None, 5, "the dead holder's lease to run out")
    dead = lock.acquire(9, "next-one", 5)
    assert dead is not None and dead.holder == "dead-one" and dead.last_heartbeat
    assert lock.release(9, "next-one") is True
    assert lock.acquire(9, "third-one", 5) is None  # a clean release leaves no dead holder
    lock.release(9, "third-one")
    assert lock.acquire(9, "third-one", 0.3) is None
    wait_for(lambda: lock.holder(9) is None, 5, "its own lease to run out")
    assert lock.acquire(9, "third-one", 5) is None  # its own lock, re-taken: no takeover


def test_a_file_lock_of_a_killed_process_is_free_and_names_it(tmp_path) -> None:
    code = ("import sys, time; from pathlib import Path; from services.locks import FileReviewLock\n"
            "lock = FileReviewLock(Path(sys.argv[1])); lock.acquire(4, 'killed-update')\n"
            "print('held', flush=True)\n"
            "time.sleep(120)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    with pytest.raises(ReviewBusyError, match="killed-update"):
        FileReviewLock(tmp_path).acquire(4, "next")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    dead = FileReviewLock(tmp_path).acquire(4, "next")  # the kernel freed the flock
    assert dead is not None and dead.holder.startswith("killed-update (pid ")


def test_an_update_killed_holding_the_lock_is_taken_over_within_a_lease(
        db_url, redis_url, redis_prefix, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Stands for: `living-review update` on a host with Redis, killed (SIGKILL, as by the OOM
    killer) in the middle of its harvest, and the next update started a moment later — on SQLite
    and PostgreSQL. Before, the dead holder's lock blocked every update for 3 hours."""
    env = {**os.environ, "DATABASE_URL": db_url, "REDIS_URL": redis_url,
           "REDIS_KEY_PREFIX": redis_prefix, "UPDATE_LOCK_LEASE": str(LEASE),
           "ENTREZ_RATE_LIMIT": "0", "ENTREZ_BATCH_SIZE": "3", "ENTREZ_MAX_TRIES": "2",
           "DATA_DIR": str(tmp_path / "var")}
    command = [sys.executable, "-m", "services.cli"]
    run = lambda *a: subprocess.run([*command, *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=300)
    assert run("init").returncode == 0
    client = redis.Redis.from_url(redis_url)
    key = f"{redis_prefix}lock:review:1"
    with ReplayServer(DEMO, faults="slow=1@efetch:*") as replay:
        env["ENTREZ_BASE_URL"] = replay.url
        first = subprocess.Popen([*command, "update", "--until", "2024-01-07"], cwd=ROOT,
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        holder = wait_for(lambda: client.get(key), 60, "the update to take the lock").decode()
        # more than a lease of fetching (one efetch a second): the heartbeat kept the lock
        wait_for(lambda: sum(e["utility"] == "efetch" for e in replay.state.log) >= LEASE + 1,
                 60, "the harvest to fetch for longer than a lease")
        assert client.get(key) == holder.encode()
        first.send_signal(signal.SIGKILL)
        first.wait(10)
        replay.set_faults(None)
        # refused while the dead holder's lease runs out, then the next update takes over
        result = wait_for(lambda: (lambda r: r if "is running" not in r.stderr else None)(
            run("update", "--until", "2024-01-07")), 6 * LEASE + 30, "an update to start")
    assert result.returncode == 0, result.stderr
    assert f"took over the lock from a dead holder ({holder}, last heartbeat" in result.stderr
    engine = make_engine(db_url)
    with make_sessionmaker(engine)() as session:
        [audit] = session.scalars(select(AuditLog).where(AuditLog.action == "lock.taken_over"))
        assert audit.detail["from"] == holder and audit.detail["by"].startswith("cli:")
        assert [r.status for r in session.scalars(select(SearchRun))] == ["succeeded"]
    engine.dispose()
    assert client.get(key) is None
    client.close()


def test_a_new_trigger_takes_over_from_a_killed_worker_within_a_lease(
        wk_sessions, wk_pg_url, wk_redis, redis_prefix, ldh, replay, workers) -> None:  # type: ignore[no-untyped-def]
    """Stands for: the Celery worker killed (SIGKILL to the whole container) in the middle of a
    harvest, a new worker, and the next scheduled trigger arriving before the old message is
    delivered again (visibility timeout of hours). Before, the dead update's lock refused every
    trigger for 3 hours."""
    from test_worker_faults import env_for, send
    from wk_parts import WorkerProcess

    kw = wk_redis.connection_pool.connection_kwargs
    redis_url = f"redis://127.0.0.1:{kw['port']}/{kw['db']}"
    env = env_for(wk_pg_url, redis_url, redis_prefix, replay, UPDATE_LOCK_LEASE=str(LEASE),
                  CELERY_VISIBILITY_TIMEOUT="3600", ENTREZ_BATCH_SIZE="3")
    replay.set_faults("slow=1@efetch:*")
    first = WorkerProcess(env, "wk-lease-1")
    workers.append(first)
    first.start()
    send("living_review.start_update", ldh, redis_url=redis_url, prefix=redis_prefix,
         until="2024-01-20")
    key = f"{redis_prefix}lock:review:{ldh}"
    holder = wait_for(lambda: wk_redis.get(key), 60, "the update to take the lock").decode()
    wait_for(lambda: sum(e["utility"] == "efetch" for e in replay.state.log) >= LEASE + 1, 60,
             "the harvest to fetch for longer than a lease")
    assert wk_redis.get(key) == holder.encode()  # renewed by the step's heartbeat
    first.kill()
    replay.set_faults(None)
    wait_for(lambda: wk_redis.get(key) is None, 6 * LEASE, "the dead worker's lease to run out")
    second = WorkerProcess(env, "wk-lease-2")
    workers.append(second)
    second.start()
    send("living_review.start_update", ldh, redis_url=redis_url, prefix=redis_prefix,
         until="2024-01-20")
    wait_for(lambda: [r.status for r in _runs(wk_sessions)] == ["succeeded"], 120,
             "the next trigger to finish the run")
    with wk_sessions() as session:
        [audit] = session.scalars(select(AuditLog).where(AuditLog.action == "lock.taken_over"))
    assert audit.detail["from"] == holder and audit.detail["by"] != holder
    assert f"took over the lock from a dead holder ({holder}, last heartbeat" in second.output()


def _runs(sessions) -> list[SearchRun]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return list(session.scalars(select(SearchRun).order_by(SearchRun.id)))
