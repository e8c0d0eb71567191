"""Harvest throughput: parse + store of N records served by the replay server (rate limit off).

    python benchmarks/harvest.py [--records 50000] [--database-url URL] [--json]

The replay server runs in its own process (``living-review replay-server``) so that the measured
process does only the client's work. Printed: wall time of the whole harvest, time spent waiting
for and reading responses, parsing (lxml), storing (upsert + links, one transaction), records/s
for parse + store (the local side that must keep up with NCBI's 5,000 records/s ceiling with an
API key), and the peak resident memory of this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from db.migrate import upgrade  # noqa: E402
from db.session import make_engine, make_sessionmaker  # noqa: E402
from services.protocol import load_protocol  # noqa: E402
from services.pubmed import client as client_module  # noqa: E402
from services.pubmed.client import ClientConfig, EntrezClient  # noqa: E402
from services.pubmed.ratelimit import NoRateLimit  # noqa: E402
from services.pubmed.xmlbuild import write_synthetic_snapshot  # noqa: E402
from services.reviews import ensure_review  # noqa: E402
from services.update import fetch_window, review_by_slug, start_run, store_harvest  # noqa: E402


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(port: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit("replay server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lr-harvest-bench-"))
    snapshot = write_synthetic_snapshot(work / "snapshot", args.records, dt.date(2024, 1, 1), 60)
    url = args.database_url or f"sqlite:///{work / 'bench.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    protocol = load_protocol(ROOT / "reviews", "ldh_resorption")
    protocol = protocol.model_copy(
        update={"search": protocol.search.model_copy(update={"start_date": dt.date(2023, 12, 1)})}
    )
    with factory.begin() as session:
        ensure_review(session, protocol)

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
    try:
        wait_for(port)
        config = ClientConfig(
            base_url=f"http://127.0.0.1:{port}/entrez/eutils/",
            api_key="bench",
            batch_size=args.batch,
            timeout=120,
        )
        client = EntrezClient(config, NoRateLimit())
        parse_seconds = 0.0
        original = client_module.parse_article_set

        def timed_parse(body: bytes):  # type: ignore[no-untyped-def]
            nonlocal parse_seconds
            started = time.perf_counter()
            try:
                return original(body)
            finally:
                parse_seconds += time.perf_counter() - started

        client_module.parse_article_set = timed_parse  # instrumentation for this benchmark only
        with factory.begin() as session:
            run = start_run(
                session, review_by_slug(session, protocol.slug), protocol, dt.date(2024, 3, 31)
            )
            run_id = run.id
        started = time.perf_counter()
        articles, windows = fetch_window(
            client, protocol.search.term, dt.date(2023, 12, 1), dt.date(2024, 3, 31)
        )
        fetch_seconds = time.perf_counter() - started
        store_started = time.perf_counter()
        store_harvest(factory, run_id, articles, windows, client.requests)
        store_seconds = time.perf_counter() - store_started
    finally:
        server.terminate()
        server.wait(timeout=30)
    n = len(articles.records)
    result = {
        "records": n,
        "requests": client.requests,
        "database": engine.dialect.name,
        "fetch_seconds": round(fetch_seconds, 2),
        "parse_seconds": round(parse_seconds, 2),
        "store_seconds": round(store_seconds, 2),
        "parse_store_records_per_s": round(n / (parse_seconds + store_seconds)),
        "end_to_end_records_per_s": round(n / (fetch_seconds + store_seconds)),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return
    for key, value in result.items():
        print(f"{key:>28}: {value}")


if __name__ == "__main__":
    main()
