"""Cohen's kappa against scikit-learn's implementation and hand-worked values."""

from __future__ import annotations

import random

import pytest
from sklearn.metrics import cohen_kappa_score

from services.screening.agreement import cohen_kappa


def test_hand_worked_value():
    a = ["include", "include", "exclude", "exclude"]
    b = ["include", "exclude", "exclude", "maybe"]
    # p_o = 0.5; p_e = (2*1 + 2*2) / 16 = 0.375; kappa = 0.125 / 0.625 = 0.2
    assert cohen_kappa(a, b) == pytest.approx(0.2)


@pytest.mark.parametrize("seed", range(20))
def test_matches_scikit_learn(seed):
    rng = random.Random(seed)
    n = rng.randint(5, 200)
    a = [rng.choice(["include", "exclude", "maybe"]) for _ in range(n)]
    b = [x if rng.random() < 0.7 else rng.choice(["include", "exclude"]) for x in a]
    assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b), abs=1e-12)


def test_perfect_and_undefined():
    assert cohen_kappa(["include", "exclude"], ["include", "exclude"]) == pytest.approx(1.0)
    assert cohen_kappa(["include"] * 3, ["include"] * 3) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError, match="same items"):
        cohen_kappa(["include"], [])
