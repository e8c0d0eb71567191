"""Benchmark: reviewers screening through the API while an update stores and pre-screens records.

    python benchmarks/reviewers_during_update.py [--records 60000] [--reviewers 2]
        [--queue 3000] [--database-url sqlite | postgresql | URL] [--json]

Sets up a database (``sqlite``: a file in a temporary folder, the default; ``postgresql``: a
throw-away database on ``--pg-admin``, dropped afterwards; any other value: that URL, which
must be an empty database), a review (the LDH protocol, start date 2024-01-01) with ``--queue``
records queued for title/abstract screening in single screening and ``--reviewers`` reviewer
accounts. Then, each in its own process: the replay server (``living-review replay-server``)
serving ``--records`` synthetic records over 60 create-date days, and the web app
(``living-review serve``). While ``living-review update`` (a subprocess) harvests and
pre-screens the window, one thread per reviewer screens through the API as the queue page does:
``GET …/queue/next``, then ``POST …/decisions`` (include or exclude with a protocol reason).
A 503 is counted as an error and the same decision sent again after its ``Retry-After``, as a
client should; any other error ends that reviewer's current record.

Printed: the update's wall time and exit status; per status, the responses that were not a
success; decisions acknowledged (201) against decisions stored (read back from the database:
every acknowledged one must be there, once); p50/p95/max latency of the decision POSTs and of
the next-record GETs made while the update ran.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import Membership, Record, ReviewRecord, ScreeningDecision, User  # noqa: E402
from db.session import make_engine, make_sessionmaker  # noqa: E402
from services.accounts import hash_password  # noqa: E402
from services.protocol import parse_protocol  # noqa: E402
from services.pubmed.xmlbuild import synthetic_articles, write_synthetic_snapshot  # noqa: E402
from services.reviews import ensure_review  # noqa: E402

SLUG = "bench_live"
START, DAYS = dt.date(2024, 1, 1), 60
PASSWORD = "benchmark password"
QUEUE_PMID = 60_000_000  # the seeded queue's PMIDs (the synthetic window starts at 90,000,000)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_port(port: int, proc: subprocess.Popen[bytes], what: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"{what} did not listen on {port} within {timeout:.0f} s")


def write_review(folder: Path) -> Path:
    """The LDH protocol as review ``bench_live``, starting at START, no overlap."""
    body = (ROOT / "reviews" / "ldh_resorption" / "protocol.toml").read_text()
    body = re.sub(r'(?m)^slug = ".*"', f'slug = "{SLUG}"', body)
    body = re.sub(r'(?m)^start_date = ".*"', f'start_date = "{START.isoformat()}"', body)
    body = re.sub(r"(?m)^overlap_days = \d+", "overlap_days = 0", body)
    body = re.sub(r"(?m)^reviewers_per_record = \d+", "reviewers_per_record = 1", body)
    (folder / SLUG).mkdir(parents=True, exist_ok=True)
    (folder / SLUG / "protocol.toml").write_text(body)
    return folder / SLUG / "protocol.toml"


def seed(url: str, protocol_file: Path, queue: int, reviewers: int) -> None:
    """Migrate, create the review, ``queue`` queued records and the reviewer accounts."""
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    rng = random.Random(11)
    with factory.begin() as session:
        text = protocol_file.read_text()
        review = ensure_review(session, parse_protocol(text, source=str(protocol_file), slug=SLUG))
        password = hash_password(PASSWORD)
        for i in range(reviewers):
            user = User(email=f"reviewer{i}@example.org", name=f"Reviewer {i}",
                        password_hash=password)
            session.add(user)
            session.flush()
            session.add(Membership(user_id=user.id, review_id=review.id, role="reviewer"))
        review_id = review.id
        # texts of random words (the model trained on the reviewers' decisions needs variety)
        queued = synthetic_articles(queue, START - dt.timedelta(days=90), 60,
                                    first_pmid=QUEUE_PMID, seed=3)
        session.execute(insert(Record), [
            {
                "pmid": article.pmid, "title": article.title,
                "abstract": " ".join(text for _label, text in article.abstract),
                "journal": "Spine", "year": 2023, "content_hash": f"q{article.pmid:063d}",
                "abstract_sections": [], "authors": [], "affiliations": [],
                "languages": ["eng"], "publication_types": ["Journal Article"],
                "mesh": list(article.mesh), "keywords": [], "comments_corrections": [],
            }
            for article in queued
        ])
        ids = session.scalars(select(Record.id).where(Record.pmid >= QUEUE_PMID,
                                                      Record.pmid < QUEUE_PMID + queue))
        session.execute(insert(ReviewRecord), [
            {"review_id": review_id, "record_id": rid, "state": "queued",
             "stage": "title_abstract", "score": (s := rng.random()), "priority": s,
             "model_version": "bench", "flags": []}
            for rid in ids
        ])
    engine.dispose()


@dataclass
class Reviewer:
    """One reviewer's thread and what it saw."""

    index: int
    base: str
    acknowledged: list[int] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)
    decide_ms: list[float] = field(default_factory=list)
    next_ms: list[float] = field(default_factory=list)
    error_at: list[float] = field(default_factory=list)  # seconds since the update started
    started: float = 0.0

    def run(self, stop: threading.Event) -> None:
        rng = random.Random(self.index)
        with httpx.Client(base_url=self.base, timeout=120) as client:
            token = client.get("/api/session").json()["csrf_token"]
            signed = client.post(
                "/api/session",
                json={"email": f"reviewer{self.index}@example.org", "password": PASSWORD},
                headers={"X-CSRF-Token": token},
            )
            signed.raise_for_status()
            client.headers["X-CSRF-Token"] = signed.json()["csrf_token"]
            while not stop.is_set():
                started = time.perf_counter()
                nxt = self._send(client, "GET", f"/api/reviews/{SLUG}/queue/next", None, stop)
                self.next_ms.append((time.perf_counter() - started) * 1000)
                if nxt is None:
                    continue
                body = nxt.json()
                if body["record"] is None:
                    return
                reasons = body["exclusion_reasons"]
                decision = {"review_record_id": body["record"]["review_record_id"],
                            "stage": "title_abstract", "decision": "include"}
                if reasons and rng.random() < 0.7:
                    decision |= {"decision": "exclude", "reason": rng.choice(reasons)}
                started = time.perf_counter()
                done = self._send(client, "POST", f"/api/reviews/{SLUG}/decisions", decision, stop)
                self.decide_ms.append((time.perf_counter() - started) * 1000)
                if done is not None:
                    self.acknowledged.append(decision["review_record_id"])

    def _send(self, client: httpx.Client, method: str, path: str, body: object,
              stop: threading.Event) -> httpx.Response | None:
        """The response when it succeeded; errors counted, a 503 sent again after Retry-After."""
        while True:
            try:
                response = client.request(method, path, json=body)
            except httpx.HTTPError as exc:
                self.errors[f"{method} {type(exc).__name__}"] += 1
                return None
            if response.status_code < 400:
                return response
            self.errors[f"{method} {response.status_code}"] += 1
            self.error_at.append(time.perf_counter() - self.started)
            if response.status_code != 503 or stop.is_set():
                return None
            time.sleep(float(response.headers.get("retry-after", "1")))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(q * len(ordered)) - 1)] if ordered else float("nan")


