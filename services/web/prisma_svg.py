"""The PRISMA 2020 flow diagram (updated reviews) as a standalone SVG, from PrismaCounts.

Layout (PRISMA 2020, updated reviews, databases only): the previous version's studies and
reports; records identified per update; removed before screening (duplicates, automation by rule
and by classifier, awaiting automation); screened → excluded; reports sought → not retrieved;
assessed → excluded with reasons; new studies (retracted apart) and the total, with how many have
outcome data and the pooled k. All text is escaped.
"""

from __future__ import annotations

from markupsafe import escape

from services.screening.prisma import PrismaCounts

WIDTH = 760
BOX_W = 330
LINE_H = 16
FAMILY = "font-family='Helvetica, Arial, sans-serif'"
FONT = f"{FAMILY} font-size='12'"


def _box(x: int, y: int, lines: list[str], fill: str = "#ffffff") -> tuple[str, int]:
    height = 14 + LINE_H * len(lines)
    parts = [
        f"<rect x='{x}' y='{y}' width='{BOX_W}' height='{height}' rx='4' "
        f"fill='{fill}' stroke='#333' stroke-width='1'/>"
    ]
    for i, text in enumerate(lines):
        weight = " font-weight='bold'" if i == 0 else ""
        parts.append(
            f"<text x='{x + 10}' y='{y + 20 + i * LINE_H}' {FONT}{weight}>{escape(text)}</text>"
        )
    return "".join(parts), height


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return (
        f"<line x1='{x1}' y1='{y1}' x2='{x2}' y2='{y2}' stroke='#333' "
        f"stroke-width='1.2' marker-end='url(#arrow)'/>"
    )


def _row(
    parts: list[str], y: int, left_lines: list[str], right_lines: list[str] | None, **kw: str
) -> int:
    """A left box (with a right box and an arrow to it, if any) at ``y``; the next row's y."""
    left, right = 20, WIDTH - BOX_W - 20
    box, h = _box(left, y, left_lines, **kw)
    parts.append(box)
    h2 = 0
    if right_lines is not None:
        box2, h2 = _box(right, y, right_lines, **kw)
        parts += [box2, _arrow(left + BOX_W, y + h // 2, right, y + h2 // 2)]
    return y + max(h, h2) + 30


def prisma_svg(counts: PrismaCounts, title: str = "PRISMA 2020 flow diagram (updated review)") -> str:
    """Render the flow diagram; every number comes from ``counts``."""
    c = counts
    parts: list[str] = []
    y = _row(
        parts,
        40,
        [
            "Previous version of the review",
            f"Studies included in previous version: {c.previous_studies}",
            f"Reports of studies in previous version: {c.previous_reports}",
            f"Retracted since: {c.previous_retracted}",
        ],
        None,
        fill="#eef3fb",
    )
    per_update = [
        f"Update of {u.date.isoformat() if u.date else 'unknown date'}: {u.identified}"
        for u in c.per_update[-6:]
    ]
    y = _row(
        parts,
        y,
        ["Records identified from PubMed", f"Total: {c.identified}", *per_update],
        [
            "Records removed before screening",
            f"Duplicates of known studies: {c.duplicates}",
            f"Ineligible by protocol rules (automation): {c.auto_excluded_rule}",
            f"Ineligible by the classifier (automation): {c.auto_excluded_model}",
            f"Awaiting automatic pre-screening: {c.awaiting_automation}",
            *([f"Deleted from PubMed (other reasons): {c.removed_deleted}"]
              if c.removed_deleted else []),
        ],
    )
    for top, bottom_lines, right_lines in (
        (
            "Records screened (title/abstract)",
            [f"{c.screened}", f"Awaiting screening: {c.awaiting}"],
            ["Records excluded", f"{c.excluded_title_abstract}"],
        ),
        (
            "Reports sought for retrieval",
            [f"{c.sought}", f"Awaiting full-text screening: {c.awaiting_full_text}"],
            ["Reports not retrieved", f"{c.not_retrieved}"],
        ),
        (
            "Reports assessed for eligibility",
            [f"{c.full_text_assessed}"],
            [
                "Reports excluded",
                f"Total: {sum(c.excluded_full_text.values())}",
                *[f"{reason}: {n}" for reason, n in c.excluded_full_text.items()],
            ],
        ),
    ):
        parts.append(_arrow(20 + BOX_W // 2, y - 30, 20 + BOX_W // 2, y))
        y = _row(parts, y, [top, *bottom_lines], right_lines)
    parts.append(_arrow(20 + BOX_W // 2, y - 30, 20 + BOX_W // 2, y))
    pooled = "–" if c.pooled_k is None else str(c.pooled_k)
    y = _row(
        parts,
        y,
        [
            "New studies included in review",
            f"{c.new_studies} (reports: {c.new_reports})",
            f"Retracted, left out: {c.new_retracted}",
        ],
        [
            "Total studies included in review",
            f"{c.total_studies} (reports: {c.total_reports})",
            f"With outcome data: {c.with_outcome_data}",
            f"In the pooled estimate: k = {pooled}",
        ],
        fill="#eef7ee",
    )
    height = y - 10
    head = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' role='img' aria-label='{escape(title)}'>"
        "<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='7' refY='4' "
        "orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#333'/></marker></defs>"
        f"<rect width='100%' height='100%' fill='#fff'/>"
        f"<text x='20' y='24' {FAMILY} font-size='15' font-weight='bold'>{escape(title)}</text>"
    )
    return head + "".join(parts) + "</svg>"
