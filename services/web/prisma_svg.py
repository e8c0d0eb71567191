"""The PRISMA 2020 flow diagram (updated reviews) as a standalone SVG, from PrismaCounts.

Layout: previous studies at the top left; identification per update; records removed before
screening (duplicates, automation by rule and by classifier); screened → excluded; full text
assessed → excluded with reasons; new and total studies. All text is escaped.
"""

from __future__ import annotations

from markupsafe import escape

from services.screening.prisma import PrismaCounts

WIDTH = 760
BOX_W = 330
LINE_H = 16
FAMILY = "font-family='Helvetica, Arial, sans-serif'"
FONT = f"{FAMILY} font-size='12'"


def _box(x: int, y: int, lines: list[str], *, fill: str = "#ffffff") -> tuple[str, int]:
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


def prisma_svg(counts: PrismaCounts, title: str = "PRISMA 2020 flow diagram") -> str:
    """Render the flow diagram; every number comes from ``counts``."""
    left, right = 20, WIDTH - BOX_W - 20
    parts: list[str] = []
    y = 40
    previous, h = _box(
        left,
        y,
        ["Previous version of the review", f"Studies included: {counts.previous_studies}"],
        fill="#eef3fb",
    )
    parts.append(previous)
    y += h + 20
    per_update = [
        f"Update of {u.date.isoformat() if u.date else 'unknown date'}: {u.identified}"
        for u in counts.per_update[-6:]
    ]
    ident, h = _box(
        left, y, ["Records identified from PubMed", f"Total: {counts.identified}", *per_update]
    )
    removed, h2 = _box(
        right,
        y,
        [
            "Records removed before screening",
            f"Duplicates of known studies: {counts.duplicates}",
            f"Excluded by protocol rules: {counts.auto_excluded_rule}",
            f"Excluded by the classifier: {counts.auto_excluded_model}",
        ],
    )
    parts += [ident, removed, _arrow(left + BOX_W, y + h // 2, right, y + h2 // 2)]
    y_next = y + max(h, h2) + 30
    parts.append(_arrow(left + BOX_W // 2, y + h, left + BOX_W // 2, y_next))
    y = y_next
    screened, h = _box(
        left,
        y,
        [
            "Records screened (title/abstract)",
            f"{counts.screened}",
            f"Awaiting screening: {counts.awaiting}",
        ],
    )
    excluded, h2 = _box(right, y, ["Records excluded", f"{counts.excluded_title_abstract}"])
    parts += [screened, excluded, _arrow(left + BOX_W, y + h // 2, right, y + h2 // 2)]
    y_next = y + max(h, h2) + 30
    parts.append(_arrow(left + BOX_W // 2, y + h, left + BOX_W // 2, y_next))
    y = y_next
    reasons = [f"{reason}: {n}" for reason, n in counts.excluded_full_text.items()]
    assessed, h = _box(
        left, y, ["Reports assessed for eligibility", f"{counts.full_text_assessed}"]
    )
    ft_excluded, h2 = _box(
        right,
        y,
        ["Reports excluded", f"Total: {sum(counts.excluded_full_text.values())}", *reasons],
    )
    parts += [assessed, ft_excluded, _arrow(left + BOX_W, y + h // 2, right, y + h2 // 2)]
    y_next = y + max(h, h2) + 30
    parts.append(_arrow(left + BOX_W // 2, y + h, left + BOX_W // 2, y_next))
    y = y_next
    new, h = _box(
        left, y, ["New studies included in review", f"{counts.new_studies}"], fill="#eef7ee"
    )
    total, h2 = _box(
        right, y, ["Total studies included in review", f"{counts.total_studies}"], fill="#eef7ee"
    )
    parts += [new, total, _arrow(left + BOX_W, y + h // 2, right, y + h2 // 2)]
    height = y + max(h, h2) + 20
    head = (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
        f"viewBox='0 0 {WIDTH} {height}' role='img' aria-label='{escape(title)}'>"
        "<defs><marker id='arrow' markerWidth='8' markerHeight='8' refX='7' refY='4' "
        "orient='auto'><path d='M0,0 L8,4 L0,8 z' fill='#333'/></marker></defs>"
        f"<rect width='100%' height='100%' fill='#fff'/>"
        f"<text x='20' y='24' {FAMILY} font-size='15' font-weight='bold'>{escape(title)}</text>"
    )
    return head + "".join(parts) + "</svg>"
