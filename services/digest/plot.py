"""A compact forest plot PNG for the digest, drawn from a snapshot's stored result.

The snapshot's ``result`` dict holds the studies (``label``, ``proportion``, ``ci_low``, ``ci_high``,
``weight_random``) and the pooled estimate with its CI and prediction interval. No studies, no plot
(``None``): the digest is sent without the picture rather than not at all.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def forest_png(result: dict[str, Any], *, title: str = "") -> bytes | None:
    """Render studies and the pooled diamond as PNG bytes (about 100 dpi); None if no studies."""
    studies = [s for s in result.get("studies") or [] if s.get("proportion") is not None]
    if not studies:
        return None
    n = len(studies)
    fig, ax = plt.subplots(figsize=(6.5, 1.2 + 0.22 * (n + 2)), dpi=100)
    try:
        weights = [float(s.get("weight_random") or 1.0) for s in studies]
        biggest = max(weights) or 1.0
        for row, (study, weight) in enumerate(zip(studies, weights, strict=True)):
            y = n - row + 1
            ax.plot([study["ci_low"], study["ci_high"]], [y, y], color="black", linewidth=0.8)
            ax.plot(
                study["proportion"],
                y,
                "s",
                color="#2b5797",
                markersize=3 + 6 * (weight / biggest) ** 0.5,
            )
        _pooled(ax, result)
        ax.set_yticks([n - i + 1 for i in range(n)] + [0])
        ax.set_yticklabels([str(s.get("label", "")) for s in studies] + ["Pooled (RE)"], fontsize=7)
        ax.set_xlim(0, 1)
        ax.set_xlabel("Proportion")
        ax.tick_params(axis="x", labelsize=7)
        if title:
            ax.set_title(title, fontsize=9)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format="png")
        return buffer.getvalue()
    finally:
        plt.close(fig)


def _pooled(ax: Any, result: dict[str, Any]) -> None:
    estimate, low, high = result.get("estimate"), result.get("ci_low"), result.get("ci_high")
    if estimate is None or low is None or high is None:
        return
    ax.fill([low, estimate, high, estimate], [0, 0.35, 0, -0.35], color="#c0392b")
    if result.get("pi_low") is not None and result.get("pi_high") is not None:
        ax.plot([result["pi_low"], result["pi_high"]], [0, 0], color="#c0392b", linewidth=0.8)
    ax.axvline(estimate, color="#c0392b", linestyle=":", linewidth=0.6)
