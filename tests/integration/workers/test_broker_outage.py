"""A Redis outage (the broker) while an update's step is in flight, on a real worker.

Stands for: the one Redis of a compose deployment crashing (SIGKILL; its append-only file kept)
while the worker's harvest is fetching from PubMed, staying down longer than a publish retry,
then coming back on the same address. Before the fix the harvest committed, the chain's next
message could not be sent, and the run was marked failed: the next trigger harvested the whole
window again.
"""

from __future__ import annotations

import signal

import pytest
from sqlalchemy import select
from test_worker_faults import env_for, send
from wk_parts import WorkerProcess, start_redis, wait_for

from db.models import AuditLog, SearchRun

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]
UNTIL = "2024-01-20"


def states(sessions) -> list[tuple[str, str | None]]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        return [(r.status, r.error) for r in session.scalars(select(SearchRun).order_by(SearchRun.id))]


def test_broker_outage_mid_step_the_chain_resumes_from_the_committed_step(
        wk_sessions, wk_pg_url, redis_prefix, ldh, replay, workers, own_redis) -> None:  # type: ignore[no-untyped-def]
    port, folder, procs = own_redis
    start_redis(port, folder, procs)
    redis_url = f"redis://127.0.0.1:{port}/0"
    env = env_for(wk_pg_url, redis_url, redis_prefix, replay, CELERY_VISIBILITY_TIMEOUT="30",
                  ENTREZ_BATCH_SIZE="3", UPDATE_LOCK_LEASE="6")
    replay.set_faults("slow=1@efetch:*")  # each efetch takes a second: the harvest is in flight
    worker = WorkerProcess(env, "wk-outage")
    workers.append(worker)
    worker.start()
    send("living_review.start_update", ldh, redis_url=redis_url, prefix=redis_prefix, until=UNTIL)
    wait_for(lambda: sum(e["utility"] == "efetch" for e in replay.state.log) >= 2, 60,
             "the harvest to be fetching")
    procs[-1].send_signal(signal.SIGKILL)  # Redis crashes
    procs[-1].wait(10)
    # an outage longer than the publish retries: the worker has failed to reconnect 5 times
    wait_for(lambda: worker.output().count("consumer: Cannot connect to") >= 5, 90,
             "a long outage")
    replay.set_faults(None)
    start_redis(port, folder, procs)  # Redis comes back on the same port, its data kept
    wait_for(lambda: states(wk_sessions)[0][0] in ("succeeded", "failed"), 180,
             "the run to end after Redis came back")
    assert states(wk_sessions) == [("succeeded", None)]
    # the window was searched once: the redelivered step did not fetch it a second time, or
    # (when the outage cancelled the harvest before it committed) once after the outage
    with wk_sessions() as session:
        harvested = session.scalars(select(AuditLog).where(AuditLog.action == "run.harvested"))
        assert len(list(harvested)) == 1
    assert worker.proc is not None
    assert worker.proc.poll() is None or worker.proc.returncode != 0
