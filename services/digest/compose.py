"""Compose the digest email of one update: plain text and HTML from the same content.

The content is a plain :class:`DigestContent` (no ORM): the old and new pooled estimates (as
snapshot dicts: ``estimate``, ``ci_low``, ``ci_high``, ``pi_low``, ``pi_high``, ``i2``, ``k`` on
the 0–1 scale, I² in percent), why the digest is sent, one sentence saying what the change means,
the newly included and retracted studies (each linked to PubMed or its DOI), what changed in
older records since the last update (retracted, erratum or other notice added, deleted from
PubMed, title or abstract revised: one line each, linked to PubMed; see :func:`older_line`), the
PRISMA counts of the update, the queue (linked only when records wait), and an optional forest plot PNG shown
inline at a width that fits a phone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jinja2 import Environment
from markupsafe import Markup, escape

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
    "deleted": "Deleted from PubMed since (left the queue)",
}
OLDER_TITLE = "Changes to older records"


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
    # label → PubMed or DOI address of the studies listed above
    links: dict[str, str] = field(default_factory=dict)
    # False for the periodic "no change" note and the preview of a snapshot that changed nothing
    changed: bool = True
    # the pooled estimate with the retracted studies put back (see analysis.sensitivity)
    sensitivity: dict[str, Any] | None = None
    # the protocol's hypotheses as tested on this snapshot, one sentence each with its test
    hypotheses: list[str] = field(default_factory=list)
    # what changed in the review's older records (one line each, see older_line)
    older_changes: list[str] = field(default_factory=list)


def older_line(change: dict[str, Any], label: str) -> str:
    """One line of "Changes to older records" for a change of :mod:`services.recheck` (or a
    deletion of the window harvest); ``label`` names the study or the record."""
    kind = change.get("kind")
    notice = change.get("notice_pmid")
    if kind == "retracted":
        line = f"Retracted: {label} is now a Retracted Publication"
        line += f" (retraction notice PMID {notice})" if notice else ""
        if change.get("study_id"):
            line += "; the study is left out of pooling"
        return line
    if kind == "correction":
        what = str(change.get("notice") or "correction")
        line = f"{what[:1].upper()}{what[1:]} added: {label}"
        return line + (f" (notice PMID {notice})" if notice else "")
    if kind == "deleted":
        line = f"Deleted from PubMed: {label}"
        if change.get("state_before") in ("new", "queued"):
            line += "; it left the screening queue"
        if change.get("study_flagged"):
            line += "; its study is flagged for a reviewer"
        return line
    fields_changed = " and ".join(change.get("fields") or ["content"])
    return f"Revised {fields_changed}: {label}; the new version is kept, the old one in its history"


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


def meaning(content: DigestContent) -> str:
    """One sentence saying what the change means for a reader of the review."""
    new, old = content.new, content.old
    if new.get("estimate") is None:
        return "There are not enough studies with data to pool an estimate yet."
    now = (
        f"The best estimate is now {percent(new.get('estimate'))} "
        f"(95% CI {_interval(new.get('ci_low'), new.get('ci_high'))}) from {new.get('k')} studies"
    )
    if old is None or old.get("estimate") is None:
        return now + "."
    shift = 100 * (new["estimate"] - old["estimate"])
    overlap = _overlaps(old, new)
    direction = "higher" if shift > 0 else "lower"
    moved = (
        "practically unchanged" if abs(shift) < 0.05 else f"{abs(shift):.1f} points {direction}"
    )
    verdict = (
        "the intervals overlap, so the conclusion stands"
        if overlap is not False
        else "the intervals no longer overlap, so the review's conclusion should be revisited"
    )
    sentence = f"{now}, {moved} than before; {verdict}."
    if content.retractions and content.sensitivity and content.sensitivity.get("estimate"):
        sentence += (
            f" With the retracted {'study' if len(content.retractions) == 1 else 'studies'} "
            f"kept it would be {percent(content.sensitivity['estimate'])}."
        )
    return sentence


def _overlaps(a: dict[str, Any], b: dict[str, Any]) -> bool | None:
    a_low, a_high, b_low, b_high = (a.get("ci_low"), a.get("ci_high"), b.get("ci_low"),
                                    b.get("ci_high"))
    if a_low is None or a_high is None or b_low is None or b_high is None:
        return None
    return bool(a_low <= b_high and b_low <= a_high)


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
    if content.changed:
        lines += ["The evidence changed:"] + [f"  - {reason}" for reason in content.reasons]
    else:
        lines.append(NO_CHANGE)
    lines += ["", meaning(content), ""]
    width = max(len(label) for label, _ in ROWS)
    lines.append(f"{'':{width}}  {'before':>16}  {'now':>16}")
    for label, old, new in table_rows(content):
        lines.append(f"{label:{width}}  {old:>16}  {new:>16}")
    lines.append("")
    _text_list(lines, "Newly included studies", content.new_studies, content.links)
    _text_list(lines, "Retracted studies (left out of pooling)", content.retractions,
               content.links)
    _text_list(lines, OLDER_TITLE, content.older_changes, content.links)
    _text_list(lines, "The review's hypotheses, tested on this estimate", content.hypotheses, {})
    if content.prisma:
        lines.append("This update (PRISMA flow):")
        for key, label in PRISMA_LABELS.items():
            if key in content.prisma:
                lines.append(f"  {label}: {content.prisma[key]}")
        lines.append("")
    lines.append(f"Records waiting for screening: {content.queue_size}")
    if content.queue_url and content.queue_size:
        lines.append(f"Screen them at {content.queue_url}")
    lines += ["", "— living-review"]
    return "\n".join(lines) + "\n"


def _text_list(lines: list[str], title: str, items: list[str], links: dict[str, str]) -> None:
    if items:
        lines.append(f"{title}:")
        lines += [f"  - {item}" + (f" <{links[item]}>" if item in links else "") for item in items]
        lines.append("")


NO_CHANGE = "No change in the evidence that passes the digest's thresholds."


_HTML = Environment(autoescape=True).from_string(
    """<!doctype html>
