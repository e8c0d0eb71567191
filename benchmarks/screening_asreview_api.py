"""Run inside ASReview's venv: one simulation with the default model, stopped early.

Same cycle as ``asreview simulate`` (a top-down cycle until fittable, then the default model
``elas_u4``) and the same seeding (``np.random.seed(seed)``), but the run stops once 95% of the
non-prior includes are found and 10% of the non-prior records are screened: the order up to that
point, which is all the benchmark's figures use, is unchanged. Prints JSON (record ids labelled,
in order, and the time of each label) on stdout.

    <venv>/bin/python screening_asreview_api.py DATA.csv SEED PRIOR_INCLUDE PRIOR_EXCLUDE
"""

import json
import math
import sys

import numpy as np
from asreview import load_dataset
from asreview.learner import ActiveLearningCycle
from asreview.models.models import get_ai_config
from asreview.models.queriers import TopDown
from asreview.models.stoppers import IsFittable
from asreview.simulation.simulate import Simulate


class EnoughForFigures:
    """Stop when 95% of the non-prior includes are found and 10% of records are screened."""

    def __init__(self, labels):
        n_rel = int(np.sum(labels)) - 1
        self.need = math.ceil(0.95 * n_rel)
        self.n10 = math.ceil(0.1 * (len(labels) - 2))

    def stop(self, results, labels):
        found = int(results["label"].sum()) - 1
        return (found >= self.need and len(results) - 2 >= self.n10) or len(results) >= len(labels)


def main():
    path, seed, include, exclude = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    np.random.seed(seed)
    db = load_dataset(path, dataset_id="bench")
    labels = db.input["included"]
    cycles = [
        ActiveLearningCycle(querier=TopDown(), stopper=IsFittable()),
        ActiveLearningCycle.from_meta(get_ai_config("elas_u4")["value"]),
    ]
    sim = Simulate(
        db.input.get_df(), labels, cycles, stopper=EnoughForFigures(labels), print_progress=False
    )
    sim.label([include, exclude])
    sim.review()
    results = sim._results
    json.dump(
        {
            "record_id": [int(r) for r in results["record_id"]],
            "time": [float(t) for t in results["time"]],
        },
        sys.stdout,
    )


if __name__ == "__main__":
    main()
