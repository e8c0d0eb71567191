"""The one way a test says a service or tool it needs is missing: :func:`unavailable`.

Locally the test is skipped with the reason; under CI (``LR_REQUIRE_SERVICES=1``, set by .ci/run)
it fails instead, so CI cannot pass by skipping. Import it as ``from availability import
unavailable`` (tests/ is on the path through tests/conftest.py).
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE = os.environ.get("LR_REQUIRE_SERVICES") == "1"


def unavailable(what: str, why: object) -> NoReturn:
    """Skip the test because ``what`` is missing, or fail it under CI (LR_REQUIRE_SERVICES=1)."""
    message = f"{what} is not available ({why}); install or start it (see README) to run these tests"
    if REQUIRE:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)
    raise AssertionError("unreachable")  # pytest.skip raises
