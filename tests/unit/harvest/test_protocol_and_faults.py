"""Protocol validation, fault plans, backoff and the in-process rate limiter (no network)."""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest

from services.protocol import ProtocolError, UnknownReviewError, load_protocol, parse_protocol
from services.pubmed.client import ClientConfig, EntrezClient
from services.pubmed.ratelimit import LocalRateLimiter
from services.pubmed.replay import FaultSpecError, parse_faults

REVIEWS = Path(__file__).resolve().parents[3] / "reviews"


def test_the_ldh_protocol_loads() -> None:
    protocol = load_protocol(REVIEWS, "ldh_resorption")
    assert (
        "[crdt]" not in protocol.search.term
        and "Intervertebral Disc Displacement" in protocol.search.term
    )
    assert "Case Reports" in protocol.criteria.exclude_publication_types
    assert protocol.screening.recall_target == 0.95
    assert {f.name for f in protocol.extraction.fields} >= {"n_total", "n_resorbed", "design"}
    assert protocol.extraction.vocabulary("mechanisms")[0] == "TNF-α"


def test_unknown_review_names_the_known_ones() -> None:
    with pytest.raises(UnknownReviewError, match="known reviews: ldh_resorption"):
        load_protocol(REVIEWS, "no_such_review")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("slug = 'x'\ntitle = ", "not valid TOML"),
        ("slug = 'x'\ntitle = 't'\n[outcome]\nname='r'\n", "field search: Field required"),
        (  # the outcome's fields are the protocol's to state: nothing is assumed
            "slug='x'\ntitle='t'\n[search]\nquery='abc'\nstart_date=2024-01-01\n"
            "[outcome]\nname='r'\ntotal_field='n_total'\n",
            "field outcome.events_field: Field required",
        ),
        (
            "slug='x'\ntitle='t'\n[search]\nquery='abc'\nstart_date=2024-01-01\n"
            "[outcome]\nname='r'\nevents_field='n_events'\n",
            "field outcome.total_field: Field required",
        ),
        (
            "slug='x'\ntitle='t'\n[search]\nquery='abc'\nstart_date=2024-01-01\n"
            "[outcome]\nname='r'\nevents_field='n_events'\ntotal_field='n_total'\n"
            "[screening]\nrecall_target=1.5\n",
            "field screening.recall_target",
        ),
        (
            "slug='x'\ntitle='t'\n[search]\nquery='abc'\nstart_date=2024-01-01\n"
            "[outcome]\nname='r'\nevents_field='n_events'\ntotal_field='n_total'\n"
            "[schedule]\ncron='0 3 *'\n",
            "cron must have 5 fields",
        ),
        (
            "slug='x'\ntitle='t'\n[search]\nquery='abc'\nstart_date=2024-01-01\n"
            "[outcome]\nname='r'\nevents_field='n_events'\ntotal_field='n_total'\n"
            "[digest]\nrecipients=['not an address']\n",
            "not an email address",
        ),
    ],
)
def test_bad_protocols_name_file_and_field(text: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message) as info:
        parse_protocol(text, source="reviews/x/protocol.toml")
    assert "reviews/x/protocol.toml" in str(info.value)


def test_fault_plans() -> None:
    faults = parse_faults("429:2, 500@efetch:1,truncate:1,slow=0.5:1,reset:*")
    assert [(f.kind, f.remaining, f.utility) for f in faults] == [
        ("429", 2, None),
        ("500", 1, "efetch"),
        ("truncate", 1, None),
        ("slow", 1, None),
        ("reset", float("inf"), None),
    ]
    assert faults[3].seconds == 0.5
    for bad in ("429", "teapot:1", "500:x", "short:1", "short=x:1"):
        with pytest.raises(FaultSpecError):
            parse_faults(bad)


def test_short_answer_faults_apply_to_efetch() -> None:
    faults = parse_faults("short=3:1,emptyset:*")
    assert [(f.kind, f.drop, f.remaining, f.utility) for f in faults] == [
        ("short", 3, 1, "efetch"),
        ("emptyset", 0, float("inf"), "efetch"),
    ]


def test_backoff_grows_with_jitter_and_honours_retry_after() -> None:
    client = EntrezClient(ClientConfig(backoff_base=1.0, backoff_max=8.0), rng=random.Random(1))
    delays = [client._backoff(attempt, None) for attempt in range(1, 7)]
    for attempt, delay in enumerate(delays, start=1):
        ceiling = min(8.0, 2 ** (attempt - 1))
        assert ceiling / 2 <= delay <= ceiling
    assert client._backoff(1, 30.0) == 30.0


def test_local_rate_limiter_keeps_n_per_window() -> None:
    limiter = LocalRateLimiter(3, window=0.2)
    times = []
    for _ in range(9):
        limiter.acquire()
        times.append(time.monotonic())
    for i in range(len(times) - 3):
        assert times[i + 3] - times[i] >= 0.2 - 1e-3
