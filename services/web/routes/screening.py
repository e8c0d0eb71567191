"""The screening queue: the next record page, decisions, undo (pages and /api/)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from db.models import ReviewRecord, ScreeningDecision
from services.screening import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    next_record,
    progress,
    record_decision,
    undo_last,
)
from services.screening.decisions import change_decision, my_decisions, record_name
from services.screening.queue import check_stage
from services.screening.rules import TITLE_ABSTRACT, rules_of
from services.web.cards import record_card
from services.web.deps import DbSession, Member, ReviewAccess
from services.web.schemas import ChangeIn, DecisionIn, DecisionOut, NextOut, ProgressOut, RecordOut
from services.web.security import csrf_protect, flash

router = APIRouter(dependencies=[Depends(csrf_protect)])


def refit_later(request: Request, review_id: int) -> None:
    """Ask for a background refit of the queue order (active learning); never waits for it."""
    refitter = request.app.state.refitter
    if refitter is not None:
        refitter.poke(review_id)


def serve_next(
    request: Request, session: Session, access: ReviewAccess, stage: str
) -> ReviewRecord | None:
    """The reviewer's next record, leased to them in single screening (committed here)."""
    rr = next_record(
        session=session,
        review=access.review,
        user=access.user,
        stage=stage,
        lease_seconds=request.app.state.settings.screening_lease_seconds,
    )
    session.commit()
    return rr


def record_out(rr: ReviewRecord) -> RecordOut:
    r = rr.record
    return RecordOut(
        review_record_id=rr.id,
        pmid=r.pmid,
        doi=r.doi,
        title=r.title,
        abstract=r.abstract,
        abstract_sections=list(r.abstract_sections or []),
        journal=r.journal,
        year=r.year,
        publication_types=list(r.publication_types or []),
        languages=list(r.languages or []),
        stage=rr.stage,
        score=rr.score,
        priority=rr.priority,
        rule=rr.rule,
        model_version=rr.model_version,
        reason=rr.reason,
    )


def decision_out(session: Session, row: ScreeningDecision) -> DecisionOut:
    rr = row.review_record  # already loaded when the decision was just recorded
    if rr is None:
        raise NotFoundError(f"record {row.review_record_id} is gone")
    return DecisionOut(
        id=row.id,
        review_record_id=rr.id,
        stage=row.stage,
        decision=row.decision,
        reason=row.reason,
        source=row.source,
        undone=row.undone_at is not None,
        record_state=rr.state,
        record_stage=rr.stage,
        study_id=rr.study_id,
    )


@router.get("/reviews/{slug}/screen", include_in_schema=False)
def screen_page(
    request: Request, access: Member, session: DbSession, stage: str = TITLE_ABSTRACT
) -> Response:
    check_stage(stage)
    rr = serve_next(request, session, access, stage)
    rules = rules_of(access.review)
    waiting = held = 0
    if rr is None:
        p = progress(session=session, review=access.review, user=access.user, stage=stage)
        waiting, held = p.queued - p.left_for_user, p.held_by_others
    return request.app.state.templates.TemplateResponse(
        request,
        "screen.html",
        {
            "access": access,
            "review": access.review,
            "stage": stage,
            "rr": rr,
            "record": rr.record if rr else None,
            "rules": rules,
            "card": record_card(session, rr) if rr else None,
            "waiting": waiting,
            "held": held,
        },
    )


@router.post("/reviews/{slug}/screen", include_in_schema=False)
def screen_submit(
    request: Request,
    access: Member,
    session: DbSession,
    review_record_id: Annotated[int, Form()],
    stage: Annotated[str, Form()],
    choice: Annotated[str, Form(max_length=600)],
    note: Annotated[str | None, Form(max_length=4000)] = None,
) -> Response:
    """Form post from the queue page; ``choice`` is include, maybe or exclude::<reason>."""
    decision, _, reason = choice.partition("::")
    target = f"/reviews/{access.review.slug}/screen?stage={stage}"
    try:
        row = record_decision(
            session=session,
            review=access.review,
            user=access.user,
            review_record_id=review_record_id,
            stage=stage,
            decision=decision,
            reason=reason or None,
            note=note,
        )
        session.commit()
        refit_later(request, access.review.id)
    except (ConflictError, InvalidInputError) as exc:
        session.rollback()
        flash(request, str(exc), "error")
        return RedirectResponse(target, status_code=303)
    out = decision_out(session, row)
    label = row.decision + (f" ({row.reason})" if row.reason else "")
    flash(request, f"Saved: {label} — {record_name(row.review_record)}.", "ok")
    if out.record_state == "included" and out.study_id:
        flash(
            request,
            f"Included: confirm its data at /reviews/{access.review.slug}/studies/"
            f"{out.study_id}/extraction",
            "ok",
        )
    return RedirectResponse(target, status_code=303)


@router.post("/reviews/{slug}/screen/undo", include_in_schema=False)
def screen_undo(
    request: Request,
    access: Member,
    session: DbSession,
    stage: Annotated[str, Form()] = TITLE_ABSTRACT,
) -> Response:
    try:
        row = undo_last(session=session, review=access.review, user=access.user)
        session.commit()
        refit_later(request, access.review.id)
        flash(request, f"Undone: {row.decision} on {record_name(row.review_record)}.", "ok")
    except (ConflictError, NotFoundError) as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return RedirectResponse(f"/reviews/{access.review.slug}/screen?stage={stage}", status_code=303)


