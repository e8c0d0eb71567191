"""Inter-rater agreement: Cohen's kappa per pair of reviewers and stage, with its counts.

kappa = (p_o − p_e) / (1 − p_e), p_o the share of records both rated alike, p_e the agreement
expected from each rater's marginal shares. Undefined (None) when p_e = 1 (both raters used one
and the same category throughout) or when there are no common records.

One rule for "maybe", the same as conflict detection's (:func:`services.screening.decisions.
outcome`): a decision either excludes the record or sends it on, so "include" and "maybe" are
one category (``SEND_ON``) and κ is computed over two categories: exclude / include-or-maybe.

Blind: only settled records count (the stage has an outcome, or the record moved on), so a
reviewer cannot learn from the agreement figures how the other voted on a record still open.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Review, ReviewRecord, ScreeningDecision, User
from services.screening.rules import STAGES

EXCLUDE, SEND_ON = "exclude", "include/maybe"
CATEGORIES = (EXCLUDE, SEND_ON)


def category(decision: str) -> str:
    """The category a decision counts as, in κ and in conflict detection alike."""
    return EXCLUDE if decision == "exclude" else SEND_ON


@dataclass(frozen=True)
class PairAgreement:
    """Agreement of two reviewers at one stage over the records both screened."""

    stage: str
    reviewer_a: str
    reviewer_b: str
    n: int
    observed: float | None
    kappa: float | None
    table: dict[str, dict[str, int]]  # a's decision → b's decision → count


def cohen_kappa(a: Sequence[str], b: Sequence[str]) -> float | None:
    """Cohen's kappa of two equally long rating sequences; None when undefined."""
    if len(a) != len(b):
        raise ValueError("both raters must rate the same items")
    n = len(a)
    if n == 0:
        return None
    observed = sum(x == y for x, y in zip(a, b, strict=True)) / n
    count_a, count_b = Counter(a), Counter(b)
    expected = sum(count_a[c] * count_b[c] for c in count_a) / (n * n)
    if expected >= 1.0:
        return None
    return (observed - expected) / (1.0 - expected)


def pair_agreements(*, session: Session, review: Review) -> list[PairAgreement]:
    """Kappa for every pair of reviewers over the settled records both screened, per stage."""
    rows = session.execute(
        select(
            ScreeningDecision.review_record_id,
            ScreeningDecision.stage,
            ScreeningDecision.user_id,
            ScreeningDecision.decision,
            ReviewRecord.state,
            ReviewRecord.stage,
        )
        .join(ReviewRecord, ReviewRecord.id == ScreeningDecision.review_record_id)
        .where(
            ReviewRecord.review_id == review.id,
            ScreeningDecision.source == "human",
            ScreeningDecision.undone_at.is_(None),
        )
    ).all()
    by_user: dict[tuple[str, int], dict[int, str]] = {}
    for rr_id, stage, user_id, decision, rr_state, rr_stage in rows:
        if user_id is None or (rr_state == "queued" and rr_stage == stage):
            continue  # still open at this stage (waiting for the other reviewer or an admin)
        by_user.setdefault((stage, user_id), {})[rr_id] = category(decision)
    user_ids = {user_id for _, user_id in by_user}
    names = {
        u.id: u.name or u.email for u in session.scalars(select(User).where(User.id.in_(user_ids)))
    }
    results = []
    for stage in STAGES:
        raters = sorted(uid for s, uid in by_user if s == stage)
        for ua, ub in combinations(raters, 2):
            da, db = by_user[(stage, ua)], by_user[(stage, ub)]
            common = sorted(set(da) & set(db))
            if not common:
                continue
            a = [da[i] for i in common]
            b = [db[i] for i in common]
            table = {x: {y: 0 for y in CATEGORIES} for x in CATEGORIES}
            for x, y in zip(a, b, strict=True):
                table[x][y] += 1
            observed = sum(x == y for x, y in zip(a, b, strict=True)) / len(common)
            results.append(
                PairAgreement(
                    stage,
                    names.get(ua, str(ua)),
                    names.get(ub, str(ub)),
                    len(common),
                    observed,
                    cohen_kappa(a, b),
                    table,
                )
            )
    return results
