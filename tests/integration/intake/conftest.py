"""Fixtures of the import tests: the second review's material and a CLI environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.integration.intake.second_review import Material, build


@pytest.fixture
def material(tmp_path: Path) -> Material:
    return build(tmp_path / "material")


@pytest.fixture
def env(db_url: str, tmp_path: Path) -> dict[str, str]:
    """Both databases; the reviews folder is the test's own (``new`` writes there)."""
    return {**os.environ, "DATABASE_URL": db_url, "DATA_DIR": str(tmp_path / "var"),
            "REVIEWS_DIR": str(tmp_path / "reviews"), "ENTREZ_API_KEY": "test-key",
            "ENTREZ_BACKOFF_BASE": "0.01", "ENTREZ_BACKOFF_MAX": "0.05", "ENTREZ_MAX_TRIES": "2"}