def run(args: argparse.Namespace, work: Path, url: str) -> dict[str, object]:
    protocol_file = write_review(work / "reviews")
    seed(url, protocol_file, args.queue, args.reviewers)
    snapshot = write_synthetic_snapshot(work / "snapshot", args.records, START, DAYS)
    env = dict(os.environ, DATABASE_URL=url, REVIEWS_DIR=str(work / "reviews"),
               DATA_DIR=str(work / "data"), SECRET_KEY="benchmark-" + "k" * 40,
               ENTREZ_RATE_LIMIT="0", ENTREZ_API_KEY="bench")
    env.pop("REDIS_URL", None)  # the update runs in-process, as on the embedded default
    replay_port, web_port = free_port(), free_port()
    logs = {name: open(work / f"{name}.log", "wb") for name in ("replay", "web", "update")}  # noqa: SIM115
    procs = []
    timeline: list[tuple[float, str]] = []
    try:
        replay = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "replay-server", "--snapshot", str(snapshot),
             "--port", str(replay_port)],
            cwd=ROOT, env=env, stdout=logs["replay"], stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(replay)
        web = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "serve", "--port", str(web_port)],
            cwd=ROOT, env=env, stdout=logs["web"], stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        procs.append(web)
        wait_port(replay_port, replay, "the replay server")
        wait_port(web_port, web, "the web server")
        reviewers = [Reviewer(i, f"http://127.0.0.1:{web_port}") for i in range(args.reviewers)]
        stop = threading.Event()
        started = time.perf_counter()
        for r in reviewers:
            r.started = started
        threads = [threading.Thread(target=r.run, args=(stop,), daemon=True) for r in reviewers]
        for thread in threads:
            thread.start()
        until = START + dt.timedelta(days=DAYS - 1)
        update = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "update", "--review", SLUG,
             "--until", until.isoformat()],
            cwd=ROOT, env={**env, "PYTHONUNBUFFERED": "1",
                           "ENTREZ_BASE_URL": f"http://127.0.0.1:{replay_port}/entrez/eutils/"},
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert update.stdout is not None
        for raw in update.stdout:  # each progress line with its time since the update started
            line = raw.decode(errors="replace").rstrip()
            timeline.append((time.perf_counter() - started, line))
            logs["update"].write(raw)
        update.wait(args.timeout)
        wall = time.perf_counter() - started
        stop.set()
        for thread in threads:
            thread.join(180)
    finally:
        for proc in procs:
            os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:  # e.g. a queue refit still running in the server
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(30)
        for handle in logs.values():
            handle.close()
    engine = make_engine(url)
    with make_sessionmaker(engine)() as session:
        stored = list(session.scalars(select(ScreeningDecision.review_record_id).where(
            ScreeningDecision.source == "human", ScreeningDecision.undone_at.is_(None))))
        emails = {uid: email for uid, email in session.execute(select(User.id, User.email))}
        by_user = Counter(
            emails[uid] for uid in session.scalars(select(ScreeningDecision.user_id).where(
                ScreeningDecision.source == "human", ScreeningDecision.user_id.is_not(None)))
            if uid is not None
        )
    engine.dispose()
    acknowledged = [rr for r in reviewers for rr in r.acknowledged]
    missing = sorted(set(acknowledged) - set(stored))
    errors: Counter[str] = Counter()
    for r in reviewers:
        errors.update(r.errors)
    decide = [ms for r in reviewers for ms in r.decide_ms]
    nexts = [ms for r in reviewers for ms in r.next_ms]
    tail = [line for _t, line in timeline][-3:]
    error_at = sorted(t for r in reviewers for t in r.error_at)
    fetched = [t for t, line in timeline if line.startswith("fetched ")]
    return {
        "database": url.split(":", 1)[0],
        "records": args.records,
        "reviewers": args.reviewers,
        "update_exit": update.returncode,
        "update_seconds": round(wall, 1),
        "update_tail": tail,
        "fetch_done_at": round(fetched[-1], 1) if fetched else None,
        "errors_between": [round(error_at[0], 1), round(error_at[-1], 1)] if error_at else None,
        "errors": dict(sorted(errors.items())),
        "acknowledged": len(acknowledged),
        "stored": len(stored),
        "stored_twice": len(stored) - len(set(stored)),
        "acknowledged_missing": len(missing),
        "stored_by_user": dict(by_user),
        "decision_ms": {"n": len(decide), "p50": round(statistics.median(decide), 1) if decide else None,
                        "p95": round(percentile(decide, 0.95), 1),
                        "max": round(max(decide), 1) if decide else None},
        "next_ms": {"n": len(nexts), "p50": round(statistics.median(nexts), 1) if nexts else None,
                    "p95": round(percentile(nexts, 0.95), 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--reviewers", type=int, default=2)
    parser.add_argument("--queue", type=int, default=3_000)
    parser.add_argument("--database-url", default="sqlite")
    parser.add_argument("--pg-admin", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--keep", action="store_true", help="keep the work folder (logs)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lr-reviewers-bench-"))
    pg_name = None
    url = args.database_url
    if url == "sqlite":
        url = f"sqlite:///{work / 'bench.sqlite3'}"
    elif url == "postgresql":
        pg_name = f"lr_bench_{uuid.uuid4().hex[:10]}"
        with psycopg.connect(args.pg_admin, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{pg_name}"')
        base = args.pg_admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://", 1)
        url = f"{base}/{pg_name}"
    try:
        result = run(args, work, url)
    finally:
        if pg_name is not None:
            with psycopg.connect(args.pg_admin, autocommit=True) as admin:
                admin.execute(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
        if args.keep:
            print(f"work folder kept: {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    d, n = result["decision_ms"], result["next_ms"]
    print(
        f"{result['database']}: update of {result['records']} records took "
        f"{result['update_seconds']} s (exit {result['update_exit']})\n"
        f"  update said: {' | '.join(result['update_tail'])}\n"  # type: ignore[arg-type]
        f"  {result['reviewers']} reviewers: errors {result['errors'] or 0}; decisions "
        f"acknowledged {result['acknowledged']}, stored {result['stored']} "
        f"(acknowledged but missing {result['acknowledged_missing']}, stored twice "
        f"{result['stored_twice']}; by reviewer {result['stored_by_user']})\n"
        + (f"  errors between {result['errors_between']} s after the update started\n"
           if result["errors"] else "")
        + f"  the update's fetch ended (store began) at {result['fetch_done_at']} s\n"
        f"  decision POST latency n={d['n']} p50={d['p50']} ms p95={d['p95']} ms "  # type: ignore[index]
        f"max={d['max']} ms; next GET n={n['n']} p50={n['p50']} ms p95={n['p95']} ms"  # type: ignore[index]
    )


if __name__ == "__main__":
    main()
