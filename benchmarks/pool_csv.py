"""Time ``living-review pool`` on a large generated CSV (issue 16: 100,000 rows in seconds).

Writes a CSV of ``--rows`` studies (seeded: n ~ U[20, 500], logit p ~ N(0.8, 0.8²), a year, a
design column, an age range and sex on some rows so the audit's duplicate checks have work) to a
temporary folder and runs ``python -m services.cli pool FILE --json`` in a subprocess, as a user
would; prints the file size, the wall-clock and CPU time of the whole command (start-up,
reading, audit, pooling, JSON) and its exit code. On a shared machine the CPU time is the figure
that does not depend on the load.

Usage: python benchmarks/pool_csv.py [--rows 100000] [--method REML] [--repeat 1]
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_csv(path: Path, rows: int, seed: int = 20261202) -> None:
    """A CSV of ``rows`` studies with the columns ``pool`` reads and a few it keeps."""
    rng = np.random.default_rng(seed)
    totals = rng.integers(20, 501, size=rows)
    events = rng.binomial(totals, 1.0 / (1.0 + np.exp(-rng.normal(0.8, 0.8, size=rows))))
    years = rng.integers(1985, 2026, size=rows)
    designs = rng.choice(["Prospective", "Retrospective", "RCT"], size=rows)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["study", "events", "total", "year", "design", "age_range"])
        for i in range(rows):
            age = f"{20 + i % 30}-{60 + i % 20}" if i % 7 == 0 else ""
            writer.writerow(
                [f"Author{i % 5000} {years[i]}", events[i], totals[i], years[i], designs[i], age]
            )


def main() -> None:
    """Generate the CSV, run the command, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--method", default="REML")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "studies.csv"
        write_csv(path, args.rows)
        command = [sys.executable, "-m", "services.cli", "pool", str(path), "--json"]
        command += ["--method", args.method]
        times, cpu = [], []
        for _ in range(args.repeat):
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(command, capture_output=True, check=False)
            times.append(time.perf_counter() - start)
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        size = path.stat().st_size / 1e6
        print(
            f"pool {args.rows:,} rows ({size:.1f} MB), {args.method}: {min(times):.2f} s "
            f"wall-clock, {min(cpu):.2f} s CPU for the whole command (best of {args.repeat}), "
            f"exit {done.returncode}, "
            f"{len(done.stdout) / 1e6:.1f} MB of JSON"
        )
        if done.returncode != 0:
            print(done.stderr.decode(errors="replace")[-500:], file=sys.stderr)


if __name__ == "__main__":
    main()
