"""Time a full recompute of the meta-analysis engine on simulated studies.

A full recompute = for every estimator (REML, DL, PM, ML): pooling, subgroups (3 designs),
leave-one-out and cumulative analysis; plus the binomial-normal GLMM. An update recomputes with
the protocol's estimator only; that subtotal (REML + GLMM) is printed too. Studies are simulated
(n ~ U[20, 500], logit p ~ N(0.8, 0.8²), a few 0/n and n/n), seed fixed.

Usage: python benchmarks/meta.py [--k 30 300 3000] [--repeat 3] [--transform logit]
Prints the best of ``--repeat`` wall-clock and CPU (process) times per part and in total, one
core's work; on a shared machine the CPU time is the figure that does not depend on the load.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from services.meta_analysis import pool, pool_glmm
from services.meta_analysis.breakdowns import cumulative, leave_one_out, subgroups
from services.meta_analysis.studies import Study

ESTIMATORS = ("REML", "DL", "PM", "ML")


def simulate(k: int, seed: int = 20261123) -> list[Study]:
    """k studies with binomial counts around a heterogeneous true proportion."""
    rng = np.random.default_rng(seed)
    totals = rng.integers(20, 501, size=k)
    p = 1.0 / (1.0 + np.exp(-rng.normal(0.8, 0.8, size=k)))
    events = rng.binomial(totals, p)
    designs = rng.choice(["Prospective", "Retrospective", "RCT"], size=k)
    years = np.sort(rng.integers(1985, 2026, size=k))
    return [
        Study(
            label=f"S{i}",
            events=float(events[i]),
            total=float(totals[i]),
            year=int(years[i]),
            design=str(designs[i]),
        )
        for i in range(k)
    ]


def _best(fn: Callable[[], Any], repeat: int) -> tuple[float, float]:
    """Best wall-clock and best CPU (process) time of ``repeat`` runs, in seconds."""
    wall, cpu = [], []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return min(wall), min(cpu)


def recompute_parts(studies: list[Study], transform: str) -> dict[str, Callable[[], Any]]:
    """The parts of one full recompute, as callables."""
    events = [s.events for s in studies]
    totals = [s.total for s in studies]
    opts = {"transform": transform}
    parts: dict[str, Callable[[], Any]] = {}
    for m in ESTIMATORS:
        parts[f"pool {m}"] = lambda m=m: pool(events, totals, method=m, **opts)  # type: ignore[misc]
        parts[f"subgroups {m}"] = lambda m=m: subgroups(studies, "design", method=m, **opts)
        parts[f"leave-one-out {m}"] = lambda m=m: leave_one_out(studies, method=m, **opts)
        parts[f"cumulative {m}"] = lambda m=m: cumulative(studies, method=m, **opts)
    parts["GLMM"] = lambda: pool_glmm(events, totals)  # type: ignore[arg-type]
    return parts


def main() -> None:
    """Run the benchmark and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, nargs="+", default=[30, 300, 3000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--transform", default="logit")
    args = parser.parse_args()
    for k in args.k:
        parts = recompute_parts(simulate(k), args.transform)
        timings = {name: _best(fn, args.repeat) for name, fn in parts.items()}
        for column, label in ((0, "wall-clock"), (1, "CPU")):
            total = sum(t[column] for t in timings.values())
            one = sum(
                t[column] for name, t in timings.items() if name.endswith("REML") or name == "GLMM"
            )
            print(
                f"k = {k} ({label}): full recompute, all four estimators + GLMM: {total:.3f} s; "
                f"protocol's estimator (REML) + GLMM: {one:.3f} s (best of {args.repeat} per part)"
            )
        for name, (wall, cpu) in timings.items():
            print(f"  {name:<22} {1000 * wall:9.1f} ms wall {1000 * cpu:9.1f} ms CPU")


if __name__ == "__main__":
    main()