<html><body style="font-family: sans-serif">
<h2>{{ c.review_title }}</h2>
{% if c.changed %}<p>The evidence changed:</p>
<ul>{% for r in c.reasons %}<li>{{ r }}</li>{% endfor %}</ul>{% else %}<p>{{ no_change }}</p>{% endif %}
<p><b>{{ meaning }}</b></p>
<table border="1" cellpadding="4" cellspacing="0">
<tr><th></th><th>before</th><th>now</th></tr>
{% for label, old, new in rows %}<tr><th align="left">{{ label }}</th><td>{{ old }}</td>\
<td>{{ new }}</td></tr>
{% endfor %}</table>
{% if c.new_studies %}<h3>Newly included studies</h3>
<ul>{% for s in c.new_studies %}<li>{{ link(s) }}</li>{% endfor %}</ul>{% endif %}
{% if c.retractions %}<h3>Retracted studies (left out of pooling)</h3>
<ul>{% for s in c.retractions %}<li>{{ link(s) }}</li>{% endfor %}</ul>{% endif %}
{% if c.older_changes %}<h3>{{ older_title }}</h3>
<ul>{% for s in c.older_changes %}<li>{{ link(s) }}</li>{% endfor %}</ul>{% endif %}
{% if c.hypotheses %}<h3>The review's hypotheses, tested on this estimate</h3>
<ul>{% for h in c.hypotheses %}<li>{{ h }}</li>{% endfor %}</ul>{% endif %}
{% if c.prisma %}<h3>This update (PRISMA flow)</h3>
<table border="1" cellpadding="4" cellspacing="0">
{% for key, label in prisma_labels.items() if key in c.prisma %}<tr><td>{{ label }}</td>\
<td align="right">{{ c.prisma[key] }}</td></tr>
{% endfor %}</table>{% endif %}
<p>Records waiting for screening: <b>{{ c.queue_size }}</b>\
{% if c.queue_url and c.queue_size %} — <a href="{{ c.queue_url }}">screen them</a>{% endif %}</p>
{% if image_cid %}<p><img src="cid:{{ image_cid }}" alt="Forest plot" width="600" \
style="width: 100%; max-width: 600px; height: auto"></p>{% endif %}
<p style="color: #666">— living-review</p>
</body></html>
"""
)


def render_html(content: DigestContent, image_cid: str | None) -> str:
    """The HTML body; ``image_cid`` is the Content-ID of the inline forest plot, if any."""
    def link(label: str) -> Markup:
        url = content.links.get(label)
        if not url:
            return escape(label)
        return Markup('<a href="{}">{}</a>').format(url, label)

    return _HTML.render(
        c=content,
        rows=table_rows(content),
        prisma_labels=PRISMA_LABELS,
        image_cid=image_cid,
        meaning=meaning(content),
        no_change=NO_CHANGE,
        older_title=OLDER_TITLE,
        link=link,
    )
