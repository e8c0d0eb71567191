"""Process-global state of the worker and web processes: nothing heavy or shared at import."""

from __future__ import annotations

import subprocess
import sys

from services.web.routes import reviews
from workers import celery_app


def test_worker_modules_import_neither_matplotlib_nor_an_argon2_hash() -> None:
    code = ("import sys, workers.celery_app, workers.tasks, services.accounts; "
            "print('matplotlib' in sys.modules, services.accounts._dummy_hash.cache_info().currsize)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=True)
    assert result.stdout.split() == ["False", "0"]


def test_each_worker_child_builds_its_own_runtime() -> None:
    parent = celery_app.runtime()
    celery_app.worker_process_init.send(sender=None)  # what Celery sends in a new child
    child = celery_app.runtime()
    assert child is not parent and child is celery_app.runtime()


def test_the_forest_cache_is_bounded() -> None:
    from services.web.cache import SnapshotCache

    cache = SnapshotCache(size=reviews.FOREST_CACHE_SIZE)
    for snapshot_id in range(3 * reviews.FOREST_CACHE_SIZE):
        cache.get(("forest", snapshot_id), lambda: "<svg/>")
    assert len(cache) == reviews.FOREST_CACHE_SIZE == 32
