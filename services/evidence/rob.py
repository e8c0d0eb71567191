"""Risk of bias per study with the protocol's tool: two raters blind to each other, conflicts
resolved by an admin (as in screening), Cohen's κ per item and overall.

A rater's assessment answers every item of the tool (``[risk_of_bias] items``) with one of its
answers and gives an overall judgement (``overall``: low / moderate / high). A study's state:

- ``unrated`` / ``awaiting second rater`` — fewer ratings than ``raters_per_study``;
- ``agreed`` — the raters gave the same answers and overall (their overall stands);
- ``conflict`` — they differ on an item or the overall: an admin resolves it;
- ``resolved`` — an admin's consensus rating stands (it may be entered at any time).

κ compares the first and the second rater of each study (in the order they rated) over the
studies both rated, per item and for the overall judgement
(:func:`services.screening.agreement.cohen_kappa`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from db.models import Review, RobRating, Study, User, utcnow
from services.evidence.errors import EvidenceConflict, EvidenceInputError, EvidenceNotFound
from services.protocol import RiskOfBias
from services.screening.agreement import cohen_kappa

ROLES = ("rater", "consensus")
MAX_NOTE = 1000


def tool_of(protocol: Mapping[str, Any]) -> RiskOfBias | None:
    """The review's risk-of-bias tool, or None when its protocol names none."""
    raw = protocol.get("risk_of_bias")
    return None if not raw else RiskOfBias.model_validate(raw)


def require_tool(review: Review) -> RiskOfBias:
    """The review's tool; EvidenceNotFound when its protocol has no ``[risk_of_bias]``."""
    tool = tool_of(review.protocol or {})
    if tool is None:
        raise EvidenceNotFound(f"review {review.slug} names no risk-of-bias tool in its protocol")
    return tool


@dataclass(frozen=True)
class StudyRob:
    """Where one study's risk-of-bias assessment stands."""

    study_id: int
    status: str
    overall: str | None
    raters: int
    disagreements: tuple[str, ...] = ()
    ratings: tuple[RobRating, ...] = field(default=(), repr=False)


def validate(tool: RiskOfBias, answers: Mapping[str, Any], overall: Any) -> dict[str, str]:
    """The answers as {item: answer}; EvidenceInputError naming each missing or bad item."""
    errors: dict[str, str] = {}
    keys = [item.key for item in tool.items]
    for name in answers:
        if name not in keys:
            errors[name] = "not an item of the tool"
    clean: dict[str, str] = {}
    for key in keys:
        value = str(answers.get(key) or "").strip()
        if value not in tool.answers:
            errors[key] = "required" if not value else f"answer one of: {', '.join(tool.answers)}"
        clean[key] = value
    if str(overall or "") not in tool.overall:
        errors["overall"] = f"choose one of: {', '.join(tool.overall)}"
    if errors:
        raise EvidenceInputError(errors)
    return clean


def save_rating(
    *,
    session: Session,
    review: Review,
    user: User,
    study_id: int,
    answers: Mapping[str, Any],
    overall: str,
    note: str | None = None,
    role: str = "rater",
) -> RobRating:
    """Save (or replace) ``user``'s rating of a study; flushes, never commits.

    ``role="consensus"`` is an admin's resolution (the caller checks the role). Raises
    EvidenceNotFound (study not in the review), EvidenceInputError (bad answers).
    """
    tool = require_tool(review)
    if role not in ROLES:
        raise EvidenceInputError({"role": f"one of: {', '.join(ROLES)}"})
    study = session.get(Study, study_id)
    if study is None or study.review_id != review.id or study.status != "included":
        raise EvidenceNotFound(f"study {study_id} is not an included study of {review.slug}")
    clean = validate(tool, answers, overall)
    if note is not None and len(note) > MAX_NOTE:
        raise EvidenceInputError({"note": f"at most {MAX_NOTE} characters"})
    row = session.scalars(
        select(RobRating).where(
            RobRating.study_id == study.id,
            RobRating.user_id == user.id,
            RobRating.tool == tool.tool,
            RobRating.role == role,
        )
    ).first()
    if row is None:
        row = RobRating(
            review_id=review.id, study_id=study.id, user_id=user.id, tool=tool.tool, role=role
        )
        session.add(row)
    row.answers, row.overall, row.note, row.updated_at = clean, overall, note or None, utcnow()
    try:
        session.flush()
    except IntegrityError as exc:
        raise EvidenceConflict("this rating was saved meanwhile: reload the page") from exc
    return row


