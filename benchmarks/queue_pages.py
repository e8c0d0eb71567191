"""Benchmark: the screening queue with 100,000 queued records in PostgreSQL.

Creates a throw-away database (``lr_bench_<random>``) on the local server, migrates it, loads
N records queued for title/abstract screening with classifier priorities, signs a reviewer in
and measures, through the real app (in-process ASGI client), the server time reported in each
response's ``Server-Timing`` header:

- the next-record page (GET /reviews/<slug>/screen), and
- a decision round-trip: the form POST that records a decision plus the next-record page it
  redirects to.

Usage: python benchmarks/queue_pages.py [--records 100000] [--requests 300]
       [--refit-seconds 2] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]
Prints p50/p95/max in milliseconds (target p95 < 50 ms for both), the SQL statements per
request, and the load average around the measurement (the machine may be shared).

The queue's active-learning refit is on as in the product (``--refit-seconds``, the setting
QUEUE_REFIT_SECONDS; ``--refit-seconds -1`` turns it off): before measuring, two decisions are
made and the first refit (the pool's features fitted, the order of every queued record
rewritten) is awaited; during the measurement refits keep running in their process, and the
refits completed are printed with their durations.
"""

from __future__ import annotations

# Run as a script: put the project root first on the path.
import sys
from pathlib import Path

_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402

import psycopg  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import event, insert, select  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import Membership, Record, Review, ReviewRecord, User  # noqa: E402
from db.session import make_engine, make_sessionmaker  # noqa: E402
from services.accounts import hash_password  # noqa: E402
from services.protocol import parse_protocol  # noqa: E402
from services.screening.active import QueueRefitter  # noqa: E402
from services.settings import Settings  # noqa: E402
from services.web import create_app  # noqa: E402

SLUG = "bench_review"
PASSWORD = "benchmark password"


def protocol() -> dict:  # type: ignore[type-arg]
    """The LDH protocol as review ``bench_review``: single screening, two exclusion reasons."""
    text = (_HERE.parent / "reviews" / "ldh_resorption" / "protocol.toml").read_text()
    data = parse_protocol(text, source="benchmark").model_dump(mode="json")
    data["slug"], data["title"] = SLUG, "Benchmark"
    data["screening"] |= {
        "reviewers_per_record": 1,
        "exclusion_reasons": ["Off topic", "No data"],
        "keywords": ["resorption", "lumbar", "herniation"],
    }
    return data


