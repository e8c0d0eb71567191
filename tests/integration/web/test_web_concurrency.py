"""Two reviewers deciding the same record at the same moment (threads, real databases)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import select

from db.models import Review, ScreeningDecision, User
from services.screening import ConflictError, record_decision

pytestmark = pytest.mark.integration


def race(factory, seed, users: list[str]) -> list[str]:
    barrier = threading.Barrier(len(users))
    outcomes: list[str] = []

    def one(name: str) -> None:
        with factory() as session:
            review = session.get(Review, seed.review_id)
            user = session.get(User, seed.users[name])
            barrier.wait()
            try:
                record_decision(
                    session=session,
                    review=review,
                    user=user,
                    review_record_id=seed.queued[0],
                    stage="title_abstract",
                    decision="include",
                )
                session.commit()
                outcomes.append("saved")
            except ConflictError:
                session.rollback()
                outcomes.append("conflict")

    threads = [threading.Thread(target=one, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return sorted(outcomes)


@pytest.mark.parametrize("attempt", range(3))
def test_single_mode_one_wins_the_other_is_told(seed, factory, attempt):
    assert race(factory, seed, ["alice", "bob"]) == ["conflict", "saved"]
    with factory() as session:
        assert len(session.scalars(select(ScreeningDecision)).all()) == 1


def test_dual_mode_both_decisions_are_kept(seed, factory):
    with factory() as session, session.begin():
        review = session.get(Review, seed.review_id)
        review.protocol = {
            **review.protocol,
            "screening": {**review.protocol["screening"], "reviewers_per_record": 2},
        }
    assert race(factory, seed, ["alice", "bob"]) == ["saved", "saved"]
    with factory() as session:
        users = sorted(d.user_id for d in session.scalars(select(ScreeningDecision)))
    assert users == sorted([seed.users["alice"], seed.users["bob"]])
