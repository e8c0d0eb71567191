"""Risk-of-bias pages: each rater rates studies blind to the other (only their own answers are
shown); admins see where raters stand, Cohen's κ per item and overall, and resolve conflicts."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import RobRating, Study, User
from services.evidence import rob
from services.evidence.errors import EvidenceConflict, EvidenceInputError, EvidenceNotFound
from services.meta_analysis.store import load_studies
from services.screening.rules import rules_of
from services.web.deps import Admin, DbSession, Member, ReviewAccess
from services.web.errors import error_response
from services.web.routes.extraction import _recompute as recompute_after_change
from services.web.security import csrf_protect, flash

router = APIRouter(dependencies=[Depends(csrf_protect)])


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    answers: dict[str, str]
    overall: str
    note: str | None = Field(default=None, max_length=1000)


def _studies(session: Session, access: ReviewAccess) -> list[Study]:
    rules = rules_of(access.review)
    studies = load_studies(
        session, access.review.id, events_field=rules.events_field, total_field=rules.total_field
    )
    ids = [s.study_id for s in studies if s.study_id is not None]
    rows = {s.id: s for s in session.scalars(select(Study).where(Study.id.in_(ids)))}
    return [rows[i] for i in ids if i in rows]


def _own(session: Session, access: ReviewAccess, tool: str, study_id: int, role: str = "rater") -> RobRating | None:
    return session.scalars(
        select(RobRating).where(
            RobRating.study_id == study_id, RobRating.user_id == access.user.id,
            RobRating.tool == tool, RobRating.role == role,
        )
    ).first()


def _refused(request: Request, exc: Exception) -> Response:
    if isinstance(exc, EvidenceNotFound):
        return error_response(request, 404, str(exc))
    if isinstance(exc, EvidenceConflict):
        return error_response(request, 409, str(exc))
    errors = exc.errors if isinstance(exc, EvidenceInputError) else None
    return error_response(request, 422, str(exc), errors)


@router.get("/reviews/{slug}/rob", include_in_schema=False)
def rob_list(request: Request, access: Member, session: DbSession) -> Response:
    try:
        tool = rob.require_tool(access.review)
    except EvidenceNotFound as exc:
        return _refused(request, exc)
    studies = _studies(session, access)
    mine = {
        r.study_id: r
        for r in session.scalars(select(RobRating).where(
            RobRating.review_id == access.review.id, RobRating.user_id == access.user.id,
            RobRating.tool == tool.tool, RobRating.role == "rater"))
    }
    context: dict[str, Any] = {
        "access": access, "review": access.review, "tool": tool, "studies": studies, "mine": mine,
        "states": rob.states(session, access.review) if access.is_admin else {},
        "agreement": rob.agreement(session, access.review) if access.is_admin else None,
    }
    return request.app.state.templates.TemplateResponse(request, "rob_list.html", context)


def _form(
    request: Request, access: ReviewAccess, session: Session, study: Study,
    values: dict[str, Any] | None, errors: dict[str, str], status_code: int = 200,
) -> Response:
    tool = rob.require_tool(access.review)
    own = _own(session, access, tool.tool, study.id)
    if values is None:
        values = {"answers": dict(own.answers) if own else {}, "overall": own.overall if own else "",
                  "note": (own.note or "") if own else ""}
    return request.app.state.templates.TemplateResponse(
        request, "rob_form.html",
        {"access": access, "review": access.review, "tool": tool, "study": study,
         "values": values, "errors": errors, "own": own, "action": "rate", "raters": []},
        status_code=status_code,
    )


def _study(session: Session, access: ReviewAccess, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None or study.review_id != access.review.id:
        raise EvidenceNotFound(f"study {study_id} is not in review {access.review.slug}")
    return study


@router.get("/reviews/{slug}/rob/{study_id}", include_in_schema=False)
def rob_form(request: Request, study_id: int, access: Member, session: DbSession) -> Response:
    try:
        return _form(request, access, session, _study(session, access, study_id), None, {})
    except EvidenceNotFound as exc:
        return _refused(request, exc)


def _submitted(form: Any, tool: Any) -> dict[str, Any]:
    return {
        "answers": {item.key: str(form.get(f"item.{item.key}") or "") for item in tool.items},
        "overall": str(form.get("overall") or ""),
        "note": str(form.get("note") or ""),
    }


@router.post("/reviews/{slug}/rob/{study_id}", include_in_schema=False)
async def rob_submit(request: Request, study_id: int, access: Member, session: DbSession) -> Response:
    form = await request.form()
    try:
        study = _study(session, access, study_id)
        values = _submitted(form, rob.require_tool(access.review))
        rob.save_rating(session=session, review=access.review, user=access.user,
                        study_id=study.id, **values)
        session.commit()
    except EvidenceInputError as exc:
        session.rollback()
        return _form(request, access, session, study, values, exc.errors, 422)
    except (EvidenceNotFound, EvidenceConflict) as exc:
        session.rollback()
        return _refused(request, exc)
    recompute_after_change(request, access.review.id)
    flash(request, f"Risk of bias of {study.label} saved.", "ok")
    return RedirectResponse(f"/reviews/{access.review.slug}/rob", status_code=303)


def _resolve_context(
    access: ReviewAccess, session: Session, study: Study, values: dict[str, Any] | None,
    errors: dict[str, str],
) -> dict[str, Any]:
    tool = rob.require_tool(access.review)
    rows = rob.ratings_by_study(session, access.review, tool).get(study.id, [])
    state = rob.study_state(study.id, rows, tool)
    raters = [r for r in rows if r.role == "rater"]
    names = {u.id: u.name or u.email for u in session.scalars(
        select(User).where(User.id.in_([r.user_id for r in raters])))}
    if values is None:
        first = raters[0] if raters else None
        values = {"answers": dict(first.answers) if first else {},
                  "overall": first.overall if first else "", "note": ""}
    return {"access": access, "review": access.review, "tool": tool, "study": study,
            "values": values, "errors": errors, "own": None, "action": "resolve",
            "raters": [(names.get(r.user_id, str(r.user_id)), r) for r in raters],
            "state": state}


@router.get("/reviews/{slug}/rob/{study_id}/resolve", include_in_schema=False)
def rob_resolve_page(request: Request, study_id: int, access: Admin, session: DbSession) -> Response:
    try:
        context = _resolve_context(access, session, _study(session, access, study_id), None, {})
    except EvidenceNotFound as exc:
        return _refused(request, exc)
    return request.app.state.templates.TemplateResponse(request, "rob_form.html", context)


@router.post("/reviews/{slug}/rob/{study_id}/resolve", include_in_schema=False)
async def rob_resolve(request: Request, study_id: int, access: Admin, session: DbSession) -> Response:
    form = await request.form()
    try:
        study = _study(session, access, study_id)
        values = _submitted(form, rob.require_tool(access.review))
        rob.resolve(session=session, review=access.review, user=access.user, study_id=study.id,
                    **values)
        session.commit()
    except EvidenceInputError as exc:
        session.rollback()
        context = _resolve_context(access, session, study, values, exc.errors)
        return request.app.state.templates.TemplateResponse(request, "rob_form.html", context,
                                                            status_code=422)
    except (EvidenceNotFound, EvidenceConflict) as exc:
        session.rollback()
        return _refused(request, exc)
    recompute_after_change(request, access.review.id)
    flash(request, f"Conflict on {study.label} resolved.", "ok")
    return RedirectResponse(f"/reviews/{access.review.slug}/rob", status_code=303)


@router.post("/api/reviews/{slug}/rob/{study_id}", status_code=201, tags=["risk of bias"])
def api_rate(request: Request, study_id: int, body: RatingIn, access: Member,
             session: DbSession) -> Any:
    """Save your rating of a study (answers per item, overall); 422 names each bad item."""
    try:
        row = rob.save_rating(session=session, review=access.review, user=access.user,
                              study_id=study_id, answers=body.answers, overall=body.overall,
                              note=body.note)
        session.commit()
    except (EvidenceInputError, EvidenceNotFound, EvidenceConflict) as exc:
        session.rollback()
        return _refused(request, exc)
    return {"id": row.id, "study_id": row.study_id, "overall": row.overall, "answers": row.answers}


@router.get("/api/reviews/{slug}/rob/agreement", tags=["risk of bias"])
def api_agreement(access: Admin, session: DbSession) -> dict[str, Any]:
    """Cohen's κ per item and overall between first and second raters (admins)."""
    return rob.agreement(session, access.review)