def load(url: str, n: int) -> None:
    """Migrate and fill the database with ``n`` queued records and one reviewer."""
    engine = make_engine(url)
    upgrade(engine)
    rng = random.Random(7)
    factory = make_sessionmaker(engine)
    with factory() as session, session.begin():
        review = Review(slug=SLUG, title="Benchmark", protocol=protocol(), protocol_hash="b")
        user = User(email="bench@example.org", name="Bench", password_hash=hash_password(PASSWORD))
        session.add_all([review, user])
        session.flush()
        session.add(Membership(user_id=user.id, review_id=review.id, role="reviewer"))
        review_id = review.id
    batch = 10_000
    for start in range(0, n, batch):
        rows = [
            {
                "pmid": 10_000_000 + i,
                "title": f"Lumbar disc herniation resorption study {i}",
                "abstract": "BACKGROUND: Spontaneous resorption. " * 20,
                "journal": "Spine",
                "year": 2000 + i % 25,
                "content_hash": f"{i:064d}",
                "abstract_sections": [],
                "authors": [],
                "affiliations": [],
                "languages": ["eng"],
                "publication_types": ["Journal Article"],
                "mesh": [],
                "keywords": [],
                "comments_corrections": [],
            }
            for i in range(start, min(n, start + batch))
        ]
        with factory() as session, session.begin():
            session.execute(insert(Record), rows)
            ids = session.scalars(
                select(Record.id).where(
                    Record.pmid >= 10_000_000 + start, Record.pmid < 10_000_000 + start + batch
                )
            )
            session.execute(
                insert(ReviewRecord),
                [
                    {
                        "review_id": review_id,
                        "record_id": rid,
                        "state": "queued",
                        "stage": "title_abstract",
                        "score": (s := rng.random()),
                        "priority": s,
                        "model_version": "bench",
                        "flags": [],
                    }
                    for rid in ids
                ],
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")
    engine.dispose()


def server_ms(response) -> float:  # type: ignore[no-untyped-def]
    header = response.headers["server-timing"]
    return float(header.split("dur=")[1])


def summary(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    unit = "" if name.startswith("SQL") else " ms"
    return (
        f"{name:<47} n={len(values):4d}  p50={statistics.median(values):6.1f}{unit}  "
        f"p95={p95:6.1f}{unit}  max={max(values):6.1f}{unit}"
    )


def measure(url: str, requests: int, refit_seconds: float) -> None:
    """Run the app as a server does (lifespan included) and print the figures."""
    settings = Settings(
        database_url=url,
        secret_key="benchmark-" + "z" * 30,
        environment="test",
        base_url="http://testserver",
        queue_refit_seconds=None if refit_seconds < 0 else refit_seconds,
    )
    app = create_app(settings)
    statements = [0]
    event.listen(
        app.state.engine,
        "before_cursor_execute",
        lambda *_: statements.__setitem__(0, statements[0] + 1),
    )
    refitter = app.state.refitter
    with TestClient(app, follow_redirects=False) as client:
        figures = screen(client, requests, statements, refitter)
        refits = list(refitter.results) if refitter else []
    for name, values in figures.items():
        print(summary(name, values))
    if refitter is None:
        print("queue refit: off")
    else:
        done = [r for r in refits if r.model_version]
        print(f"queue refits completed (first one awaited before measuring): {len(done)}; "
              + ", ".join(f"{r.seconds:.1f} s ({r.labelled} labels, {r.reordered} reordered)"
                          for r in done))
    app.state.engine.dispose()


def screen(
    client: TestClient, requests: int, statements: list[int], refitter: QueueRefitter | None
) -> dict[str, list[float]]:
    """Sign in, then ``requests`` times: the next-record page, a decision and the page it
    redirects to (and every 10th time the progress panel). Server times in ms, by figure."""
    token = client.get("/api/session").json()["csrf_token"]
    login = client.post(
        "/api/session",
        json={"email": "bench@example.org", "password": PASSWORD},
        headers={"X-CSRF-Token": token},
    )
    token = login.json()["csrf_token"]
    if refitter is not None:
        first_refit(client, token, refitter)
    page_ms, post_ms, round_ms, client_ms, progress_ms = [], [], [], [], []
    page_sql, post_sql = [], []
    for _ in range(20):  # warm-up
        client.get(f"/reviews/{SLUG}/screen")
    for i in range(requests):
        statements[0] = 0
        page = client.get(f"/reviews/{SLUG}/screen")
        page_sql.append(float(statements[0]))
        page_ms.append(server_ms(page))
        rr_id = page.text.split('data-review-record="')[1].split('"')[0]
        choice = "include" if i % 3 else "exclude::Off topic"
        started = time.perf_counter()
        statements[0] = 0
        posted = client.post(
            f"/reviews/{SLUG}/screen",
            data={
                "csrf_token": token,
                "review_record_id": rr_id,
                "stage": "title_abstract",
                "choice": choice,
                "note": "",
            },
        )
        post_sql.append(float(statements[0]))
        following = client.get(posted.headers["location"])
        client_ms.append((time.perf_counter() - started) * 1000)
        if posted.status_code != 303 or following.status_code != 200:
            raise SystemExit(f"unexpected status {posted.status_code}/{following.status_code}")
        post_ms.append(server_ms(posted))
        if i % 10 == 0:
            progress_ms.append(server_ms(client.get(f"/api/reviews/{SLUG}/progress")))
        round_ms.append(server_ms(posted) + server_ms(following))
    return {
        "next-record page (server)": page_ms,
        "decision POST (server)": post_ms,
        "decision round-trip POST+next page (server)": round_ms,
        "decision round-trip (client wall, in-process)": client_ms,
        "progress panel, fetched after the page (server)": progress_ms,
        "SQL statements per next-record page": page_sql,
        "SQL statements per decision POST": post_sql,
    }


def first_refit(client: TestClient, token: str, refitter: QueueRefitter) -> None:
    """Two decisions (an include, an exclude), then wait for the refit they trigger."""
    for choice in ("include", "exclude::Off topic"):
        page = client.get(f"/reviews/{SLUG}/screen")
        rr_id = page.text.split('data-review-record="')[1].split('"')[0]
        client.post(f"/reviews/{SLUG}/screen", data={
            "csrf_token": token, "review_record_id": rr_id, "stage": "title_abstract",
            "choice": choice, "note": ""})
    started = time.perf_counter()
    while not any(r.model_version for r in refitter.results):
        if time.perf_counter() - started > 1800:
            raise SystemExit("the first queue refit did not finish within 30 minutes")
        time.sleep(0.5)
    first = next(r for r in refitter.results if r.model_version)
    print(f"first queue refit (pool features fitted): {first.seconds:.1f} s, "
          f"{first.reordered} queued records reordered")


def load_average() -> str:
    """The 1/5/15-minute load averages: the figures depend on what else the machine runs."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--refit-seconds", type=float, default=2.0,
                        help="QUEUE_REFIT_SECONDS of the app; -1 turns the refit off")
    args = parser.parse_args()
    name = f"lr_bench_{uuid.uuid4().hex[:10]}"
    base = args.admin_url.rsplit("/", 1)[0]
    url = base.replace("postgresql://", "postgresql+psycopg://", 1) + f"/{name}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        started = time.perf_counter()
        load(url, args.records)
        print(
            f"loaded {args.records} queued records into {name} "
            f"in {time.perf_counter() - started:.1f} s"
        )
        print(f"load average before measuring: {load_average()} ({os.cpu_count()} CPUs)")
        measure(url, args.requests, args.refit_seconds)
        print(f"load average after measuring: {load_average()}")
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
