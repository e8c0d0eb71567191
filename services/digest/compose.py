"""Compose the digest email of one update: plain text and HTML from the same content.

The content is a plain :class:`DigestContent` (no ORM): the old and new pooled estimates (as
snapshot dicts: ``estimate``, ``ci_low``, ``ci_high``, ``pi_low``, ``pi_high``, ``i2``, ``k`` on
the 0–1 scale, I² in percent), why the digest is sent, the newly included and retracted studies,
the PRISMA counts of the update, the queue, and an optional forest plot PNG shown inline.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment

ROWS = (
    ("Pooled estimate", "estimate"),
    ("95% CI", "ci"),
    ("95% prediction interval", "pi"),
    ("I²", "i2"),
    ("Studies (k)", "k"),
)
PRISMA_LABELS = {
    "identified": "Records identified (this update)",
    "new": "New records",
    "linked": "Linked to known studies (duplicates)",
    "auto_excluded": "Excluded automatically (rules or model)",
    "queued": "Sent to reviewers",
    "included": "Included",
    "excluded": "Excluded by reviewers",
    "quarantined": "Could not be read, held in quarantine",
    "skipped": "Not stored (not an article)",
}


@dataclass(frozen=True)
class DigestContent:
    """Everything one digest shows; the same for every recipient."""

    review_slug: str
    review_title: str
    old: dict[str, Any] | None
    new: dict[str, Any]
    reasons: list[str]
    new_studies: list[str] = field(default_factory=list)
    retractions: list[str] = field(default_factory=list)
    prisma: dict[str, int] = field(default_factory=dict)
    queue_size: int = 0
    queue_url: str = ""
    forest_png: bytes | None = None


def percent(value: float | None) -> str:
    """A proportion as a percentage with one decimal; an en dash when missing."""
    return "–" if value is None else f"{100 * value:.1f}%"


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "–"
    return f"{100 * low:.1f}–{100 * high:.1f}%"


def cell(snapshot: dict[str, Any] | None, key: str) -> str:
    """One cell of the old → new table for a snapshot dict (``–`` when absent)."""
    if snapshot is None:
        return "–"
    if key == "estimate":
        return percent(snapshot.get("estimate"))
    if key in ("ci", "pi"):
        return _interval(snapshot.get(f"{key}_low"), snapshot.get(f"{key}_high"))
    if key == "i2":
        i2 = snapshot.get("i2")
        return "–" if i2 is None else f"{i2:.1f}%"
    k = snapshot.get("k")
    return "–" if k is None else str(k)


def table_rows(content: DigestContent) -> list[tuple[str, str, str]]:
    """(label, old, new) rows of the estimate table."""
    return [(label, cell(content.old, key), cell(content.new, key)) for label, key in ROWS]


def subject(content: DigestContent) -> str:
    """The subject line: review title, estimate old → new and k."""
    new_part = f"{percent(content.new.get('estimate'))} (k={content.new.get('k')})"
    if content.old is None:
        return f"[living-review] {content.review_title}: pooled estimate {new_part}"
    old_part = f"{percent(content.old.get('estimate'))} (k={content.old.get('k')})"
    return f"[living-review] {content.review_title}: {old_part} → {new_part}"


def render_text(content: DigestContent) -> str:
    """The plain-text body."""
    lines = [content.review_title, "=" * min(len(content.review_title), 78), ""]
    lines += ["The evidence changed:"] + [f"  - {reason}" for reason in content.reasons] + [""]
    width = max(len(label) for label, _ in ROWS)
    lines.append(f"{'':{width}}  {'before':>16}  {'now':>16}")
    for label, old, new in table_rows(content):
        lines.append(f"{label:{width}}  {old:>16}  {new:>16}")
    lines.append("")
    _text_list(lines, "Newly included studies", content.new_studies)
    _text_list(lines, "Retracted or corrected studies", content.retractions)
    if content.prisma:
        lines.append("This update (PRISMA flow):")
        for key, label in PRISMA_LABELS.items():
            if key in content.prisma:
                lines.append(f"  {label}: {content.prisma[key]}")
        lines.append("")
    lines.append(f"Records waiting for screening: {content.queue_size}")
    if content.queue_url:
        lines.append(f"Screen them at {content.queue_url}")
    lines += ["", "— living-review"]
    return "\n".join(lines) + "\n"


def _text_list(lines: list[str], title: str, items: list[str]) -> None:
    if items:
        lines.append(f"{title}:")
        lines += [f"  - {item}" for item in items]
        lines.append("")


_HTML = Environment(autoescape=True).from_string(
    """<!doctype html>
<html><body style="font-family: sans-serif">
<h2>{{ c.review_title }}</h2>
<p>The evidence changed:</p>
<ul>{% for r in c.reasons %}<li>{{ r }}</li>{% endfor %}</ul>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th></th><th>before</th><th>now</th></tr>
{% for label, old, new in rows %}<tr><th align="left">{{ label }}</th><td>{{ old }}</td>\
<td>{{ new }}</td></tr>
{% endfor %}</table>
{% if c.new_studies %}<h3>Newly included studies</h3>
<ul>{% for s in c.new_studies %}<li>{{ s }}</li>{% endfor %}</ul>{% endif %}
{% if c.retractions %}<h3>Retracted or corrected studies</h3>
<ul>{% for s in c.retractions %}<li>{{ s }}</li>{% endfor %}</ul>{% endif %}
{% if c.prisma %}<h3>This update (PRISMA flow)</h3>
<table border="1" cellpadding="4" cellspacing="0">
{% for key, label in prisma_labels.items() if key in c.prisma %}<tr><td>{{ label }}</td>\
<td align="right">{{ c.prisma[key] }}</td></tr>
{% endfor %}</table>{% endif %}
<p>Records waiting for screening: <b>{{ c.queue_size }}</b>\
{% if c.queue_url %} — <a href="{{ c.queue_url }}">screen them</a>{% endif %}</p>
{% if image_cid %}<p><img src="cid:{{ image_cid }}" alt="Forest plot"></p>{% endif %}
<p style="color: #666">— living-review</p>
</body></html>
"""
)


def render_html(content: DigestContent, image_cid: str | None) -> str:
    """The HTML body; ``image_cid`` is the Content-ID of the inline forest plot, if any."""
    return _HTML.render(
        c=content, rows=table_rows(content), prisma_labels=PRISMA_LABELS, image_cid=image_cid
    )
