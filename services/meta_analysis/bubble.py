"""Bubble plot of a meta-regression on a continuous moderator (matplotlib, PNG or SVG).

Each study is a circle at (moderator, observed proportion) with its area proportional to its
random-effects weight 1/(vi + τ²); the fitted line and its confidence band are the model's
prediction b0 + b1·x, back-transformed to proportions (PFT with the harmonic mean of the totals,
as the forest plot).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from services.meta_analysis.errors import MetaAnalysisError
from services.meta_analysis.regression import RegressionResult
from services.meta_analysis.transforms import back_transform

_BLUE, _INK = "#1f4e79", "#1a1a1a"


def bubble_plot(
    model: RegressionResult,
    out: Path,
    *,
    title: str | None = None,
    x_label: str | None = None,
) -> Path:
    """Draw ``model`` (a continuous moderator) to ``out``."""
    if model.kind != "continuous":
        raise MetaAnalysisError("a bubble plot needs a continuous moderator")
    x, yi, vi = (np.asarray(a, dtype=float) for a in (model.x, model.yi, model.vi))
    n = np.asarray(model.totals, dtype=float)
    weights = 1.0 / (vi + model.tau2)
    observed = back_transform(yi, model.transform, n)
    grid = np.linspace(x.min(), x.max(), 200)
    b0, b1 = (c.estimate for c in model.coefficients)
    # Var(b0 + b1 x) from the coefficient SEs and the covariance implied by the design.
    design = np.column_stack([np.ones_like(x), x])
    cov = np.linalg.inv(design.T @ (weights[:, None] * design))
    if model.test == "knha":
        resid = yi - design @ np.array([b0, b1])
        cov = cov * float(np.sum(weights * resid**2) / (model.k - 2))
        crit = float(stats.t.ppf(0.5 + model.level / 2, model.k - 2))
    else:
        crit = float(stats.norm.ppf(0.5 + model.level / 2))
    line = b0 + b1 * grid
    se = np.sqrt(cov[0, 0] + 2 * grid * cov[0, 1] + grid**2 * cov[1, 1])
    fig, ax = plt.subplots(figsize=(7.5, 4.8), dpi=150)
    sizes = 600 * weights / weights.max()
    ax.scatter(x, observed, s=sizes, facecolor="none", edgecolor=_BLUE, linewidth=1.2)
    ax.plot(grid, back_transform(line, model.transform, n), color=_INK, linewidth=1.4)
    ax.fill_between(
        grid,
        back_transform(line - crit * se, model.transform, n),
        back_transform(line + crit * se, model.transform, n),
        color=_BLUE,
        alpha=0.12,
        linewidth=0,
    )
    ax.set_ylim(0, 1)
    ax.set_yticks(np.linspace(0, 1, 6), [f"{v:.0f}" for v in np.linspace(0, 100, 6)])
    ax.set_ylabel("Proportion (%)")
    ax.set_xlabel(x_label or model.moderator)
    df = model.qm_df[0] if model.qm_df[1] is None else f"{model.qm_df[0]}, {model.qm_df[1]}"
    ax.set_title(
        (f"{title}\n" if title else "")
        + f"QM = {model.qm:.2f} (df {df}), p = {model.qm_p:.3g}; k = {model.k}, "
        + f"R² = {0.0 if model.r2 is None else model.r2:.0f}%",
        fontsize=10,
        loc="left",
    )
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    out = Path(out)
    if out.suffix.lower() not in {".png", ".svg"}:
        plt.close(fig)
        raise MetaAnalysisError(f"plot file must end in .png or .svg, got {out.name!r}")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format=out.suffix.lower()[1:], bbox_inches="tight")
    plt.close(fig)
    return out
