"""Date splitting past PubMed's 9,999 cap over real HTTP: 12,000 records in one window.

The structure: an esearch whose Count is over the 9,999 that retstart can reach, so the window
must be split by date until every part is under the cap (12,000 needs one split; more records
only need more of the same splits, and cost the suite minutes).

Not `serial` (it times nothing), so it runs in the parallel pass beside the other files.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from harvest_helpers import init_review, ldh_protocol, options, record_count, update
from sqlalchemy import select

from db.models import SearchRun
from services.pubmed.replay import ReplayServer
from services.pubmed.xmlbuild import write_synthetic_snapshot

pytestmark = pytest.mark.integration

N = 12_000  # over the cap


@pytest.fixture(scope="module")
def big_snapshot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_synthetic_snapshot(tmp_path_factory.mktemp("big"), N, dt.date(2024, 2, 1), 40)


def test_a_window_over_the_cap_is_fetched_whole_through_date_splitting(session_factory, big_snapshot) -> None:
    protocol = ldh_protocol(start_date=dt.date(2024, 1, 1))
    init_review(session_factory, protocol, baseline=False)
    with ReplayServer(big_snapshot) as server:
        result = update(session_factory, protocol, options(server.url), dt.date(2024, 3, 31))
        counts = [e for e in server.state.log if e["utility"] == "esearch"]
    assert result.status == "succeeded" and result.new == N
    assert record_count(session_factory) == N
    with session_factory() as session:
        run = session.scalars(select(SearchRun)).one()
        assert len(run.windows) >= 2 and all(w["count"] <= 9_999 for w in run.windows)
        assert sum(w["count"] for w in run.windows) == N
    assert len(counts) > len(run.windows)  # the over-cap windows were searched, then split
