"""Forest and cumulative plots with matplotlib (Agg backend), saved as PNG or SVG.

``forest_plot(result, out, subgroups=None, excluded=None, title=None, new=())`` draws study rows
(label, n/N, proportion with exact 95% CI, random-effects weight), squares sized by weight, the pooled
diamond, the prediction interval, the heterogeneity line, subgroup blocks (each with its own
diamond) and the studies the audit left out. ``cumulative_plot(rows, out, title=None)`` draws the
estimate and CI after each study in publication order. The file type follows the suffix.
"""

from __future__ import annotations

import textwrap
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Polygon

from services.meta_analysis.breakdowns import BreakdownRow
from services.meta_analysis.results import PoolResult

_INK, _BLUE, _GREY, _RED = "#1a1a1a", "#1f4e79", "#8c8c8c", "#b22222"
_GREEN = "#1b7a3a"
_TITLE_CHARS = 90
_ROW_INCH = 0.24


@dataclass(frozen=True)
class _Line:
    """One row of the drawing: text columns, and what to draw in the plot column."""

    cells: tuple[str, str, str, str, str]
    kind: str  # study | diamond | header | note | pi | blank
    point: tuple[float | None, float | None, float | None] | None = None
    weight: float | None = None
    bold: bool = False


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}"


def _interval(est: float | None, low: float | None, high: float | None) -> str:
    return "–" if est is None else f"{_pct(est)} [{_pct(low)}; {_pct(high)}]"


def _het(result: PoolResult) -> str:
    if not result.pooled:
        return "; ".join(result.notes)
    p = "p < 0.001" if (result.q_p or 0) < 0.001 else f"p = {result.q_p:.3f}"
    return (
        f"Heterogeneity: I² = {result.i2:.0f}%, τ² = {result.tau2:.3f}, "
        f"Q = {result.q:.1f} (df = {result.q_df}), {p}"
    )


def _block(result: PoolResult, name: str) -> list[_Line]:
    lines = [
        _Line(
            (
                f"{s.label}",
                f"{s.events}",
                f"{s.total}",
                _interval(s.proportion, s.ci_low, s.ci_high),
                "" if s.weight_random is None else f"{s.weight_random:.1f}",
            ),
            "study",
            (s.proportion, s.ci_low, s.ci_high),
            s.weight_random,
        )
        for s in result.studies
    ]
    if result.pooled:
        method = f"{result.method}, {result.transform}" + (
            ", HKSJ" if result.test == "knha" else ""
        )
        lines.append(
            _Line(
                (
                    f"{name} ({method})",
                    f"{result.events}",
                    f"{result.total}",
                    _interval(result.estimate, result.ci_low, result.ci_high),
                    "100.0",
                ),
                "diamond",
                (result.estimate, result.ci_low, result.ci_high),
                bold=True,
            )
        )
        lines.append(
            _Line(
                (
                    "Prediction interval",
                    "",
                    "",
                    f"[{_pct(result.pi_low)}; {_pct(result.pi_high)}]",
                    "",
                ),
                "pi",
                (result.estimate, result.pi_low, result.pi_high),
            )
        )
    lines.append(_Line((_het(result), "", "", "", ""), "note"))
    return lines


def _layout(
    result: PoolResult,
    subgroups: Mapping[str, PoolResult] | None,
    excluded: Mapping[str, str] | None,
    q_between: str | None,
) -> list[_Line]:
    lines: list[_Line] = []
    if subgroups:
        for name, group in subgroups.items():
            lines.append(_Line((name, "", "", "", ""), "header", bold=True))
            lines.extend(_block(group, "Subtotal"))
            lines.append(_Line(("", "", "", "", ""), "blank"))
        overall = [line for line in _block(result, "Random effects") if line.kind != "study"]
        lines.extend(overall)
        if q_between:
            lines.append(_Line((q_between, "", "", "", ""), "note"))
    else:
        lines.extend(_block(result, "Random effects"))
    for label, reason in (excluded or {}).items():
        reason = reason.removesuffix("; left out of pooling")
        lines.append(_Line((f"Left out: {label} ({reason})", "", "", "", ""), "note"))
    return lines


