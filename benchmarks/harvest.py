"""Harvest throughput and memory: fetch, parse, stage and apply N records from the replay server.

    python benchmarks/harvest.py [--records 50000 200000] [--database-url URL] [--json]

Each size runs in a fresh process of its own (peak RSS is per process), and the replay server in
another process again (``living-review replay-server``), so the measured process does only the
harvest's work: the harvest step as an update runs it (:func:`services.update.harvest`: esearch,
efetch batch by batch, each batch parsed and staged as it arrives, then the staged window applied
to ``records`` in chunks). Printed per size: wall time of the harvest, of fetching + staging and
of applying, time spent parsing (lxml), records/s end to end, the resident memory before the
harvest and the process's peak resident memory (``ru_maxrss``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.session import make_engine, make_sessionmaker  # noqa: E402
from services import update as steps  # noqa: E402
from services.protocol import load_protocol  # noqa: E402
from services.pubmed import client as client_module  # noqa: E402
from services.pubmed.client import ClientConfig, EntrezClient  # noqa: E402
from services.pubmed.ratelimit import NoRateLimit  # noqa: E402
from services.pubmed.xmlbuild import write_synthetic_snapshot  # noqa: E402
from services.reviews import ensure_review  # noqa: E402
from services.runs import begin  # noqa: E402

START, UNTIL = dt.date(2023, 12, 1), dt.date(2024, 3, 31)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout: float = 600) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("replay server did not start")


def rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024)
    return 0


def one(records: int, database_url: str | None, batch: int) -> dict[str, Any]:
    """One harvest of ``records`` synthetic records, in this process, into an empty database
    of its own (its files, or its PostgreSQL database, deleted after)."""
    work = Path(tempfile.mkdtemp(prefix="lr-harvest-bench-"))
    try:
        if database_url is None:
            return measure(work, records, f"sqlite:///{work / 'bench.sqlite3'}", batch)
        with empty_database(database_url) as url:
            return measure(work, records, url, batch)
    finally:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def empty_database(server_url: str) -> Iterator[str]:
    """A new database on the server of ``server_url`` (PostgreSQL), dropped afterwards: a
    database that already holds a harvest would measure nothing."""
    parsed = make_url(server_url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit("--database-url: a PostgreSQL server's URL (SQLite is the default)")
    name = f"lr_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(parsed, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield parsed.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure(work: Path, records: int, url: str, batch: int) -> dict[str, Any]:
    snapshot = write_synthetic_snapshot(work / "snapshot", records, dt.date(2024, 1, 1), 60)
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    protocol = load_protocol(ROOT / "reviews", "ldh_resorption")
    protocol = protocol.model_copy(
        update={"search": protocol.search.model_copy(update={"start_date": START})}
    )
    with factory.begin() as session:
        ensure_review(session, protocol)
        run_id = begin(session, protocol, UNTIL).id
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "services.cli", "replay-server", "--snapshot", str(snapshot),
         "--port", str(port)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    timings = {"parse": 0.0, "apply": 0.0}
    parse, apply = client_module.parse_article_set, steps.apply_staged

    def timed_parse(body: bytes) -> Any:
        started = time.perf_counter()
        try:
            return parse(body)
        finally:
            timings["parse"] += time.perf_counter() - started

    def timed_apply(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return apply(*args, **kwargs)
        finally:
            timings["apply"] += time.perf_counter() - started

    # instrumentation for this benchmark only
    client_module.parse_article_set = timed_parse  # type: ignore[assignment]
    steps.apply_staged = timed_apply  # type: ignore[assignment]
    try:
        wait_for(port)
        config = ClientConfig(
            base_url=f"http://127.0.0.1:{port}/entrez/eutils/", api_key="bench",
            batch_size=batch, timeout=600,
        )
        client = EntrezClient(config, NoRateLimit())
        before = rss_mb()
        started = time.perf_counter()
        steps.harvest(factory, run_id, client)
        seconds = time.perf_counter() - started
    finally:
        server.terminate()
        server.wait(timeout=60)
    with factory() as session:
        from db.models import SearchRun

        run = session.get_one(SearchRun, run_id)
        fetched, new, status = run.n_fetched, run.n_new, run.status
    return {
        "records": records,
        "fetched": fetched,
        "new": new,
        "status": status,
        "requests": client.requests,
        "database": engine.dialect.name,
        "harvest_seconds": round(seconds, 1),
        "fetch_stage_seconds": round(seconds - timings["apply"], 1),
        "apply_seconds": round(timings["apply"], 1),
        "parse_seconds": round(timings["parse"], 1),
        "end_to_end_records_per_s": round(records / seconds),
        "rss_before_harvest_mb": before,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--records", type=int, nargs="+", default=[50_000])
    parser.add_argument(
        "--database-url", default=None,
        help="a PostgreSQL server (its URL; each size gets a new database there, dropped "
        "after); default: a temporary SQLite file",
    )
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.records[0], args.database_url, args.batch)))
        return
    results = []
    for n in args.records:
        command = [sys.executable, str(Path(__file__).resolve()), "--one", "--records", str(n),
                   "--batch", str(args.batch)]
        if args.database_url:
            command += ["--database-url", args.database_url]
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True)
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    for result in results:
        for key, value in result.items():
            print(f"{key:>26}: {value}")
        print()


if __name__ == "__main__":
    main()
