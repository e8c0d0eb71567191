"""The review list and the review dashboard: estimate, forest plot, audit findings, history,
PRISMA flow diagram, update runs, agreement and (admins) the audit log."""

from __future__ import annotations

import dataclasses
import datetime as dt
import tempfile
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import AuditLog, EstimateSnapshot, Review, SearchRun
from services.accounts import reviews_of
from services.evidence.snapshots import latest_evidence
from services.meta_analysis import PoolResult, StudyRow
from services.meta_analysis.plots import forest_plot
from services.screening import pair_agreements, progress
from services.screening.prisma import prisma_counts
from services.screening.rules import STAGES, rules_of
from services.web.dashboard import audit_log_page, finding_lines, moved_by, run_state, study_labels
from services.web.deps import Admin, CurrentUser, DbSession, Member
from services.web.prisma_svg import prisma_svg
from services.web.schemas import EstimateOut, ReviewOut
from services.web.security import csrf_protect

router = APIRouter(dependencies=[Depends(csrf_protect)])
SVG = "image/svg+xml"
FOREST_CACHE_SIZE = 32


def snapshots(session: Session, review: Review, limit: int = 50) -> list[EstimateSnapshot]:
    """The review's estimate snapshots, newest first."""
    return list(
        session.scalars(
            select(EstimateSnapshot)
            .where(EstimateSnapshot.review_id == review.id)
            .order_by(EstimateSnapshot.id.desc())
            .limit(limit)
        )
    )


@router.get("/", include_in_schema=False)
def home(request: Request, user: CurrentUser, session: DbSession) -> Response:
    return request.app.state.templates.TemplateResponse(
        request, "reviews.html", {"user": user, "reviews": reviews_of(session=session, user=user)}
    )


@router.get("/reviews/{slug}", include_in_schema=False)
def dashboard(
    request: Request, access: Member, session: DbSession, log_page: int = 1
) -> Response:
    review = access.review
    history = snapshots(session, review)
    latest = history[0] if history else None
    cache = request.app.state.forest_cache
    runs = session.scalars(
        select(SearchRun)
        .where(SearchRun.review_id == review.id)
        .order_by(SearchRun.id.desc())
        .limit(10)
    ).all()
    now = dt.datetime.now(dt.UTC)
    ttl = request.app.state.settings.update_lock_ttl
    return request.app.state.templates.TemplateResponse(
        request,
        "dashboard.html",
        {
            "access": access,
            "review": review,
            "rules": rules_of(review),
            "latest": latest,
            "findings": cache.get(
                ("findings", latest.id), lambda: finding_lines(latest.audit or [])
            )
            if latest
            else [],
            "sensitivity": (latest.result or {}).get("sensitivity") if latest else None,
            "history": history,
            "moved": cache.get(
                ("moved", latest.id, len(history)), lambda: moved_by(session, history)
            )
            if latest
            else {},
            "runs": [(run, run_state(run, now, ttl)) for run in runs],
            "progress": [
                progress(session=session, review=review, user=access.user, stage=s) for s in STAGES
            ],
            "agreements": pair_agreements(session=session, review=review),
            "audit_log": audit_log_page(session, review.id, log_page) if access.is_admin else None,
            "evidence": latest_evidence(session, review.id),
        },
    )


@router.get("/reviews/{slug}/prisma.svg", include_in_schema=False)
def prisma_image(access: Member, session: DbSession) -> Response:
    counts = prisma_counts(session=session, review=access.review)
    return Response(prisma_svg(counts), media_type=SVG)


def pool_result(data: dict[str, Any]) -> PoolResult:
    """A PoolResult back from a snapshot's stored ``result`` (extra keys ignored)."""
    names = {f.name for f in dataclasses.fields(PoolResult)}
    row_names = {f.name for f in dataclasses.fields(StudyRow)}
    values = {k: v for k, v in data.items() if k in names and k != "studies"}
    values["notes"] = tuple(values.get("notes") or ())
    rows = tuple(
        StudyRow(**{k: v for k, v in s.items() if k in row_names})
        for s in data.get("studies") or []
    )
    return PoolResult(**values, studies=rows)


@router.get("/reviews/{slug}/forest.svg", include_in_schema=False)
def forest_image(request: Request, access: Member, session: DbSession) -> Response:
    latest = next(iter(snapshots(session, access.review, 1)), None)
    if latest is None or not latest.result:
        return Response(status_code=404)

    def draw() -> str:
        added = (latest.changes or {}).get("studies_added") or []
        new = set(study_labels(session, [int(i) for i in added]).values())
        with tempfile.TemporaryDirectory() as folder:
            path = forest_plot(
                pool_result(latest.result),
                Path(folder) / "forest.svg",
                title=f"{access.review.title} — {latest.outcome}",
                excluded=latest.result.get("excluded") or None,
                new=new,
            )
            return path.read_text(encoding="utf-8")

    return Response(request.app.state.forest_cache.get(("forest", latest.id), draw), media_type=SVG)


@router.get("/api/reviews", response_model=list[ReviewOut], tags=["reviews"])
def api_reviews(user: CurrentUser, session: DbSession) -> list[ReviewOut]:
    """The reviews the signed-in user belongs to, with their role."""
    return [
        ReviewOut(
            slug=r.slug,
            title=r.title,
            role=role,
            reviewers_per_record=rules_of(r).reviewers_per_record,
        )
        for r, role in reviews_of(session=session, user=user)
    ]


@router.get("/api/reviews/{slug}/estimates", response_model=list[EstimateOut], tags=["reviews"])
def api_estimates(access: Member, session: DbSession) -> list[EstimateOut]:
    """The pooled estimate's history, newest first."""
    return [
        EstimateOut(
            id=s.id,
            created_at=s.created_at,
            trigger=s.trigger,
            k=s.k,
            estimate=s.estimate,
            ci_low=s.ci_low,
            ci_high=s.ci_high,
            pi_low=s.pi_low,
            pi_high=s.pi_high,
            i2=s.i2,
            tau2=s.tau2,
        )
        for s in snapshots(session, access.review)
    ]


@router.get("/api/reviews/{slug}/prisma", tags=["reviews"])
def api_prisma(access: Member, session: DbSession) -> dict[str, Any]:
    """The PRISMA 2020 flow counts."""
    return dataclasses.asdict(prisma_counts(session=session, review=access.review))


@router.get("/api/reviews/{slug}/audit-log", tags=["reviews"])
def api_audit_log(access: Admin, session: DbSession, limit: int = 100) -> list[dict[str, Any]]:
    """Recent audit log lines of the review (admins only)."""
    rows = session.scalars(
        select(AuditLog)
        .where(AuditLog.review_id == access.review.id)
        .order_by(AuditLog.id.desc())
        .limit(min(max(limit, 1), 1000))
    )
    return [
        {
            "id": r.id,
            "at": r.created_at.isoformat(),
            "user_id": r.user_id,
            "action": r.action,
            "entity": r.entity,
            "entity_id": r.entity_id,
            "detail": r.detail,
        }
        for r in rows
    ]
