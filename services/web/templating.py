"""Jinja2 templates: autoescaping everywhere, filters for percentages and highlighting."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import jinja2
from fastapi import Request
from fastapi.templating import Jinja2Templates

from services.screening.rules import STAGE_LABELS
from services.web.security import csrf_token, pop_flashes
from services.web.text import highlight

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"


def pct(value: float | None, digits: int = 1) -> str:
    """A proportion as a percentage ("76.6%"); "–" when missing."""
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def num(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def when(value: dt.datetime | dt.date | None) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.isoformat()


def _context(request: Request) -> dict[str, object]:
    return {
        "csrf_token": csrf_token(request),
        "flashes": pop_flashes(request),
        "stage_labels": STAGE_LABELS,
    }


def make_templates() -> Jinja2Templates:
    """Templates with autoescape on for every file (including .svg)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(pct=pct, num=num, when=when, highlight=highlight)
    return Jinja2Templates(env=env, context_processors=[_context])
