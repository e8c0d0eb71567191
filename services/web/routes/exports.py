"""Exports: included studies with confirmed data (CSV); every record with its decisions (CSV, RIS);
the PRISMA flow counts (CSV). Downloads are never cached (``Cache-Control: no-store``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from services.screening.export import prisma_csv, records_csv, records_ris, studies_csv
from services.screening.prisma import prisma_counts
from services.web.deps import Admin, DbSession, Member
from services.web.security import csrf_protect

router = APIRouter(dependencies=[Depends(csrf_protect)], tags=["export"])


def _download(body: str, media_type: str, filename: str) -> Response:
    return Response(
        body,
        media_type=media_type,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
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
    """Every record of the review with its decision, reason, reviewers, notes, flags and
    decision history (admins only)."""
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


@router.get("/reviews/{slug}/export/prisma.csv")
def export_prisma_csv(access: Member, session: DbSession) -> Response:
    """The PRISMA 2020 flow counts, one box per row (section, box, count)."""
    return _download(
        prisma_csv(prisma_counts(session=session, review=access.review)),
        "text/csv",
        f"{access.review.slug}-prisma.csv",
    )