def _complete(
    point: tuple[float | None, float | None, float | None] | None,
) -> tuple[float, float, float] | None:
    """The point with all three values, or None when any is missing."""
    if point is None or point[0] is None or point[1] is None or point[2] is None:
        return None
    return point[0], point[1], point[2]


def _draw_rows(ax: Axes, lines: Sequence[_Line], max_weight: float) -> None:
    for y, line in enumerate(lines):
        point = _complete(line.point)
        if point is None:
            continue
        est, low, high = point
        if line.kind == "study":
            ax.plot([low, high], [y, y], color=_INK, lw=0.9, solid_capstyle="butt")
            size = 3 + 9 * ((line.weight or max_weight * 0.3) / max_weight) ** 0.5
            ax.plot([est], [y], marker="s", ms=size, color=_BLUE, mec=_BLUE, clip_on=False)
        elif line.kind == "diamond":
            ax.add_patch(
                Polygon(
                    [(low, y), (est, y - 0.35), (high, y), (est, y + 0.35)],
                    closed=True,
                    color=_BLUE,
                )
            )
        elif line.kind == "pi" and low is not None:
            ax.plot([low, high], [y, y], color=_RED, lw=2.2, solid_capstyle="butt")


def forest_plot(
    result: PoolResult,
    out: Path,
    *,
    subgroups: Mapping[str, PoolResult] | None = None,
    q_between: str | None = None,
    excluded: Mapping[str, str] | None = None,
    title: str | None = None,
    new: Collection[str] = (),
) -> Path:
    """Draw the forest plot of ``result`` to ``out`` (PNG or SVG by suffix); return the path.

    Studies whose label is in ``new`` (included since the previous estimate) are marked
    "(new)" in green."""
    lines = _layout(result, subgroups, excluded, q_between)
    weights = [line.weight for line in lines if line.weight]
    fig = _figure(len(lines))
    text_ax, plot_ax, right_ax = _axes(fig, len(lines))
    _headers(
        text_ax,
        plot_ax,
        right_ax,
        ("Study", "Events", "Total"),
        ("Proportion % [95% CI]", "Weight %"),
    )
    for y, line in enumerate(lines):
        weight = "bold" if line.bold else "normal"
        colour = _GREY if line.kind == "note" else _INK
        size = 8 if line.kind == "note" else 9
        label = line.cells[0]
        if line.kind == "study" and label in new:
            label, colour = f"{label} (new)", _GREEN
        text_ax.text(
            0.0,
            y,
            label,
            ha="left",
            va="center",
            fontsize=size,
            fontweight=weight,
            color=colour,
            clip_on=False,
        )
        text_ax.text(0.80, y, line.cells[1], ha="right", va="center", fontsize=9)
        text_ax.text(0.98, y, line.cells[2], ha="right", va="center", fontsize=9)
        right_ax.text(0.03, y, line.cells[3], ha="left", va="center", fontsize=9, fontweight=weight)
        right_ax.text(0.97, y, line.cells[4], ha="right", va="center", fontsize=9)
    _draw_rows(plot_ax, lines, max(weights) if weights else 1.0)
    if result.pooled and result.estimate is not None:
        last = max(y for y, line in enumerate(lines) if line.kind == "diamond")
        plot_ax.vlines(result.estimate, -0.5, last + 0.5, color=_BLUE, lw=0.8, ls=(0, (4, 3)))
    _finish(text_ax, plot_ax, title)
    return _save(fig, out)


