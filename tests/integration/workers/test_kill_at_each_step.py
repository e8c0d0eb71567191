"""One run engine, two paths: an update whose process died after each step is finished by the
in-process command or by a Celery worker, with the same end state — one succeeded run, no
duplicate records, the window asked again when the harvest had not committed, one digest.

A step moves the run to its next state only in its last transaction (the harvest and the
pre-screening commit their chunks before it, and resume from them), so a process killed during
step N leaves the run in the state step N-1 wrote: the test writes exactly that state with the engine's own steps (as the
killed process did), then lets each path take over. A real SIGKILL of the in-process command in
the middle of its harvest is checked too (the Celery worker's is in test_worker_faults.py).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select
from test_worker_faults import env_for, send
from wk_parts import DEMO, ROOT, WorkerProcess, wait_for

from db.models import EstimateSnapshot, OutboxEmail, Record, Review, ReviewRecord, SearchRun
from services import runs
from services import update as steps
from services.protocol import load_protocol
from services.pubmed.client import ClientConfig, EntrezClient
from services.pubmed.ratelimit import NoRateLimit
from services.pubmed.replay import ReplayServer

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]
UNTIL = "2024-01-07"
WINDOW = "2023/10/01:2024/01/07[crdt]"
DIED_AFTER = [runs.RunStatus.STARTED, runs.RunStatus.HARVESTED, runs.RunStatus.SCREENED,
              runs.RunStatus.RECOMPUTED]


@pytest.fixture
def reviews(tmp_path: Path) -> Path:
    """The LDH protocol with a digest at every update (so "exactly one digest" can be counted)."""
    folder = tmp_path / "reviews"
    shutil.copytree(ROOT / "reviews" / "ldh_resorption", folder / "ldh_resorption")
    path = folder / "ldh_resorption" / "protocol.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("periodic_no_change = false", "periodic_no_change = true"),
                    encoding="utf-8")
    return folder


@pytest.fixture
def replay() -> ReplayServer:
    with ReplayServer(DEMO) as server:
        yield server  # type: ignore[misc]


def base_env(pg_url: str, reviews: Path, replay: ReplayServer) -> dict[str, str]:
    return {**os.environ, "DATABASE_URL": pg_url, "REVIEWS_DIR": str(reviews),
            "ENTREZ_BASE_URL": replay.url, "ENTREZ_RATE_LIMIT": "0", "ENTREZ_MAX_TRIES": "2",
            "ENTREZ_BACKOFF_BASE": "0.05", "DATA_DIR": str(reviews.parent / "var")}


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def die_after(status: runs.RunStatus, sessions, reviews: Path, replay: ReplayServer) -> None:  # type: ignore[no-untyped-def]
    """What a process killed during the step after ``status`` left in the database."""
    import datetime as dt

    protocol = load_protocol(reviews, "ldh_resorption")
    with sessions.begin() as session:
        run_id = runs.begin(session, protocol, dt.date.fromisoformat(UNTIL)).id
    client = EntrezClient(ClientConfig(base_url=replay.url, api_key="k", timeout=10), NoRateLimit())
    order = DIED_AFTER.index(status)
    if order >= 1:
        steps.harvest(sessions, run_id, client)
    if order >= 2:
        steps.prescreen(sessions, run_id)
        steps.propose(sessions, run_id)
    if order >= 3:
        steps.recompute(sessions, run_id)
    with sessions() as session:
        assert session.get_one(SearchRun, run_id).status == status


def end_state(sessions) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        count = lambda model: session.scalar(select(func.count()).select_from(model))  # noqa: E731
        return {
            "runs": [(r.status, r.window_start.isoformat(), r.window_end.isoformat(), r.n_new)
                     for r in session.scalars(select(SearchRun).order_by(SearchRun.id))],
            "records": count(Record),
            "distinct_pmids": session.scalar(select(func.count(func.distinct(Record.pmid)))),
            "review_records": count(ReviewRecord),
            "update_snapshots": session.scalar(select(func.count()).where(
                EstimateSnapshot.trigger == "update")),
            "digests": sorted((row.snapshot_id, row.recipient) for row in session.execute(
                select(OutboxEmail.snapshot_id, OutboxEmail.recipient))),
        }


def asked_for_window(replay: ReplayServer) -> int:
    return sum(1 for e in replay.state.log
               if e["utility"] == "esearch" and WINDOW in e["params"].get("term", ""))


def expected(sessions) -> dict[str, object]:  # type: ignore[no-untyped-def]
    with sessions() as session:
        snapshot = session.scalar(select(EstimateSnapshot.id).where(
            EstimateSnapshot.trigger == "update"))
    return {"runs": [("succeeded", "2023-10-01", UNTIL, 10)], "records": 10, "distinct_pmids": 10,
            "review_records": 10, "update_snapshots": 1,
            "digests": [(snapshot, "followers@example.org")]}


@pytest.mark.parametrize("status", DIED_AFTER, ids=str)
def test_in_process_path_finishes_a_run_that_died_after_each_step(
        status, wk_sessions, wk_pg_url, reviews, replay) -> None:  # type: ignore[no-untyped-def]
    env = base_env(wk_pg_url, reviews, replay)
    assert cli("init", env=env).returncode == 0
    die_after(status, wk_sessions, reviews, replay)
    before = asked_for_window(replay)
    result = cli("update", "--until", UNTIL, env=env)
    assert result.returncode == 0, result.stderr
    assert end_state(wk_sessions) == expected(wk_sessions)
    assert asked_for_window(replay) - before == (1 if status == runs.RunStatus.STARTED else 0)


def update_on_a_worker(db: str, sessions, redis_url: str, prefix: str, reviews: Path,  # type: ignore[no-untyped-def]
                       replay: ReplayServer, workers: list[WorkerProcess], name: str,
                       until: str) -> WorkerProcess:
    """Start a worker on ``db`` and send it the review's update up to ``until``."""
    worker = WorkerProcess({**env_for(db, redis_url, prefix, replay), "REVIEWS_DIR": str(reviews)},
                           name)
    workers.append(worker)
    worker.start()
    with sessions() as session:
        review_id = session.scalars(select(Review.id)).one()
    send("living_review.start_update", review_id, redis_url=redis_url, prefix=prefix, until=until)
    return worker


