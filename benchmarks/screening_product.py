"""Benchmark: screening measured through the product path, beside the same procedure in memory.

    python benchmarks/screening_product.py [--dataset FILE.csv ...] [--max-records 1200]

For each labelled dataset (default: the CSVs of ``../shared/datasets/screening`` with at most
``--max-records`` rows): the oldest half (year, then PMID, then row, as benchmarks/screening.py's
replay orders) becomes the review's baseline period, the newer half one update. The dataset is
turned into a replay snapshot (PubMed XML, synthetic PMIDs, in a temporary folder) and a plain
decisions CSV of the older half; then, through the command line as a user runs it:
``living-review new`` (the query checked against the replay), ``import decisions`` (the older
half's labels), ``update --snapshot`` (harvest + pre-screen with the model trained on them: some
records auto-excluded below the recall-0.95 threshold, an audit sample queued) and ``user add``;
then a simulated reviewer screens through the real queue API (``GET …/queue/next``,
``POST …/decisions``) of the web app with its background refit on, waiting for each refit as
benchmarks/screening.py's simulation refits after each label, until 95% of the update's
includes are found and at least 10% of its records screened.

The same procedure runs in memory with the library (``classifiers``: train, choose_threshold,
prescreen, QueueRanker), as benchmarks/screening.py runs it (``benchmarks.screening_runs``).
Both print, for the update's records: WSS@95 (share not screened when 95% of the includes are
found, minus 0.05; auto-excluded records count as not screened), recall@10% (includes found
in the first 10% of records screened) and the auto-excluded share. They should agree; a
difference is a bug of the product path.
"""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))

import argparse  # noqa: E402
import csv  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from benchmarks.screening_data import Dataset, load_dataset  # noqa: E402
from classifiers.models import train  # noqa: E402
from classifiers.prescreen import AUTO_EXCLUDE, prescreen  # noqa: E402
from classifiers.ranking import QueueRanker  # noqa: E402
from classifiers.thresholds import choose_threshold  # noqa: E402
from services.pubmed.xmlbuild import Article, write_article_set  # noqa: E402

DEFAULT_DIR = REPO.parent / "shared" / "datasets" / "screening"
SLUG = "bench_product"
PASSWORD = "product benchmark password"
FIRST_PMID = 50_000_000
START = dt.date(2024, 1, 1)
AUDIT = 0.05  # the protocol written by `living-review new`


def split(data: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Row indices of the older half (baseline) and the newer half (the update), by row."""
    chrono = np.argsort(data.order_key, kind="stable")
    half = len(chrono) // 2
    return np.sort(chrono[:half]), np.sort(chrono[half:])


def write_inputs(data: Dataset, folder: Path) -> tuple[Path, Path]:
    """The replay snapshot and the older half's decisions CSV."""
    older, newer = split(data)
    snapshot = folder / "snapshot"
    snapshot.mkdir()
    articles = []
    for rows, first in ((older, dt.date(2020, 1, 1)), (newer, START)):
        for k, i in enumerate(rows):
            articles.append(Article(
                pmid=FIRST_PMID + int(i), title=data.titles[i], created=first + dt.timedelta(days=k % 300),
                abstract=[("", data.abstracts[i])] if data.abstracts[i] else [],
                keywords=[data.keywords[i]] if data.keywords[i] else [],
                journal="Benchmark journal", year=first.year))
    write_article_set(snapshot / "records.xml", articles)
    decisions = folder / "decisions.csv"
    with decisions.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["pmid", "decision", "reason"])
        for i in older:
            writer.writerow([FIRST_PMID + int(i), "include" if data.labels[i] else "exclude", ""])
    return snapshot, decisions