def cumulative_plot(rows: Sequence[BreakdownRow], out: Path, *, title: str | None = None) -> Path:
    """Draw the cumulative meta-analysis ``rows`` (publication order) to ``out``; return the path."""
    lines = [
        _Line(
            (
                f"+ {r.label}",
                f"{r.k}",
                "" if r.year is None else str(r.year),
                _interval(r.estimate, r.ci_low, r.ci_high),
                "" if r.i2 is None else f"{r.i2:.0f}",
            ),
            "study" if r.estimate is None else "cumul",
            None if r.estimate is None else (r.estimate, r.ci_low, r.ci_high),
        )
        for r in rows
    ]
    fig = _figure(len(lines))
    text_ax, plot_ax, right_ax = _axes(fig, len(lines))
    _headers(
        text_ax, plot_ax, right_ax, ("Study added", "k", "Year"), ("Proportion % [95% CI]", "I² %")
    )
    for y, line in enumerate(lines):
        text_ax.text(0.0, y, line.cells[0], ha="left", va="center", fontsize=9)
        text_ax.text(0.80, y, line.cells[1], ha="right", va="center", fontsize=9)
        text_ax.text(0.98, y, line.cells[2], ha="right", va="center", fontsize=9)
        right_ax.text(0.03, y, line.cells[3], ha="left", va="center", fontsize=9)
        right_ax.text(0.97, y, line.cells[4], ha="right", va="center", fontsize=9)
        point = _complete(line.point)
        if point is not None:
            est, low, high = point
            plot_ax.plot([low, high], [y, y], color=_INK, lw=0.9)
            plot_ax.plot([est], [y], marker="o", ms=4.5, color=_BLUE)
    pooled = [p[0] for p in (_complete(line.point) for line in lines) if p is not None]
    if pooled:
        plot_ax.axvline(pooled[-1], color=_BLUE, lw=0.8, ls=(0, (4, 3)))
    _finish(text_ax, plot_ax, title)
    return _save(fig, out)


def _figure(n_lines: int) -> Figure:
    return plt.figure(figsize=(11.5, 1.1 + _ROW_INCH * (n_lines + 3)), dpi=150)


def _axes(fig: Figure, n_lines: int) -> tuple[Axes, Axes, Axes]:
    height = _ROW_INCH * (n_lines + 3) / fig.get_figheight()
    bottom = 0.75 / fig.get_figheight()
    text_ax = fig.add_axes((0.01, bottom, 0.40, height))
    plot_ax = fig.add_axes((0.42, bottom, 0.30, height), sharey=text_ax)
    right_ax = fig.add_axes((0.73, bottom, 0.26, height), sharey=text_ax)
    text_ax.set_ylim(n_lines - 0.5, -2.5)
    for ax in (text_ax, right_ax):
        ax.set_xlim(0, 1)
        ax.axis("off")
    return text_ax, plot_ax, right_ax


def _headers(
    text_ax: Axes, plot_ax: Axes, right_ax: Axes, left: tuple[str, str, str], right: tuple[str, str]
) -> None:
    for x, label, align in (
        (0.0, left[0], "left"),
        (0.80, left[1], "right"),
        (0.98, left[2], "right"),
    ):
        text_ax.text(x, -1.1, label, ha=align, va="center", fontsize=9, fontweight="bold")
    right_ax.text(0.03, -1.1, right[0], ha="left", va="center", fontsize=9, fontweight="bold")
    right_ax.text(0.97, -1.1, right[1], ha="right", va="center", fontsize=9, fontweight="bold")


def _finish(text_ax: Axes, plot_ax: Axes, title: str | None) -> None:
    plot_ax.set_xlim(0, 1)
    plot_ax.patch.set_alpha(0.0)  # notes in the left column may run under the plot column
    plot_ax.set_xticks([0, 0.2, 0.4, 0.6, 0.8, 1.0], ["0", "20", "40", "60", "80", "100"])
    plot_ax.set_xlabel("Proportion (%)", fontsize=9)
    plot_ax.tick_params(axis="y", left=False, labelleft=False)
    plot_ax.tick_params(axis="x", labelsize=8)
    for side in ("left", "right", "top"):
        plot_ax.spines[side].set_visible(False)
    if title:
        # Wrapped, never cut: extra lines grow upwards and bbox_inches="tight" keeps them.
        text = textwrap.fill(title, _TITLE_CHARS)
        text_ax.text(
            0.0, -1.9, text, ha="left", va="bottom", fontsize=11, fontweight="bold", clip_on=False
        )


def _save(fig: Figure, out: Path) -> Path:
    out = Path(out)
    if out.suffix.lower() not in {".png", ".svg"}:
        plt.close(fig)
        raise ValueError(f"plot file must end in .png or .svg, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=out.suffix.lower()[1:], bbox_inches="tight")
    plt.close(fig)
    return out
