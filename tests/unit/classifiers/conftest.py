"""Fixtures for the classifier unit tests."""

from __future__ import annotations

import numpy as np
import pytest
from classifier_corpus import make_corpus


@pytest.fixture
def corpus() -> tuple[list[str], np.ndarray]:
    """300 records, 30 includes, a little overlap so that the task is not trivial."""
    return make_corpus(300, 30, seed=7, overlap=0.05)
