"""End to end on the real parts: the scheduled task starts an update of the LDH review against
the replay server, the worker runs the chain on PostgreSQL; a reviewer then confirms corrected
data for studies (three confirmations in a burst), the debounced recompute changes the estimate,
and exactly one digest arrives at the SMTP server, with the numbers of the two snapshots."""

from __future__ import annotations

import email
import email.policy
import os
import re
import subprocess
import sys
import time

import pytest
from sqlalchemy import select
from test_worker_faults import env_for, runs, send
from wk_parts import DEMO, ROOT, WorkerProcess, wait_for

from db.models import EstimateSnapshot, Extraction, OutboxEmail, Review, Study, User
from services.digest.compose import percent
from services.digest.estimates import headline_of
from services.meta_analysis import pool
from services.meta_analysis.snapshots import Thresholds
from services.meta_analysis.store import record_snapshot
from services.protocol import Protocol
from services.pubmed.replay import ReplayServer
from services.screening import confirm_extraction
from workers.debounce import Debouncer

pytestmark = [pytest.mark.integration, pytest.mark.postgres, pytest.mark.redis]
DEBOUNCE = 3.0


def init_with_baseline_snapshot(pg_url: str, sessions) -> None:  # type: ignore[no-untyped-def]
    """`living-review init`, then the baseline estimate stored (as `estimates --save` does)."""
    env = dict(os.environ, DATABASE_URL=pg_url)
    subprocess.run([sys.executable, "-m", "services.cli", "init"], cwd=ROOT, env=env, check=True,
                   capture_output=True, timeout=180)
    with sessions.begin() as session:
        review = session.scalars(select(Review)).one()
        if session.scalar(select(EstimateSnapshot.id).limit(1)) is not None:
            return  # init stored the baseline estimate itself
        protocol = Protocol.model_validate(review.protocol)
        record_snapshot(
            session, review, outcome=protocol.outcome.name,
            options={"transform": "logit", "method": "REML", "test": "z"},
            headline=headline_of(protocol),
            thresholds=Thresholds(),
            trigger="manual",
            events_field=protocol.outcome.events_field,
            total_field=protocol.outcome.total_field,
        )


def confirm_lower_count(sessions, index: int) -> str:  # type: ignore[no-untyped-def]
    """A reviewer corrects one baseline study: far fewer resorbed than published."""
    with sessions.begin() as session:
        review = session.scalars(select(Review)).one()
        user = session.scalars(select(User)).first()
        if user is None:
            user = User(email="rev@example.org", name="Rev", password_hash="x")
            session.add(user)
            session.flush()
        study, current = session.execute(
            select(Study, Extraction)
            .join(Extraction, Extraction.study_id == Study.id)
            .where(
                Study.review_id == review.id,
                Extraction.kind == "outcome",
                Extraction.superseded.is_(False),
            )
            .order_by(Study.id)
        ).all()[index]
        fields = {f["name"] for f in review.protocol["extraction"]["fields"]}
        values = {k: v for k, v in current.data.items() if k in fields}
        values["n_resorbed"] = max(0, int(values["n_total"]) // 10)
        confirm_extraction(session=session, review=review, user=user, study_id=study.id,
                           values=values, expected_current_id=current.id)
        return study.label


def expected_estimate(sessions) -> float:  # type: ignore[no-untyped-def]
    """The pooled estimate recomputed here, independently of the worker."""
    with sessions() as session:
        data = session.scalars(
            select(Extraction.data)
            .join(Study, Study.id == Extraction.study_id)
            .where(
                Extraction.kind == "outcome",
                Extraction.superseded.is_(False),
                Study.status == "included",
            )
        ).all()
    usable = [
        d
        for d in data
        if isinstance(d.get("n_resorbed"), int | float)
        and isinstance(d.get("n_total"), int | float)
        and 0 <= d["n_resorbed"] <= d["n_total"]
        and d["n_total"] > 0
    ]
    result = pool([d["n_resorbed"] for d in usable], [d["n_total"] for d in usable])
    return float(result.estimate)  # type: ignore[arg-type]


def test_scheduled_update_then_confirmations_give_exactly_one_digest(
        wk_sessions, wk_pg_url, wk_redis, redis_prefix, smtp_server, workers) -> None:
    init_with_baseline_snapshot(wk_pg_url, wk_sessions)
    kw = wk_redis.connection_pool.connection_kwargs
    redis_url = f"redis://127.0.0.1:{kw['port']}/{kw['db']}"
    smtp_server.start()
    with ReplayServer(DEMO) as replay:
        env = env_for(wk_pg_url, redis_url, redis_prefix, replay, SMTP_PORT=str(smtp_server.port),
                      RECOMPUTE_DEBOUNCE_SECONDS=str(DEBOUNCE))
        worker = WorkerProcess(env, "wk-e2e", concurrency=2)
        workers.append(worker)
        worker.start()
        with wk_sessions() as session:
            review_id = session.scalars(select(Review.id)).one()
        send("living_review.scheduled_update", review_id, redis_url=redis_url, prefix=redis_prefix)
        wait_for(lambda: [r for r in runs(wk_sessions) if r[0] == "succeeded"], 120,
                 "the scheduled update")
        assert runs(wk_sessions)[0][1] > 0  # it harvested new records
        time.sleep(2)
        assert smtp_server.inbox.messages == []  # the update changed no estimate: no email

        debouncer = Debouncer(wk_redis, DEBOUNCE, prefix=redis_prefix)
        for index in range(3):  # three confirmations in a burst, each reported as the web would
            confirm_lower_count(wk_sessions, index)
            if debouncer.touch(review_id):
                send("living_review.recompute_after_confirmations", review_id,
                     redis_url=redis_url, prefix=redis_prefix)
        wait_for(lambda: smtp_server.inbox.messages, 60, "the digest")
        time.sleep(DEBOUNCE + 3)
    assert len(smtp_server.inbox.messages) == 1
    with wk_sessions() as session:
        snaps = session.scalars(select(EstimateSnapshot).order_by(EstimateSnapshot.id)).all()
        outbox = session.scalars(select(OutboxEmail)).all()
    assert len(snaps) == 3 and [s.trigger for s in snaps[1:]] == ["update", "confirmation"]
    assert len(outbox) == 1 and outbox[0].status == "sent" and outbox[0].snapshot_id == snaps[2].id
    old, new = snaps[1], snaps[2]
    assert new.estimate == pytest.approx(expected_estimate(wk_sessions), rel=1e-9)
    assert new.estimate < old.estimate - 0.02
    message = email.message_from_bytes(smtp_server.inbox.messages[0], policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()
    row = next(line for line in text.splitlines() if line.startswith("Pooled estimate"))
    assert re.findall(r"\d+\.\d%", row) == [percent(old.estimate), percent(new.estimate)]
    k_row = next(line for line in text.splitlines() if line.startswith("Studies (k)"))
    assert k_row.split()[-2:] == [str(old.k), str(new.k)]
    assert "estimate moved" in text
    assert message["To"] == "followers@example.org"
