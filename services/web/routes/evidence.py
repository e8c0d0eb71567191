"""The evidence pages: predictor and mechanism tables (CSV exports), and the summary of
findings with the GRADE rating of the outcome — each domain's proposal with its reason, a
reviewer's confirmation, the funnel plot and the low risk-of-bias sensitivity estimate."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from services.evidence.errors import EvidenceInputError
from services.evidence.grade import DOMAIN_LABELS, confirm_domain
from services.evidence.snapshots import build_report
from services.evidence.summary import mechanisms_csv, predictors_csv, sof_csv, summary_of_findings
from services.web.deps import DbSession, Member
from services.web.funnel_svg import funnel_svg
from services.web.routes.extraction import _recompute as recompute_after_change
from services.web.security import csrf_protect, flash

router = APIRouter(dependencies=[Depends(csrf_protect)])
CSV = "text/csv; charset=utf-8"


def _csv(text: str, name: str) -> Response:
    return Response(text, media_type=CSV, headers={"Content-Disposition": f"attachment; filename={name}"})


@router.get("/reviews/{slug}/evidence", include_in_schema=False)
def evidence_page(request: Request, access: Member, session: DbSession) -> Response:
    report = build_report(session, access.review)
    return request.app.state.templates.TemplateResponse(
        request, "evidence.html",
        {"access": access, "review": access.review, "tables": report.tables},
    )


@router.get("/reviews/{slug}/evidence/predictors.csv", include_in_schema=False)
def predictors_export(access: Member, session: DbSession) -> Response:
    tables = build_report(session, access.review).tables
    return _csv(predictors_csv(tables), f"{access.review.slug}-predictors.csv")


@router.get("/reviews/{slug}/evidence/mechanisms.csv", include_in_schema=False)
def mechanisms_export(access: Member, session: DbSession) -> Response:
    tables = build_report(session, access.review).tables
    return _csv(mechanisms_csv(tables), f"{access.review.slug}-mechanisms.csv")


@router.get("/api/reviews/{slug}/evidence", tags=["evidence"])
def api_evidence(access: Member, session: DbSession) -> dict[str, Any]:
    """The evidence tables, risk-of-bias standing and certainty (as ``evidence --json``)."""
    return {"review": access.review.slug, **build_report(session, access.review).to_dict()}


@router.get("/reviews/{slug}/summary", include_in_schema=False)
def summary_page(request: Request, access: Member, session: DbSession) -> Response:
    sof = summary_of_findings(session, access.review)
    funnel = sof["prevalence"]["certainty"].get("funnel")
    return request.app.state.templates.TemplateResponse(
        request, "summary.html",
        {"access": access, "review": access.review, "sof": sof,
         "funnel": funnel_svg(funnel) if funnel else None, "errors": {}},
    )


@router.get("/reviews/{slug}/summary.csv", include_in_schema=False)
def summary_export(access: Member, session: DbSession) -> Response:
    sof = summary_of_findings(session, access.review)
    return _csv(sof_csv(sof), f"{access.review.slug}-summary-of-findings.csv")


@router.get("/api/reviews/{slug}/summary", tags=["evidence"])
def api_summary(access: Member, session: DbSession) -> dict[str, Any]:
    """The summary of findings (as ``summary --json``)."""
    return summary_of_findings(session, access.review)


@router.post("/reviews/{slug}/grade/{domain}", include_in_schema=False)
async def grade_confirm(
    request: Request, domain: str, access: Member, session: DbSession
) -> Response:
    form = await request.form()
    proposed = str(form.get("proposed") or "")
    outcome = str((access.review.protocol or {}).get("outcome", {}).get("name") or "outcome")
    try:
        confirm_domain(
            session=session, review=access.review, user=access.user, outcome=outcome,
            domain=domain, downgrade=form.get("downgrade"),
            proposed=int(proposed) if proposed.isdigit() else -1,
            reason=str(form.get("reason") or ""),
        )
        session.commit()
    except EvidenceInputError as exc:
        session.rollback()
        sof = summary_of_findings(session, access.review)
        funnel = sof["prevalence"]["certainty"].get("funnel")
        return request.app.state.templates.TemplateResponse(
            request, "summary.html",
            {"access": access, "review": access.review, "sof": sof,
             "funnel": funnel_svg(funnel) if funnel else None,
             "errors": {domain: exc.errors}},
            status_code=422,
        )
    recompute_after_change(request, access.review.id)
    flash(request, f"{DOMAIN_LABELS.get(domain, domain)} confirmed.", "ok")
    return RedirectResponse(f"/reviews/{access.review.slug}/summary#grade", status_code=303)