@router.get("/api/reviews/{slug}/queue/next", response_model=NextOut, tags=["screening"])
def api_next(
    request: Request, access: Member, session: DbSession, stage: str = TITLE_ABSTRACT
) -> NextOut:
    """The next record for the signed-in reviewer at ``stage`` (null when done), and progress.

    In single screening the record is leased to the reviewer for SCREENING_LEASE_SECONDS:
    other reviewers are served other records meanwhile (``progress.held_by_others`` counts the
    records leased to them)."""
    rr = serve_next(request, session, access, stage)
    p = progress(session=session, review=access.review, user=access.user, stage=stage)
    return NextOut(
        record=record_out(rr) if rr else None,
        progress=ProgressOut(**p.__dict__),
        exclusion_reasons=list(rules_of(access.review).exclusion_reasons),
    )


@router.get("/api/reviews/{slug}/progress", response_model=ProgressOut, tags=["screening"])
def api_progress(access: Member, session: DbSession, stage: str = TITLE_ABSTRACT) -> ProgressOut:
    """Done and left for the signed-in reviewer, and the estimated recall (the queue page
    loads this after the record: it counts the whole queue)."""
    p = progress(session=session, review=access.review, user=access.user, stage=stage)
    return ProgressOut(**p.__dict__)


@router.post(
    "/api/reviews/{slug}/decisions",
    response_model=DecisionOut,
    status_code=201,
    tags=["screening"],
    responses={
        409: {"description": "record moved on"},
        422: {"description": "bad field (named)"},
        503: {"description": "database busy: nothing saved, send again after Retry-After"},
    },
)
def api_decide(
    request: Request, body: DecisionIn, access: Member, session: DbSession
) -> DecisionOut:
    """Record a decision on a queued record (needs X-CSRF-Token)."""
    row = record_decision(
        session=session,
        review=access.review,
        user=access.user,
        review_record_id=body.review_record_id,
        stage=body.stage,
        decision=body.decision,
        reason=body.reason,
        note=body.note,
    )
    session.commit()
    refit_later(request, access.review.id)
    return decision_out(session, row)


@router.post("/api/reviews/{slug}/decisions/undo", response_model=DecisionOut, tags=["screening"])
def api_undo(request: Request, access: Member, session: DbSession) -> DecisionOut:
    """Undo the signed-in reviewer's last decision in this review."""
    row = undo_last(session=session, review=access.review, user=access.user)
    session.commit()
    refit_later(request, access.review.id)
    return decision_out(session, row)


@router.get("/reviews/{slug}/decisions", include_in_schema=False)
def decisions_page(
    request: Request,
    access: Member,
    session: DbSession,
    decision: str = "",
    stage: str = "",
    q: str = "",
) -> Response:
    """The signed-in reviewer's decisions: filter by decision and stage, search title/PMID."""
    rows = my_decisions(
        session=session,
        review=access.review,
        user=access.user,
        decision=decision or None,
        stage=stage or None,
        search=q[:200] or None,
    )
    return request.app.state.templates.TemplateResponse(
        request,
        "decisions.html",
        {
            "access": access,
            "review": access.review,
            "rules": rules_of(access.review),
            "rows": rows,
            "filters": {"decision": decision, "stage": stage, "q": q[:200]},
        },
    )


@router.post("/reviews/{slug}/decisions/{decision_id}", include_in_schema=False)
def decisions_change(
    request: Request,
    decision_id: int,
    access: Member,
    session: DbSession,
    choice: Annotated[str, Form(max_length=600)],
    note: Annotated[str | None, Form(max_length=4000)] = None,
) -> Response:
    """Change one of the reviewer's decisions (``choice`` as on the queue page)."""
    decision, _, reason = choice.partition("::")
    try:
        row = change_decision(
            session=session,
            review=access.review,
            user=access.user,
            decision_id=decision_id,
            decision=decision,
            reason=reason or None,
            note=note or None,
        )
        session.commit()
        label = row.decision + (f" ({row.reason})" if row.reason else "")
        flash(request, f"Changed to {label}: {record_name(row.review_record)}.", "ok")
    except (ConflictError, InvalidInputError, NotFoundError) as exc:
        session.rollback()
        flash(request, str(exc), "error")
    return RedirectResponse(f"/reviews/{access.review.slug}/decisions", status_code=303)


@router.post(
    "/api/reviews/{slug}/decisions/{decision_id}",
    response_model=DecisionOut,
    status_code=201,
    tags=["screening"],
    responses={404: {"description": "not your current decision"}, 409: {"description": "moved on"}},
)
def api_change(decision_id: int, body: ChangeIn, access: Member, session: DbSession) -> DecisionOut:
    """Change one of the signed-in reviewer's current decisions; the change is logged."""
    row = change_decision(
        session=session,
        review=access.review,
        user=access.user,
        decision_id=decision_id,
        decision=body.decision,
        reason=body.reason,
        note=body.note,
    )
    session.commit()
    return decision_out(session, row)
