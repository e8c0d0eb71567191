"""Updates on a real Celery worker (subprocess) with PostgreSQL, Redis and the replay server:
a worker killed mid-update, two updates of one review at once, a Redis restart under beat."""

from __future__ import annotations

import datetime as dt
import signal
import subprocess
import sys

import pytest
from sqlalchemy import func, select
from wk_parts import ROOT, WorkerProcess, free_port, start_redis, wait_for, worker_env

from db.models import AuditLog, Record, ReviewRecord, SearchRun
from services.pubmed.replay import ReplayServer

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]
UNTIL = "2024-01-20"


def env_for(pg: str, redis_url: str, prefix: str, replay: ReplayServer,
            **extra: str) -> dict[str, str]:
    return worker_env(pg, redis_url, prefix, free_port(), ENTREZ_BASE_URL=replay.url,
                      ENTREZ_RATE_LIMIT="0", ENTREZ_MAX_TRIES="2", ENTREZ_BACKOFF_BASE="0.1",
                      **extra)


def send(task: str, *args: object, redis_url: str, prefix: str, **kwargs: object) -> None:
    """Send a task by name, as another process (the web app, beat) would."""
    from celery import Celery

    client = Celery(broker=redis_url)
    client.conf.task_default_queue = "living-review"
    client.conf.broker_transport_options = {"global_keyprefix": prefix}
    client.send_task(task, args=args, kwargs=kwargs)


def runs(sessions) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return [(r.status, r.n_new) for r in session.scalars(select(SearchRun).order_by(SearchRun.id))]


def counts(sessions) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return (session.scalar(select(func.count(Record.id))) or 0,
                session.scalar(select(func.count(ReviewRecord.id))) or 0)


def test_sigkilled_worker_mid_update_completes_after_restart_without_duplicates(
        wk_sessions, wk_pg_url, wk_redis, redis_prefix, ldh, replay, workers) -> None:
    url = wk_redis.connection_pool.connection_kwargs
    redis_url = f"redis://127.0.0.1:{url['port']}/{url['db']}"
    env = env_for(wk_pg_url, redis_url, redis_prefix, replay, CELERY_VISIBILITY_TIMEOUT="15",
                  ENTREZ_BATCH_SIZE="3")
    replay.set_faults("slow=1@efetch:*")  # every efetch takes a second: the harvest takes a while
    first = WorkerProcess(env, "wk-kill-1")
    workers.append(first)
    first.start()
    send("living_review.start_update", ldh, redis_url=redis_url, prefix=redis_prefix, until=UNTIL)
    wait_for(lambda: sum("efetch" in str(e) for e in replay.state.log) >= 2, 60,
             "the harvest to be fetching")
    first.kill()  # SIGKILL to the whole worker: main process and children
    assert runs(wk_sessions) == [("started", 0)]
    replay.set_faults(None)
    second = WorkerProcess(env, "wk-kill-2")
    workers.append(second)
    second.start()
    done = wait_for(lambda: [r for r in runs(wk_sessions) if r[0] == "succeeded"], 90,
                    "the redelivered update to finish")
    assert len(runs(wk_sessions)) == 1 and done[0][1] > 0
    records, review_records = counts(wk_sessions)
    # every record of the update's window (the snapshot's baseline period lies before it)
    window = {e.pmid for e in replay.state.records if e.dates["crdt"] >= dt.date(2023, 10, 1)}
    assert records == len(window) == review_records
    assert wk_redis.keys(f"{redis_prefix}lock:review:*") == []


