"""Two Entrez clients in one process (issue 12 defect 9): each request carries its own client's
identity, and Bio.Entrez's module globals are never written (replay server over real HTTP)."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from Bio import Entrez

from services.pubmed.client import ClientConfig, EntrezClient
from services.pubmed.replay import ReplayServer

pytestmark = pytest.mark.integration


def test_two_clients_in_threads_keep_their_own_identity(demo_snapshot) -> None:
    before = (Entrez.email, Entrez.tool, Entrez.api_key, Entrez.max_tries)
    with ReplayServer(demo_snapshot, faults="500@esearch:3") as server:
        clients = {
            name: EntrezClient(
                ClientConfig(
                    base_url=server.url,
                    email=f"{name}@example.org",
                    tool=f"tool-{name}",
                    api_key=f"key-{name}",
                    backoff_base=0.001,
                    backoff_max=0.002,
                    max_tries=4,
                )
            )
            for name in ("alpha", "beta")
        }
        start = threading.Barrier(2)

        def work(client: EntrezClient) -> None:
            start.wait()
            for day in range(1, 16):
                client.search("lumbar", dt.date(2024, 1, day), dt.date(2024, 1, day))

        threads = [threading.Thread(target=work, args=(c,)) for c in clients.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        log = list(server.state.log)
    assert len(log) == 2 * 15 + 3  # three answers were HTTP 500 and retried by our own loop
    for entry in log:
        name = entry["params"]["tool"].removeprefix("tool-")
        assert entry["params"]["email"] == f"{name}@example.org"
        assert entry["params"]["api_key"] == f"key-{name}"
    assert {e["params"]["tool"] for e in log} == {"tool-alpha", "tool-beta"}
    assert (Entrez.email, Entrez.tool, Entrez.api_key, Entrez.max_tries) == before
    assert sum(c.requests for c in clients.values()) == len(log)
