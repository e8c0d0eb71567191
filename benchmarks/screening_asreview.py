"""Run ASReview LAB's ``asreview simulate`` (default model) and cache the labelling order.

ASReview lives in its own virtual environment, ``benchmarks/.cache/asreview-venv`` (gitignored):

    python -m venv benchmarks/.cache/asreview-venv
    benchmarks/.cache/asreview-venv/bin/pip install asreview

For each dataset and seed this writes a title/abstract/label copy of the CSV under
``benchmarks/.cache/asreview/``, runs ``asreview simulate`` with the benchmark's prior records
(``--prior-idx``) and ``--seed``, reads the project file's ``results.db`` (the labelling order and the
wall-clock time of each label action) and caches it as JSON, so the results table can be rebuilt
without rerunning ASReview. Errors: :class:`AsreviewUnavailable` when the venv is missing,
``subprocess.CalledProcessError`` when a simulation fails.

    python benchmarks/screening_asreview.py FILE.csv [FILE.csv ...] [--seeds 1,2,3]
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import logging
import sqlite3
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# Run as a script: put the repository first on the path.
_HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
sys.path.insert(0, str(_HERE.parent))

import numpy as np  # noqa: E402

from benchmarks.screening_data import Dataset, load_dataset, prior_records  # noqa: E402

logger = logging.getLogger(__name__)

CACHE = Path(__file__).resolve().parent / ".cache"
VENV_BIN = CACHE / "asreview-venv" / "bin"


class AsreviewUnavailable(RuntimeError):
    """ASReview's virtual environment is not installed."""


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def cache_file(path: Path, seed: int) -> Path:
    """Where the cached ASReview run for this CSV's content and seed lives."""
    return CACHE / "asreview" / f"{path.stem}-{_digest(path)}-s{seed}.json"


def cached_run(path: Path, seed: int) -> dict | None:
    """The cached run (``order``: row indices after the priors, ``times``), or None."""
    file = cache_file(path, seed)
    return json.loads(file.read_text()) if file.exists() else None


def _write_copy(data: Dataset, target: Path) -> None:
    with target.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["title", "abstract", "label_included"])
        for title, abstract, label in zip(data.titles, data.abstracts, data.labels, strict=True):
            writer.writerow([title, abstract, int(label)])


def _read_results(project: Path) -> tuple[list[int], list[float]]:
    with tempfile.TemporaryDirectory() as tmp:
        with zipfile.ZipFile(project) as archive:
            name = next(n for n in archive.namelist() if n.endswith("results.db"))
            archive.extract(name, tmp)
        con = sqlite3.connect(Path(tmp) / name)
        try:
            rows = con.execute("SELECT record_id, time FROM results ORDER BY rowid").fetchall()
        finally:
            con.close()
    return [int(r[0]) for r in rows], [float(r[1]) for r in rows]


def _run_cli(
    exe: Path, copy: Path, work: Path, stem: str, seed: int, include: int, exclude: int
) -> tuple[list[int], list[float]]:
    project = work / f"{stem}-s{seed}.asreview"
    project.unlink(missing_ok=True)
    cmd = [
        str(exe),
        "simulate",
        str(copy),
        "--prior-idx",
        str(include),
        str(exclude),
        "--seed",
        str(seed),
        "-o",
        str(project),
    ]
    logger.info("running %s", " ".join(cmd))
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    order, times = _read_results(project)
    project.unlink(missing_ok=True)
    return order, times


def _run_api(copy: Path, seed: int, include: int, exclude: int) -> tuple[list[int], list[float]]:
    script = Path(__file__).resolve().parent / "screening_asreview_api.py"
    cmd = [
        str(VENV_BIN / "python"),
        "-P",
        str(script),
        str(copy),
        str(seed),
        str(include),
        str(exclude),
    ]
    logger.info("running %s", " ".join(cmd))
    out = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
    return out["record_id"], out["time"]


def run(path: Path, seed: int, engine: str = "api") -> dict:
    """Run one ASReview simulation (if not cached) and return the cached record.

    ``engine="cli"`` runs ``asreview simulate`` to the last include and reads its project file;
    ``"api"`` (default) runs the same cycle through ASReview's API and stops as soon as the
    benchmark's figures are determined (screening_asreview_api.py), which saves CPU.
    """
    cached = cached_run(path, seed)
    if cached is not None:
        return cached
    exe = VENV_BIN / "asreview"
    if not exe.exists():
        raise AsreviewUnavailable(
            f"ASReview not installed: {exe} is missing (see module docstring)"
        )
    data = load_dataset(path)
    include, exclude = prior_records(data.labels, seed)
    work = CACHE / "asreview"
    work.mkdir(parents=True, exist_ok=True)
    copy = work / f"{path.stem}-s{seed}.csv"
    _write_copy(data, copy)
    if engine == "cli":
        order, times = _run_cli(exe, copy, work, path.stem, seed, include, exclude)
    else:
        order, times = _run_api(copy, seed, include, exclude)
    version = subprocess.run([str(exe), "--version"], capture_output=True, text=True).stdout
    record = {
        "dataset": path.stem,
        "seed": seed,
        "priors": [include, exclude],
        "engine": engine,
        "asreview_version": version.strip(),
        "model": "default (elas_u4)",
        "order": order[2:],
        "times": times,
        "iteration_s": np.diff(times[2:]).tolist() if len(times) > 3 else [],
    }
    cache_file(path, seed).write_text(json.dumps(record))
    return record


def main() -> None:
    """Populate the cache for the given CSVs and seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--engine", choices=("api", "cli"), default="api")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    for file in args.files:
        for seed in (int(s) for s in args.seeds.split(",")):
            record = run(file, seed, args.engine)
            logger.info("%s seed %d: %d labelled", file.stem, seed, len(record["order"]))


if __name__ == "__main__":
    main()
