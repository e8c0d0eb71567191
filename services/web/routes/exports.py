"""Exports: included studies with confirmed data (CSV); screened records (CSV, RIS)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.screening.export import records_csv, records_ris, studies_csv
from services.web.deps import Admin, DbSession, Member
from services.web.security import csrf_protect

router = APIRouter(dependencies=[Depends(csrf_protect)], tags=["export"])


def _download(body: str, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get("/reviews/{slug}/export/studies.csv")
def export_studies(access: Member, session: DbSession) -> Response:
    """Included studies with their current extraction, one row per study."""
    return _download(
        studies_csv(session=session, review=access.review),
        "text/csv",
        f"{access.review.slug}-studies.csv",
    )


@router.get("/reviews/{slug}/export/records.csv")
def export_records_csv(access: Admin, session: DbSession) -> Response:
    """Records sent to screening with their decision, reason and reviewers (admins only)."""
    return _download(
        records_csv(session=session, review=access.review),
        "text/csv",
        f"{access.review.slug}-records.csv",
    )


@router.get("/reviews/{slug}/export/records.ris")
def export_records_ris(access: Admin, session: DbSession) -> Response:
    """The same records as RIS for reference managers (decision in N1 and KW)."""
    return _download(
        records_ris(session=session, review=access.review),
        "application/x-research-info-systems",
        f"{access.review.slug}-records.ris",
    )