def test_two_updates_of_one_review_at_once_one_runs_other_refused(
        wk_sessions, wk_pg_url, wk_redis, redis_prefix, ldh, replay, workers) -> None:
    kw = wk_redis.connection_pool.connection_kwargs
    redis_url = f"redis://127.0.0.1:{kw['port']}/{kw['db']}"
    replay.set_faults("slow=1:3")
    worker = WorkerProcess(env_for(wk_pg_url, redis_url, redis_prefix, replay), "wk-two", concurrency=2)
    workers.append(worker)
    worker.start()
    send("living_review.start_update", ldh, redis_url=redis_url, prefix=redis_prefix, until=UNTIL)
    send("living_review.start_update", ldh, redis_url=redis_url, prefix=redis_prefix, until=UNTIL)
    wait_for(lambda: [r for r in runs(wk_sessions) if r[0] == "succeeded"], 90, "one update")
    assert len(runs(wk_sessions)) == 1
    with wk_sessions() as session:
        refused = session.scalars(select(AuditLog).where(AuditLog.action == "update.refused")).all()
    assert len(refused) == 1 and refused[0].detail["holder"].startswith(f"update:{ldh}:")
    assert "is already being updated (lock held by update:" in worker.output()


def test_redis_restart_worker_reconnects_and_schedule_goes_on(
        wk_sessions, wk_pg_url, redis_prefix, ldh, replay, workers, own_redis) -> None:
    port, folder, procs = own_redis
    start_redis(port, folder, procs)
    redis_url = f"redis://127.0.0.1:{port}/0"
    env = env_for(wk_pg_url, redis_url, redis_prefix, replay, UPDATE_SCHEDULE="ldh_resorption=4")
    worker = WorkerProcess(env, "wk-redis")
    beat = BeatProcess(env, "beat-redis")
    workers.extend([worker, beat])  # type: ignore[list-item]
    worker.start()
    beat.start()
    wait_for(lambda: len([r for r in runs(wk_sessions) if r[0] == "succeeded"]) >= 1, 90,
             "a scheduled update before the restart")
    procs[-1].send_signal(signal.SIGTERM)
    procs[-1].wait(20)
    done = "no update needed: already up to date: run 1"  # the first run searched up to today
    before = worker.output().count(done)
    start_redis(port, folder, procs)
    wait_for(lambda: worker.output().count(done) >= before + 2, 120,
             "scheduled updates handled after Redis came back")
    assert len(runs(wk_sessions)) == 1
    assert worker.proc is not None and worker.proc.poll() is None
    assert beat.proc is not None and beat.proc.poll() is None


class BeatProcess(WorkerProcess):
    """``celery beat`` as a subprocess (same lifecycle helpers as the worker)."""

    def start(self) -> None:
        self.log = ROOT / "tests" / "artifacts" / "workers" / f"{self.name}.log"
        self.log.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.log, "wb")  # noqa: SIM115 - the child owns it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workers.celery_app", "beat", "-l", "info",
             "-s", str(self.log.with_suffix(".schedule"))],
            cwd=ROOT, env=self.env, stdout=handle, stderr=subprocess.STDOUT,
            start_new_session=True)
        handle.close()


def test_second_beat_stands_by_and_sends_nothing(wk_pg_url, wk_redis, redis_prefix, ldh, replay,
                                                 workers) -> None:
    kw = wk_redis.connection_pool.connection_kwargs
    redis_url = f"redis://127.0.0.1:{kw['port']}/{kw['db']}"
    env = env_for(wk_pg_url, redis_url, redis_prefix, replay, UPDATE_SCHEDULE="ldh_resorption=1")
    beats = [BeatProcess(env, "beat-a"), BeatProcess(env, "beat-b")]
    workers.extend(beats)  # type: ignore[arg-type]
    for beat in beats:
        beat.start()
    wait_for(lambda: all("single-beat lock" in b.output() or "standing by" in b.output()
                         for b in beats), 60, "both beats to decide who schedules")
    wait_for(lambda: sum(b.output().count("Sending due task update:") for b in beats) >= 3, 60,
             "scheduled sends")
    leaders = [b for b in beats if "holds the single-beat lock" in b.output()]
    followers = [b for b in beats if "standing by" in b.output()]
    assert len(leaders) == 1 and len(followers) == 1
    assert "Sending due task update:" not in followers[0].output()
    holder = wk_redis.get(f"{redis_prefix}beat:leader").decode()
    assert f"beat {holder}: holds the single-beat lock" in leaders[0].output()