def cli(env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    done = subprocess.run([sys.executable, "-m", "services.cli", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, input=stdin, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"living-review {args[0]} failed: {done.stderr.strip()}")
    return done.stdout


def product(data: Dataset, folder: Path) -> dict:
    """new → import decisions → update → a simulated reviewer on the queue API."""
    snapshot, decisions = write_inputs(data, folder)
    url = f"sqlite:///{folder / 'product.sqlite3'}"
    env = {**os.environ, "DATABASE_URL": url, "REVIEWS_DIR": str(folder / "reviews"),
           "DATA_DIR": str(folder / "var"), "ENTREZ_API_KEY": "benchmark", "ENTREZ_RATE_LIMIT": "0"}
    cli(env, "new", SLUG, "--title", f"Benchmark {data.name}", "--query", "benchmark[tiab]",
        "--start-date", START.isoformat(), "--outcome", "inclusion", "--snapshot", str(snapshot))
    cli(env, "import", "decisions", str(decisions), "-r", SLUG, "--snapshot", str(snapshot))
    update = json.loads(cli(env, "update", "-r", SLUG, "--snapshot", str(snapshot), "--until",
                            "2025-12-31", "--json"))
    pre = update["steps"]["prescreen"]
    cli(env, "user", "add", "--email", "sim@example.org", "--password-stdin", "--review", SLUG,
        stdin=PASSWORD + "\n")
    order, seconds = screen_through_api(url, data)
    return {"order": order, "auto_excluded": pre["model_excluded"], "mode": pre["mode"],
            "api_seconds": seconds}


def screen_through_api(url: str, data: Dataset) -> tuple[list[int], float]:
    """The simulated reviewer: next record, its dataset label as the decision, wait for the
    refit, repeat; returns the dataset rows in the order screened."""
    from fastapi.testclient import TestClient

    from services.settings import Settings
    from services.web import create_app

    _older, newer = split(data)
    need, n10 = targets(data, newer)
    settings = Settings(database_url=url, secret_key="benchmark-" + "p" * 30, environment="test",
                        base_url="http://testserver", queue_refit_seconds=0.0)
    app = create_app(settings)
    refitter = app.state.refitter
    order: list[int] = []
    found = 0
    started = time.perf_counter()
    with TestClient(app) as client:
        token = client.get("/api/session").json()["csrf_token"]
        token = client.post("/api/session", json={"email": "sim@example.org", "password": PASSWORD},
                            headers={"X-CSRF-Token": token}).json()["csrf_token"]
        headers = {"X-CSRF-Token": token}
        while found < need or len(order) < n10:
            record = client.get(f"/api/reviews/{SLUG}/queue/next").json()["record"]
            if record is None:
                break
            row = int(record["pmid"]) - FIRST_PMID
            label = int(data.labels[row])
            done = refitter.completed
            answer = client.post(f"/api/reviews/{SLUG}/decisions", headers=headers, json={
                "review_record_id": record["review_record_id"], "stage": record["stage"],
                "decision": "include" if label else "exclude"})
            if answer.status_code != 201:
                raise SystemExit(f"decision refused: {answer.status_code} {answer.text}")
            order.append(row)
            found += label
            waited = time.perf_counter()
            while refitter.completed == done:  # the refit this decision asked for
                if time.perf_counter() - waited > 600:
                    raise SystemExit("no queue refit within 10 minutes")
                time.sleep(0.01)
            if refitter.results[-1].model_version is None:
                raise SystemExit("a queue refit failed (see the log above)")
    app.state.engine.dispose()
    return order, time.perf_counter() - started


def targets(data: Dataset, newer: np.ndarray) -> tuple[int, int]:
    includes = int(data.labels[newer].sum())
    return math.ceil(0.95 * includes), math.ceil(0.1 * len(newer))


def in_memory(data: Dataset) -> dict:
    """The same procedure with the library, as benchmarks/screening.py runs its models."""
    older, newer = split(data)
    y, texts = data.labels, data.texts
    model = train([texts[i] for i in older], y[older], seed=0)
    choice = choose_threshold(model.oof_scores, model.oof_labels, recall_target=0.95)
    protect = np.array([not data.abstracts[i] for i in newer])
    result = prescreen(model, [texts[i] for i in newer], choice, audit_fraction=AUDIT,
                       rng=np.random.default_rng(len(older)), protect=protect)
    pool = np.concatenate([older, newer])  # the review's records in the order they were stored
    ranker = QueueRanker([texts[i] for i in pool], seed=0)
    labelled = list(range(len(older)))
    auto = [len(older) + k for k in np.flatnonzero(result.decisions == AUTO_EXCLUDE)]
    labelled += auto
    pending = [len(older) + k for k in np.flatnonzero(result.decisions != AUTO_EXCLUDE)]
    first = sorted(pending, key=lambda p: -result.scores[p - len(older)])  # the pre-screen's order
    need, n10 = targets(data, newer)
    order: list[int] = []
    found = 0
    while (found < need or len(order) < n10) and pending:
        if order:
            scores = ranker.scores(labelled, y[pool[labelled]])
            top = max(pending, key=lambda p: (scores[p], -p))
        else:
            top = first[0]
        pending.remove(top)
        labelled.append(top)
        order.append(int(pool[top]))
        found += int(y[pool[top]])
    return {"order": order, "auto_excluded": len(auto)}


def figures(data: Dataset, run: dict) -> dict:
    _older, newer = split(data)
    n, includes = len(newer), int(data.labels[newer].sum())
    need, n10 = targets(data, newer)
    hits = np.cumsum(data.labels[np.asarray(run["order"], dtype=np.int64)])
    reached = np.flatnonzero(hits >= need)
    wss = (n - (int(reached[0]) + 1)) / n - 0.05 if reached.size else math.nan
    recall10 = float(hits[min(n10, len(hits)) - 1]) / includes if len(hits) else 0.0
    return {"wss95": wss, "recall10": recall10, "auto_excluded_share": run["auto_excluded"] / n}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", action="append", type=Path)
    parser.add_argument("--max-records", type=int, default=1200)
    args = parser.parse_args()
    files = args.dataset or sorted(DEFAULT_DIR.glob("*.csv"))
    if not files:
        print(f"no datasets in {DEFAULT_DIR}")
        return 0
    print(f"{'dataset':<34} {'N':>5} {'path':<8} {'WSS@95':>7} {'rec@10%':>8} {'auto-excl':>9}")
    gaps = []
    for path in files:
        data = load_dataset(path)
        if len(data.labels) > args.max_records:
            continue
        with tempfile.TemporaryDirectory(prefix="lr-product-") as tmp:
            run = product(data, Path(tmp))
        mine, ref = figures(data, run), figures(data, in_memory(data))
        for name, f in (("product", mine), ("library", ref)):
            print(f"{data.name:<34} {len(data.labels):>5} {name:<8} {f['wss95']:>7.3f} "
                  f"{f['recall10']:>8.3f} {f['auto_excluded_share']:>9.3f}")
        gaps.append(abs(mine["wss95"] - ref["wss95"]))
        print(f"{'':<34} {'':>5} {'':<8} mode {run['mode']}; API reviewer {len(run['order'])} "
              f"decisions in {run['api_seconds']:.1f} s; |WSS gap| {gaps[-1]:.3f}", flush=True)
    if gaps:
        print(f"largest |WSS@95 gap| between the product path and the library: {max(gaps):.3f}; "
              f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
