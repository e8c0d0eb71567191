"""Included studies and the extraction form: proposal pre-filled, evidence highlighted,
confirmation (new row superseding the previous), then the pooled estimate is recomputed."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Extraction, Record, Study, User
from services.evidence.findings import findings_from_form
from services.screening import InvalidInputError, confirm_extraction
from services.screening.extraction import (
    current_extraction,
    extraction_history,
    form_fields,
    latest_proposal,
    prefill,
    proposal_hints,
    study_of,
)
from services.web.deps import DbSession, Member, ReviewAccess
from services.web.schemas import ExtractionIn, ExtractionOut
from services.web.security import csrf_protect, flash
from services.web.text import evidence_spans, mark

logger = logging.getLogger(__name__)
router = APIRouter(dependencies=[Depends(csrf_protect)])


def _recompute(request: Request, review_id: int) -> None:
    """Ask for the recompute after the confirmation committed; it never runs on the request.

    With a worker configured (this app's ``redis_url``) the worker's debounced task does it,
    else this process's :class:`services.web.recompute.LocalRecompute` (debounced the same way).
    """
    settings = request.app.state.settings
    if settings.redis_url:
        from workers.tasks import request_recompute

        request_recompute(review_id)
        return
    request.app.state.recompute.request(review_id)


@router.get("/reviews/{slug}/studies", include_in_schema=False)
def studies_page(request: Request, access: Member, session: DbSession) -> Response:
    studies = session.scalars(
        select(Study)
        .where(Study.review_id == access.review.id)
        .order_by(Study.source, Study.ref_no, Study.id)
    ).all()
    current = {s.id: current_extraction(session, s.id) for s in studies}
    return request.app.state.templates.TemplateResponse(
        request,
        "studies.html",
        {
            "access": access,
            "review": access.review,
            "studies": studies,
            "current": current,
        },
    )


def _form_context(
    session: Session,
    access: ReviewAccess,
    study: Study,
    values: dict[str, Any] | None,
    errors: dict[str, str],
) -> dict[str, Any]:
    specs = form_fields(access.review)
    current = current_extraction(session, study.id)
    proposal = latest_proposal(session, access.review, study.record_id)
    record = session.get(Record, study.record_id) if study.record_id else None
    fields = proposal.fields if proposal else {}
    abstract = mark(record.abstract, evidence_spans(record.abstract, fields)) if record else None
    history = extraction_history(session, study.id)
    users = {
        u.id: u.name or u.email
        for u in session.scalars(
            select(User).where(User.id.in_([h.user_id for h in history if h.user_id]))
        )
    }
    return {
        "access": access,
        "review": access.review,
        "study": study,
        "record": record,
        "specs": specs,
        "values": values or prefill(specs, current, proposal),
        "hints": proposal_hints(specs, proposal) if current is None else {},
        "errors": errors,
        "proposal": fields,
        "current": current,
        "abstract": abstract,
        "history": history,
        "users": users,
    }


@router.get("/reviews/{slug}/studies/{study_id}/extraction", include_in_schema=False)
def extraction_page(
    request: Request, study_id: int, access: Member, session: DbSession
) -> Response:
    study = study_of(session, access.review, study_id)
    return request.app.state.templates.TemplateResponse(
        request, "extraction.html", _form_context(session, access, study, None, {})
    )


@router.post("/reviews/{slug}/studies/{study_id}/extraction", include_in_schema=False)
async def extraction_submit(
    request: Request, study_id: int, access: Member, session: DbSession
) -> Response:
    form = await request.form()
    specs = form_fields(access.review)
    values: dict[str, Any] = {}
    for spec in specs:
        if spec.type == "findings":
            values[spec.name] = findings_from_form(form, spec.name)
            continue
        items = [str(v) for v in form.getlist(spec.name)]
        values[spec.name] = items if spec.type == "list" else (items[0] if items else "")
    expected = str(form.get("expected_current_id") or "")
    study = study_of(session, access.review, study_id)
    try:
        confirm_extraction(
            session=session,
            review=access.review,
            user=access.user,
            study_id=study.id,
            values=values,
            expected_current_id=int(expected) if expected.isdigit() else None,
        )
        session.commit()
    except InvalidInputError as exc:
        session.rollback()
        context = _form_context(session, access, study, values, exc.errors)
        return request.app.state.templates.TemplateResponse(
            request, "extraction.html", context, status_code=422
        )
    _recompute(request, access.review.id)
    flash(
        request,
        f"Extraction of {study.label} confirmed; the pooled estimate is being recomputed "
        "(the dashboard shows it in a moment).",
        "ok",
    )
    return RedirectResponse(
        f"/reviews/{access.review.slug}/studies/{study_id}/extraction", status_code=303
    )


def extraction_out(row: Extraction) -> ExtractionOut:
    return ExtractionOut(
        id=row.id,
        study_id=row.study_id,
        data=row.data,
        status=row.status,
        source=row.source,
        user_id=row.user_id,
        supersedes_id=row.supersedes_id,
        superseded=row.superseded,
        created_at=row.created_at,
    )


@router.get(
    "/api/reviews/{slug}/studies/{study_id}/extractions",
    response_model=list[ExtractionOut],
    tags=["extraction"],
)
def api_history(study_id: int, access: Member, session: DbSession) -> list[ExtractionOut]:
    """A study's extractions, newest first (the first not superseded is current)."""
    study = study_of(session, access.review, study_id)
    return [extraction_out(row) for row in extraction_history(session, study.id)]


@router.post(
    "/api/reviews/{slug}/studies/{study_id}/extractions",
    response_model=ExtractionOut,
    status_code=201,
    tags=["extraction"],
    responses={
        409: {"description": "confirmed meanwhile by someone else"},
        422: {"description": "invalid values (each field named)"},
    },
)
def api_confirm(
    request: Request, study_id: int, body: ExtractionIn, access: Member, session: DbSession
) -> ExtractionOut:
    """Confirm (or correct) a study's data; the pooled estimate is recomputed after."""
    row = confirm_extraction(
        session=session,
        review=access.review,
        user=access.user,
        study_id=study_id,
        values=body.values,
        expected_current_id=body.expected_current_id,
    )
    session.commit()
    out = extraction_out(row)
    _recompute(request, access.review.id)
    return out