def ratings_by_study(session: Session, review: Review, tool: RiskOfBias) -> dict[int, list[RobRating]]:
    """Every rating of the review with its tool, per study, in the order they were made."""
    rows = session.scalars(
        select(RobRating)
        .where(RobRating.review_id == review.id, RobRating.tool == tool.tool)
        .order_by(RobRating.id)
    )
    out: dict[int, list[RobRating]] = {}
    for row in rows:
        out.setdefault(row.study_id, []).append(row)
    return out


def study_state(study_id: int, ratings: Sequence[RobRating], tool: RiskOfBias) -> StudyRob:
    """The state of one study's assessment (see the module docstring)."""
    consensus = [r for r in ratings if r.role == "consensus"]
    raters = [r for r in ratings if r.role == "rater"]
    if consensus:
        return StudyRob(study_id, "resolved", consensus[-1].overall, len(raters), (), tuple(ratings))
    if len(raters) < tool.raters_per_study:
        status = "unrated" if not raters else "awaiting second rater"
        return StudyRob(study_id, status, None, len(raters), (), tuple(ratings))
    first, second = raters[0], raters[1] if len(raters) > 1 else raters[0]
    differ = tuple(
        item.key for item in tool.items if first.answers.get(item.key) != second.answers.get(item.key)
    ) + (("overall",) if first.overall != second.overall else ())
    if differ:
        return StudyRob(study_id, "conflict", None, len(raters), differ, tuple(ratings))
    return StudyRob(study_id, "agreed", first.overall, len(raters), (), tuple(ratings))


def states(session: Session, review: Review) -> dict[int, StudyRob]:
    """The state of every rated study of the review (unrated studies are absent)."""
    tool = require_tool(review)
    return {
        study_id: study_state(study_id, rows, tool)
        for study_id, rows in ratings_by_study(session, review, tool).items()
    }


def resolved_overall(session: Session, review: Review) -> dict[int, str]:
    """Study id → the overall judgement that stands (agreed or resolved studies only)."""
    if tool_of(review.protocol or {}) is None:
        return {}
    return {sid: s.overall for sid, s in states(session, review).items() if s.overall}


def agreement(session: Session, review: Review) -> dict[str, Any]:
    """Cohen's κ between first and second raters, per item and overall, with n studies."""
    tool = require_tool(review)
    pairs = [
        (raters[0], raters[1])
        for rows in ratings_by_study(session, review, tool).values()
        if len(raters := [r for r in rows if r.role == "rater"]) >= 2
    ]
    items = {
        item.key: cohen_kappa(
            [a.answers.get(item.key, "") for a, _ in pairs],
            [b.answers.get(item.key, "") for _, b in pairs],
        )
        for item in tool.items
    }
    every_a = [a.answers.get(i.key, "") for a, _ in pairs for i in tool.items]
    every_b = [b.answers.get(i.key, "") for _, b in pairs for i in tool.items]
    return {
        "tool": tool.tool,
        "n": len(pairs),
        "items": items,
        "overall": cohen_kappa([a.overall for a, _ in pairs], [b.overall for _, b in pairs]),
        "all_items": cohen_kappa(every_a, every_b),
    }


def resolve(
    *,
    session: Session,
    review: Review,
    user: User,
    study_id: int,
    answers: Mapping[str, Any],
    overall: str,
    note: str | None = None,
) -> RobRating:
    """An admin's consensus for a study in conflict; EvidenceConflict when there is none."""
    tool = require_tool(review)
    rows = ratings_by_study(session, review, tool).get(study_id, [])
    if study_state(study_id, rows, tool).status != "conflict":
        raise EvidenceConflict(f"study {study_id} has no risk-of-bias conflict to resolve")
    return save_rating(
        session=session, review=review, user=user, study_id=study_id, answers=answers,
        overall=overall, note=note, role="consensus",
    )
