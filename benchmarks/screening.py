"""Benchmark the screening classifier: active-learning simulation (vs ASReview) and living replay.

    python benchmarks/screening.py [--dataset FILE.csv] [--mode simulate|replay|both]
                                   [--seeds 1,2,3] [--json] [--confidence 0.95]
                                   [--asreview run|cached|off] [--reuse] [--no-speed]

With no ``--dataset`` every CSV in ``../shared/datasets/screening`` (relative to the repository)
is run (skipped with a message when the folder is absent) and the table is written to
``benchmarks/results/screening.md``. A CSV needs ``title``, ``abstract``, ``label_included``;
``keywords``, ``year``, ``pmid`` are optional (the replay orders by year, then PMID, then row).

simulate: both systems start from the same 1 included + 1 excluded prior record per seed and
screen one record at a time, refitting after each label. ASReview LAB runs with its default
model via ``asreview simulate`` in ``benchmarks/.cache/asreview-venv`` (see screening_asreview.py;
runs are cached). replay: the oldest 50% is the screened baseline, then 5 updates of 10%; at each
update the model is trained on every earlier human decision, a threshold is chosen for recall
0.95 at the given confidence, new records below it are auto-excluded except a 10% audit sample
and records without abstract; the known labels play the reviewers.

``--json`` keys, per dataset (means over seeds): ``simulate.ours`` / ``simulate.asreview`` with
``wss95``, ``recall10``, ``refit_ms_median``; ``replay`` with ``recall`` (includes reviewers saw /
all includes in the updates, seeds pooled), ``recall_min`` (worst seed), ``auto_excluded_share``
(new records never shown to a reviewer), ``missed``, ``includes``, ``updates_with_threshold``.
Top level: ``average`` (mean over datasets) and ``speed`` (``prescreen_10k_s``,
``queue_refit_10k_ms``, ``load_average``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# A sibling file is named like the standard library's ``queue``: keep this folder off the path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != REPO / "benchmarks"]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from benchmarks import screening_asreview  # noqa: E402
from benchmarks.screening_data import Dataset, DatasetError, load_dataset  # noqa: E402
from benchmarks.screening_report import average, speed, write_table  # noqa: E402
from benchmarks.screening_runs import asreview_figures, replay, simulate  # noqa: E402

logger = logging.getLogger("benchmarks.screening")
DEFAULT_DIR = REPO.parent / "shared" / "datasets" / "screening"
TABLE = REPO / "benchmarks" / "results" / "screening.md"
KEYS = ("wss95", "recall10", "refit_ms_median")


def _mean(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in KEYS}


def _asreview(path: Path, data: Dataset, seeds: list[int], run: bool) -> dict | None:
    rows = []
    for seed in seeds:
        record = screening_asreview.cached_run(path, seed)
        if record is None and run:
            try:
                record = screening_asreview.run(path, seed)
            except screening_asreview.AsreviewUnavailable as exc:
                logger.warning("%s", exc)
        if record is None:
            return None
        rows.append(asreview_figures(record, data))
    return _mean(rows)


def _replay(data: Dataset, seeds: list[int], confidence: float) -> dict:
    runs = [replay(data, seed, confidence) for seed in seeds]
    includes = sum(r["includes"] for r in runs)
    missed = sum(r["missed"] for r in runs)
    return {
        "recall": (includes - missed) / includes if includes else float("nan"),
        "recall_min": min(r["recall"] for r in runs),
        "auto_excluded_share": float(np.mean([r["auto_excluded_share"] for r in runs])),
        "missed": missed,
        "includes": includes,
        "updates_with_threshold": float(np.mean([r["updates_with_threshold"] for r in runs])),
        "per_seed": runs,
    }


def _ours_cache(path: Path, args: argparse.Namespace) -> Path:
    name = f"{path.stem}-{screening_asreview._digest(path)}-{args.mode}-s{args.seeds}-c{args.confidence}"
    return screening_asreview.CACHE / "ours" / f"{name}.json"


def run_dataset(path: Path, args: argparse.Namespace) -> dict:
    """All figures for one CSV (ours from the cache with --reuse; ASReview's always cached)."""
    cache = _ours_cache(path, args)
    if args.reuse and cache.exists():
        out = json.loads(cache.read_text())
        if "simulate" in out and args.asreview != "off":
            data = load_dataset(path)
            seeds = [int(s) for s in args.seeds.split(",")]
            out["simulate"]["asreview"] = _asreview(path, data, seeds, args.asreview == "run")
        return out
    data = load_dataset(path)
    seeds = [int(s) for s in args.seeds.split(",")]
    out: dict = {"dataset": data.name, "n": len(data.labels), "includes": int(data.labels.sum())}
    if args.mode in ("simulate", "both"):
        out["simulate"] = {
            "ours": _mean([simulate(data, seed) for seed in seeds]),
            "asreview": None
            if args.asreview == "off"
            else _asreview(path, data, seeds, args.asreview == "run"),
        }
    if args.mode in ("replay", "both"):
        out["replay"] = _replay(data, seeds, args.confidence)
    logger.info("%s done", data.name)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(out, default=float))
    return out


def _files(args: argparse.Namespace) -> list[Path]:
    if args.dataset:
        return [Path(f) for f in args.dataset]
    if not DEFAULT_DIR.is_dir():
        print(f"skipped: no datasets folder at {DEFAULT_DIR} (pass --dataset FILE.csv)")
        return []
    return sorted(DEFAULT_DIR.glob("*.csv"))


def main(argv: list[str] | None = None) -> int:
    """Entry point: run, print, write the table on a full run."""
    parser = argparse.ArgumentParser(description="Screening classifier benchmark")
    parser.add_argument("--dataset", action="append", help="a screening CSV (repeatable)")
    parser.add_argument("--mode", choices=("simulate", "replay", "both"), default="both")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--confidence", type=float, default=0.95)
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--asreview",
        choices=("run", "cached", "off"),
        default="run",
        help="ASReview columns: run missing simulations, cached only, or none",
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="reuse our cached per-dataset figures (rebuild the table quickly)",
    )
    parser.add_argument("--no-speed", action="store_true", help="skip the 10,000-record timings")
    parser.add_argument("--table", type=Path, help=f"write the table here (full run: {TABLE})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    files = _files(args)
    if not files:
        return 0
    try:
        results = [run_dataset(f, args) for f in files]
    except (DatasetError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    report = {
        "datasets": results,
        "average": average(results),
        "seeds": args.seeds,
        "confidence": args.confidence,
        "speed": {} if args.no_speed else speed([load_dataset(f) for f in files]),
        "load_average": list(os.getloadavg()),
    }
    table = args.table or (None if args.dataset else TABLE)
    if table is not None:
        write_table(report, table, sys.argv[1:])
    if args.json:
        print(json.dumps(report, indent=1, default=float))
    else:
        print(json.dumps({"average": report["average"], "speed": report["speed"]}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
