"""Conflicts of dual screening (admins resolve them) and inter-rater agreement."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from services.screening import (
    ConflictError,
    InvalidInputError,
    list_conflicts,
    pair_agreements,
    resolve_conflict,
)
from services.screening.decisions import record_name
from services.screening.rules import rules_of
from services.web.deps import Admin, DbSession, Member
from services.web.routes.screening import decision_out
from services.web.schemas import (
    AgreementOut,
    ConflictDecisionOut,
    ConflictOut,
    DecisionOut,
    ResolveIn,
)
from services.web.security import csrf_protect, flash

router = APIRouter(dependencies=[Depends(csrf_protect)])


@router.get("/reviews/{slug}/conflicts", include_in_schema=False)
def conflicts_page(request: Request, access: Admin, session: DbSession) -> Response:
    return request.app.state.templates.TemplateResponse(
        request,
        "conflicts.html",
        {
            "access": access,
            "review": access.review,
            "rules": rules_of(access.review),
            "conflicts": list_conflicts(session=session, review=access.review),
            "agreements": pair_agreements(session=session, review=access.review),
        },
    )


@router.post("/reviews/{slug}/conflicts/{review_record_id}", include_in_schema=False)
def conflicts_resolve_form(
    request: Request,
    access: Admin,
    session: DbSession,
    review_record_id: int,
    choice: Annotated[str, Form(max_length=600)],
    note: Annotated[str | None, Form(max_length=4000)] = None,
) -> Response:
    decision, _, reason = choice.partition("::")
    try:
        row = resolve_conflict(
            session=session,
            review=access.review,
            user=access.user,
            review_record_id=review_record_id,
            decision=decision,
            reason=reason or None,
            note=note,
        )
        session.commit()
        flash(request, f"Resolved {record_name(row.review_record)}: {decision}.", "ok")
    except (ConflictError, InvalidInputError) as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return RedirectResponse(f"/reviews/{access.review.slug}/conflicts", status_code=303)


@router.get("/api/reviews/{slug}/conflicts", response_model=list[ConflictOut], tags=["conflicts"])
def api_conflicts(access: Admin, session: DbSession) -> list[ConflictOut]:
    """Records whose reviewers disagree (admins only)."""
    return [
        ConflictOut(
            review_record_id=c.review_record.id,
            pmid=c.record.pmid,
            title=c.record.title,
            stage=c.review_record.stage,
            decisions=[
                ConflictDecisionOut(
                    reviewer=name, decision=d.decision, reason=d.reason, note=d.note
                )
                for d, name in c.decisions
            ],
        )
        for c in list_conflicts(session=session, review=access.review)
    ]


@router.post(
    "/api/reviews/{slug}/conflicts/{review_record_id}/resolve",
    response_model=DecisionOut,
    status_code=201,
    tags=["conflicts"],
)
def api_resolve(
    review_record_id: int, body: ResolveIn, access: Admin, session: DbSession
) -> DecisionOut:
    """Adjudicate a conflict at the record's current stage (admins only)."""
    row = resolve_conflict(
        session=session,
        review=access.review,
        user=access.user,
        review_record_id=review_record_id,
        decision=body.decision,
        reason=body.reason,
        note=body.note,
    )
    session.commit()
    return decision_out(session, row)


@router.get("/api/reviews/{slug}/agreement", response_model=list[AgreementOut], tags=["conflicts"])
def api_agreement(access: Member, session: DbSession) -> list[AgreementOut]:
    """Cohen's kappa per pair of reviewers and stage, with the counts behind it."""
    return [
        AgreementOut(**a.__dict__) for a in pair_agreements(session=session, review=access.review)
    ]
