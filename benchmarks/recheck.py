"""Re-check of older records: requests and time for N tracked records, R of them revised.

    python benchmarks/recheck.py [--records 5000] [--revised 50] [--database-url URL] [--json]

N synthetic records are stored and queued for a review; PubMed (the replay server, in a thread
of this process, rate limit off) then holds them with R revised abstracts. Printed: how many
esearch and efetch requests the re-check made, the seconds of its network part (esearches by
[uid] and [mdat], efetch of the changed) and of its store part (one transaction), and how many
records it found modified and revised.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import update  # noqa: E402

from db.migrate import upgrade  # noqa: E402
from db.models import ReviewRecord  # noqa: E402
from db.session import make_engine, make_sessionmaker  # noqa: E402
from services.harvest import store_records  # noqa: E402
from services.protocol import load_protocol  # noqa: E402
from services.pubmed.client import ClientConfig, EntrezClient  # noqa: E402
from services.pubmed.parse import parse_article_set  # noqa: E402
from services.pubmed.ratelimit import NoRateLimit  # noqa: E402
from services.pubmed.replay import ReplayServer  # noqa: E402
from services.pubmed.xmlbuild import synthetic_articles, write_article_set  # noqa: E402
from services.recheck import fetch_changes, plan_recheck, store_changes  # noqa: E402
from services.reviews import ensure_review  # noqa: E402
from services.runs import begin  # noqa: E402

UNTIL = dt.date(2024, 3, 31)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5_000)
    parser.add_argument("--revised", type=int, default=50)
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="lr-recheck-bench-"))
    url = args.database_url or f"sqlite:///{work / 'bench.sqlite3'}"
    engine = make_engine(url)
    upgrade(engine)
    factory = make_sessionmaker(engine)
    protocol = load_protocol(ROOT / "reviews", "ldh_resorption")
    articles = synthetic_articles(args.records, dt.date(2024, 1, 1), 30)
    first = work / "first.xml"
    write_article_set(first, articles)
    with factory.begin() as session:
        review = ensure_review(session, protocol)
        run = begin(session, protocol, dt.date(2024, 2, 15))
        store_records(session, review_id=review.id, run=run,
                      records=parse_article_set(first.read_bytes()).records)
        session.execute(update(ReviewRecord).values(state="queued"))
        run.status = "succeeded"  # the update that brought them is over
    revised = [
        dataclasses.replace(a, revised=UNTIL - dt.timedelta(days=1),
                            abstract=[("", f"Revised abstract {a.pmid}.")])
        for a in articles[: args.revised]
    ]
    (work / "snapshot").mkdir()
    write_article_set(work / "snapshot" / "set.xml", revised + articles[args.revised :])
    with factory.begin() as session:
        run_id = begin(session, protocol, UNTIL).id
    with ReplayServer(work / "snapshot") as server:
        client = EntrezClient(ClientConfig(base_url=server.url, api_key="bench", timeout=120),
                              NoRateLimit())
        with factory() as session:
            plan = plan_recheck(session, session.get_one(type(run), run_id))
        started = time.perf_counter()
        fetched = fetch_changes(client, plan)
        network = time.perf_counter() - started
        started = time.perf_counter()
        with factory.begin() as session:
            summary = store_changes(session, session.get_one(type(run), run_id), fetched)
        store = time.perf_counter() - started
        log = list(server.state.log)
    result = {
        "database": engine.dialect.name,
        "tracked": summary["checked"],
        "esearch": sum(e["utility"] == "esearch" for e in log),
        "efetch": sum(e["utility"] == "efetch" for e in log),
        "post": sum(e["method"] == "POST" for e in log),
        "modified": len(summary["modified"]),
        "revised": summary["revised"],
        "network_seconds": round(network, 2),
        "store_seconds": round(store, 2),
    }
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>16}: {value}")


if __name__ == "__main__":
    main()
