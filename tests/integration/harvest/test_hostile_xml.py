"""XML attacks in E-utilities answers and in snapshot files are inert (issue 16 item 7).

An efetch answer declaring an external entity (a file read) and an external DTD (a network
fetch), or nested entities (the "billion laughs" expansion), fails the run with one clear
reason: nothing is read, fetched or expanded, and nothing of the answer is stored. Snapshot
files given to the replay server (the only path that takes XML files from a user) are read with
the same switches off. Replay server over real HTTP; SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import resource
import socket
import threading
from pathlib import Path

import pytest
from harvest_helpers import init_review, ldh_protocol, options, record_count, update
from sqlalchemy import select

from db.models import SearchRun
from services.pubmed.errors import PubMedError, UnsafeXMLError
from services.pubmed.parse import parse_article_set
from services.pubmed.replay import ReplayServer, load_snapshot

pytestmark = pytest.mark.integration
PASSWD_MARK = "root:"


def max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("kind", ["xxe", "bomb"])
def test_a_hostile_efetch_answer_fails_the_run_and_stores_nothing(
    session_factory, demo_snapshot, kind: str
) -> None:
    protocol = ldh_protocol()
    init_review(session_factory, protocol, baseline=False)
    rss_before = max_rss_mb()
    with ReplayServer(demo_snapshot, faults=f"{kind}:*") as server:
        try:
            said = update(session_factory, protocol, options(server.url), dt.date(2024, 1, 7)).error
        except PubMedError as exc:
            said = str(exc)
            assert isinstance(exc, UnsafeXMLError)
        utilities = [entry["utility"] for entry in server.state.log]
    assert "declares its own DTD subset" in (said or "") and "\n" not in (said or "")
    assert PASSWD_MARK not in (said or "")
    assert utilities == ["esearch", "efetch"]  # refused at once, and the DTD never fetched
    assert max_rss_mb() - rss_before < 200  # the expansion would need gigabytes
    with session_factory() as session:
        run = session.scalars(select(SearchRun)).one()
        assert run.status in ("failed", "held") and "DTD subset" in (run.error or "")
    assert record_count(session_factory) == 0


class Listener:
    """A TCP port that counts the connections made to it (a DTD or entity fetch would)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.sock.close()


def test_entities_and_dtds_in_a_snapshot_file_are_inert(tmp_path: Path) -> None:
    listener = Listener()
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT", encoding="utf-8")
    folder = tmp_path / "snapshot"
    folder.mkdir()
    (folder / "hostile.xml").write_text(
        '<?xml version="1.0"?>\n'
        f'<!DOCTYPE PubmedArticleSet SYSTEM "http://127.0.0.1:{listener.port}/pubmed.dtd" [\n'
        f'<!ENTITY leak SYSTEM "file://{secret}">\n'
        f'<!ENTITY remote SYSTEM "http://127.0.0.1:{listener.port}/entity">\n'
        '<!ENTITY l0 "laugh "><!ENTITY l1 "&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;&l0;">'
        '<!ENTITY l2 "&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;&l1;">'
        '<!ENTITY l3 "&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;&l2;">]>\n'
        '<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID Version="1">99000501</PMID>'
        "<Article><ArticleTitle>&leak;&remote;&l3;</ArticleTitle></Article></MedlineCitation>"
        '<PubmedData><History><PubMedPubDate PubStatus="entrez"><Year>2024</Year><Month>1</Month>'
        "<Day>2</Day></PubMedPubDate></History></PubmedData></PubmedArticle></PubmedArticleSet>",
        encoding="utf-8",
    )
    try:
        [indexed] = load_snapshot(folder)
        served = b"<PubmedArticleSet>" + indexed.xml + b"</PubmedArticleSet>"
        assert b"TOP-SECRET" not in indexed.xml and b"laugh" not in indexed.xml
        with pytest.raises(PubMedError):  # the entity references are left unresolved, refused
            parse_article_set(served)
    finally:
        listener.close()
    assert listener.connections == 0


def test_an_answer_with_only_an_external_dtd_is_parsed_without_fetching_it() -> None:
    listener = Listener()
    body = (
        f'<?xml version="1.0"?><!DOCTYPE PubmedArticleSet PUBLIC "-//NLM//DTD x//EN" '
        f'"http://127.0.0.1:{listener.port}/pubmed.dtd"><PubmedArticleSet><PubmedArticle>'
        '<MedlineCitation><PMID Version="1">99000502</PMID><Article><ArticleTitle>Plain'
        "</ArticleTitle></Article></MedlineCitation></PubmedArticle></PubmedArticleSet>"
    )
    try:
        parsed = parse_article_set(body.encode())
    finally:
        listener.close()
    assert [r.title for r in parsed.records] == ["Plain"] and listener.connections == 0