@pytest.mark.parametrize("status", DIED_AFTER, ids=str)
def test_celery_path_finishes_a_run_that_died_after_each_step(
        status, wk_sessions, wk_pg_url, wk_redis, redis_prefix, reviews, replay,
        workers) -> None:  # type: ignore[no-untyped-def]
    env = base_env(wk_pg_url, reviews, replay)
    assert cli("init", env=env).returncode == 0
    die_after(status, wk_sessions, reviews, replay)
    before = asked_for_window(replay)
    kw = wk_redis.connection_pool.connection_kwargs
    redis_url = f"redis://127.0.0.1:{kw['port']}/{kw['db']}"
    update_on_a_worker(wk_pg_url, wk_sessions, redis_url, redis_prefix, reviews, replay, workers,
                       f"wk-resume-{status}", UNTIL)
    wait_for(lambda: end_state(wk_sessions)["runs"][0][0] == "succeeded", 90,
             f"the worker to finish the run left {status}")
    assert end_state(wk_sessions) == expected(wk_sessions)
    assert asked_for_window(replay) - before == (1 if status == runs.RunStatus.STARTED else 0)


def test_in_process_update_killed_mid_harvest_is_finished_by_the_next(
        wk_sessions, wk_pg_url, reviews, replay) -> None:  # type: ignore[no-untyped-def]
    env = {**base_env(wk_pg_url, reviews, replay), "ENTREZ_BATCH_SIZE": "3"}
    assert cli("init", env=env).returncode == 0
    replay.set_faults("slow=1@efetch:*")
    proc = subprocess.Popen([sys.executable, "-m", "services.cli", "update", "--until", UNTIL],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: sum(e["utility"] == "efetch" for e in replay.state.log) >= 2, 60,
             "the harvest to be fetching")
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    assert end_state(wk_sessions)["runs"] == [("started", "2023-10-01", UNTIL, 0)]
    replay.set_faults(None)
    before = asked_for_window(replay)
    result = cli("update", "--until", UNTIL, env=env)
    assert result.returncode == 0, result.stderr
    assert end_state(wk_sessions) == expected(wk_sessions)
    assert asked_for_window(replay) - before == 1


# --- an update killed after its harvest committed, then a later trigger (issue 18, item 8) ---
LATER = "2024-01-14"  # the later trigger asks for a week more than the killed update did


def digest_counts(sessions) -> list[tuple[int, int, int, str]]:  # type: ignore[no-untyped-def]
    """Per digest: its run, the run's found and new figures, and the PRISMA lines it shows."""
    with sessions() as session:
        rows = session.execute(
            select(SearchRun.id, SearchRun.n_found, SearchRun.n_new, OutboxEmail.body_text)
            .join(EstimateSnapshot, EstimateSnapshot.search_run_id == SearchRun.id)
            .join(OutboxEmail, OutboxEmail.snapshot_id == EstimateSnapshot.id)
            .order_by(SearchRun.id))
        return [(run_id, found, new, " | ".join(
            line.strip() for line in text.splitlines()
            if line.strip().startswith(("Records identified", "New records"))))
            for run_id, found, new, text in rows]


@pytest.mark.parametrize("path", ["in-process", "celery"])
def test_a_later_update_finishes_a_run_killed_after_its_harvest_then_harvests_the_new_window(
        path, db_url, redis_url, redis_prefix, reviews, replay, workers) -> None:  # type: ignore[no-untyped-def]
    """Stands for: an update whose process was killed right after its harvest committed (the
    run left ``harvested``), and the next trigger a week later, on SQLite and PostgreSQL."""
    from db.session import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    env = base_env(db_url, reviews, replay)
    assert cli("init", env=env).returncode == 0
    die_after(runs.RunStatus.HARVESTED, sessions, reviews, replay)
    if path == "in-process":
        result = cli("update", "--until", LATER, env=env)
        assert result.returncode == 0, result.stderr
        assert "finished the interrupted run 1 first" in result.stdout
    else:
        update_on_a_worker(db_url, sessions, redis_url, redis_prefix, reviews, replay, workers,
                           f"wk-later-{db_url[:6]}", LATER)
        wait_for(lambda: [r[0] for r in end_state(sessions)["runs"]] == ["succeeded"] * 2, 120,
                 "the interrupted run and the next window to succeed")
        wait_for(lambda: len(digest_counts(sessions)) == 2, 30, "the second digest")
    state = end_state(sessions)
    assert [r[:3] for r in state["runs"]] == [("succeeded", "2023-10-01", UNTIL),
                                              ("succeeded", "2024-01-04", LATER)]
    found = [r for r in digest_counts(sessions)]
    assert [(run_id, text) for run_id, _, _, text in found] == [
        (run_id, f"Records identified (this update): {n_found} | New records: {n_new}")
        for run_id, n_found, n_new, _ in found]
    assert [run_id for run_id, *_ in found] == [1, 2]
    assert found[0][1:3] == (10, 10)  # the interrupted run's own figures, not 0
    assert state["distinct_pmids"] == state["records"]
    engine.dispose()
