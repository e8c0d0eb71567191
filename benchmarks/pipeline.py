"""Update pipeline on Celery: N synthetic records through the replay server, 1/2/4 workers.

    python benchmarks/pipeline.py [--records 50000] [--reviews 4] [--workers 1,2,4] [--json]

Needs PostgreSQL (``--pg-admin``, default postgresql://postgres@127.0.0.1:5432/postgres; a
throw-away database is created and dropped) and Redis (``--redis``, default DB 14, flushed).
The records are split by create date over ``--reviews`` reviews (copies of the LDH protocol
with their own start dates), because one review's update is a sequential chain — more workers
speed up several reviews, not one; ``--reviews 1`` shows the single-chain case. For each worker
count: fresh database, ``celery worker`` subprocesses (one process each), one
``start_update`` per review sent at once; printed are wall time from send to the last run
finished, records/s, and where the time goes (summed task run times from the workers' logs).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psycopg  # noqa: E402
import redis  # noqa: E402
from celery import Celery  # noqa: E402
from sqlalchemy import select  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import SearchRun  # noqa: E402
from db.session import make_engine, make_sessionmaker  # noqa: E402
from services.protocol import parse_protocol  # noqa: E402
from services.pubmed.xmlbuild import write_synthetic_snapshot  # noqa: E402
from services.reviews import ensure_review  # noqa: E402

START, DAYS = dt.date(2024, 1, 1), 60
TASK_LINE = re.compile(r"Task living_review\.(\w+)\[[^\]]+\] succeeded in ([\d.]+)s")


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, timeout: float = 120) -> None:
    """Wait until the replay server accepts connections."""
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"the replay server did not listen on {port} within {timeout:.0f} s")


def write_reviews(folder: Path, count: int) -> list[tuple[str, dt.date, dt.date]]:
    """``count`` copies of the LDH protocol, each owning a slice of the create dates."""
    text = (ROOT / "reviews" / "ldh_resorption" / "protocol.toml").read_text()
    slices = []
    for i in range(count):
        lo = START + dt.timedelta(days=i * DAYS // count)
        hi = START + dt.timedelta(days=(i + 1) * DAYS // count - 1)
        slug = f"bench_{i}"
        body = re.sub(r'(?m)^slug = ".*"', f'slug = "{slug}"', text)
        body = re.sub(r'(?m)^start_date = ".*"', f'start_date = "{lo.isoformat()}"', body)
        body = re.sub(r"(?m)^overlap_days = \d+", "overlap_days = 0", body)
        (folder / slug).mkdir(parents=True, exist_ok=True)
        (folder / slug / "protocol.toml").write_text(body)
        slices.append((slug, lo, hi))
    return slices


def run_once(
    args: argparse.Namespace,
    n_workers: int,
    snapshot_url: str,
    reviews_dir: Path,
    slices: list[tuple[str, dt.date, dt.date]],
    work: Path,
) -> dict[str, object]:
    name = f"lr_wk_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.pg_admin, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    with factory.begin() as session:
        ids = {}
        for slug, _lo, _hi in slices:
            text = (reviews_dir / slug / "protocol.toml").read_text()
            ids[slug] = ensure_review(session, parse_protocol(text, source=slug, slug=slug)).id
    redis.Redis.from_url(args.redis).flushdb()
    env = dict(
        os.environ,
        DATABASE_URL=url,
        REDIS_URL=args.redis,
        REVIEWS_DIR=str(reviews_dir),
        DATA_DIR=str(work / "data"),
        ENTREZ_BASE_URL=snapshot_url,
        ENTREZ_RATE_LIMIT="0",
        ENTREZ_API_KEY="bench",
        SMTP_PORT=str(free_port()),
    )
    logs, procs = [], []
    for i in range(n_workers):
        log = work / f"worker-{n_workers}-{i}.log"
        logs.append(log)
        with open(log, "wb") as handle:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "celery",
                        "-A",
                        "workers.celery_app",
                        "worker",
                        "-l",
                        "info",
                        "-c",
                        "1",
                        "-n",
                        f"bench{i}@%h",
                        "-Q",
                        "living-review",
                        "--without-gossip",
                        "--without-mingle",
                        "--without-heartbeat",
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
    try:
        deadline = time.monotonic() + 120
        while not all(" ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline:
                raise SystemExit("workers did not become ready within 120 s")
            time.sleep(0.2)
        sender = Celery(broker=args.redis)
        started = time.perf_counter()
        for slug, _lo, hi in slices:
            sender.send_task(
                "living_review.start_update",
                args=(ids[slug],),
                kwargs={"until": hi.isoformat()},
                queue="living-review",
            )
        done = wait_runs(factory, len(slices), args.timeout)
        wall = time.perf_counter() - started
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            proc.wait(60)
        engine.dispose()
        with psycopg.connect(args.pg_admin, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    task_seconds: dict[str, float] = defaultdict(float)
    for log in logs:
        for task, seconds in TASK_LINE.findall(log.read_text(errors="replace")):
            task_seconds[task] += float(seconds)
    records = sum(n for _status, n in done)
    return {
        "workers": n_workers,
        "reviews": len(slices),
        "records": records,
        "statuses": sorted({s for s, _ in done}),
        "wall_seconds": round(wall, 1),
        "records_per_s": round(records / wall),
        "task_seconds": {k: round(v, 1) for k, v in sorted(task_seconds.items())},
    }


def wait_runs(factory, count: int, timeout: float) -> list[tuple[str, int]]:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with factory() as session:
            rows = session.execute(select(SearchRun.status, SearchRun.n_fetched)).all()
        finished = [(s, n) for s, n in rows if s == "succeeded"]
        if len(finished) >= count:
            return finished
        time.sleep(0.5)
    raise SystemExit(f"timed out after {timeout}s waiting for {count} runs: {rows}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--reviews", type=int, default=4)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    parser.add_argument("--timeout", type=float, default=1800)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lr-pipeline-bench-"))
    try:
        snapshot = write_synthetic_snapshot(work / "snapshot", args.records, START, DAYS)
        slices = write_reviews(work / "reviews", args.reviews)
        port = free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "services.cli",
                "replay-server",
                "--snapshot",
                str(snapshot),
                "--port",
                str(port),
            ],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_port(port)
        url = f"http://127.0.0.1:{port}/entrez/eutils/"
        try:
            results = [
                run_once(args, int(n), url, work / "reviews", slices, work)
                for n in args.workers.split(",")
            ]
        finally:
            server.terminate()
            server.wait(30)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for r in results:
        print(
            f"{r['workers']} worker(s), {r['reviews']} review(s): {r['records']} records in "
            f"{r['wall_seconds']} s = {r['records_per_s']} records/s; runs {r['statuses']}; "
            f"task time (s): {r['task_seconds']}"
        )


if __name__ == "__main__":
    main()
