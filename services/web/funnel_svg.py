"""The funnel plot (metafor's ``funnel(res)``) as a standalone SVG: each study's effect on the
transformed scale against its standard error (0 at the top), the pooled estimate as a
vertical line and the pseudo 95% confidence region refline ± 1.96·se. Text is escaped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from markupsafe import escape

WIDTH, HEIGHT, PAD = 520, 360, 48
FONT = "font-family='Helvetica, Arial, sans-serif' font-size='12'"


def funnel_svg(data: Mapping[str, Any], *, x_label: str = "logit proportion") -> str:
    """SVG text of the funnel plot of ``FunnelData.to_dict()``."""
    xs, ys, ref = list(data["x"]), list(data["y"]), float(data["refline"])
    region = [tuple(p) for p in data["region"]]
    top = max(ys) * 1.05 or 1.0
    lo = min([*xs, region[0][0]])
    hi = max([*xs, region[2][0]])
    span = (hi - lo) or 1.0

    def sx(x: float) -> float:
        return float(PAD + (x - lo) / span * (WIDTH - 2 * PAD))

    def sy(y: float) -> float:
        return PAD / 2 + y / top * (HEIGHT - PAD * 1.5)

    poly = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in region)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {HEIGHT}' "
        f"class='plot' role='img' aria-label='Funnel plot'>",
        f"<rect width='{WIDTH}' height='{HEIGHT}' fill='#ffffff'/>",
        f"<polygon points='{poly}' fill='#eef3fb' stroke='#8aa4d6'/>",
        f"<line x1='{sx(ref):.1f}' y1='{sy(0):.1f}' x2='{sx(ref):.1f}' y2='{sy(top):.1f}' "
        "stroke='#2457c5'/>",
    ]
    for x, y, label in zip(xs, ys, data.get("labels") or [""] * len(xs), strict=False):
        parts.append(
            f"<circle cx='{sx(x):.1f}' cy='{sy(y):.1f}' r='3.5' fill='#1d2433'>"
            f"<title>{escape(label)}: {x:.2f} (se {y:.2f})</title></circle>"
        )
    base = HEIGHT - PAD / 2
    parts += [
        f"<text x='{WIDTH / 2}' y='{base + 14}' text-anchor='middle' {FONT}>{escape(x_label)}</text>",
        f"<text x='12' y='{HEIGHT / 2}' {FONT} transform='rotate(-90 12 {HEIGHT / 2})' "
        "text-anchor='middle'>standard error</text>",
        f"<text x='{PAD - 4}' y='{sy(0) + 4:.1f}' text-anchor='end' {FONT}>0</text>",
        f"<text x='{PAD - 4}' y='{sy(max(ys)) + 4:.1f}' text-anchor='end' {FONT}>{max(ys):.2f}</text>",
        f"<text x='{PAD}' y='{base}' {FONT}>{lo:.1f}</text>",
        f"<text x='{WIDTH - PAD}' y='{base}' text-anchor='end' {FONT}>{hi:.1f}</text>",
        "</svg>",
    ]
    return "".join(parts)
