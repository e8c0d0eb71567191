"""The digest's forest plot: the meta-analysis forest plot of a snapshot, as PNG bytes.

A snapshot stores its pooled result as a dict (``PoolResult.to_dict()``, studies included); it is
turned back into a :class:`PoolResult` and drawn by :func:`services.meta_analysis.plots.forest_plot`.
No studies, no plot (``None``): the digest is then sent without the picture rather than not at all.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Collection
from dataclasses import fields
from pathlib import Path
from typing import Any

from services.meta_analysis.results import PoolResult, StudyRow

_POOL_FIELDS = {f.name for f in fields(PoolResult)}
_STUDY_FIELDS = {f.name for f in fields(StudyRow)}


def pool_result(data: dict[str, Any]) -> PoolResult | None:
    """Rebuild the PoolResult stored in a snapshot; None when it has no studies to draw."""
    studies = [
        StudyRow(**{k: v for k, v in s.items() if k in _STUDY_FIELDS})
        for s in data.get("studies") or []
    ]
    if not studies or "k" not in data:
        return None
    values = {k: v for k, v in data.items() if k in _POOL_FIELDS}
    values["notes"] = tuple(values.get("notes") or ())
    values["studies"] = tuple(studies)
    return PoolResult(**values)


def forest_png(
    result: dict[str, Any], *, title: str = "", new: Collection[str] = ()
) -> bytes | None:
    """The forest plot of a stored result as PNG bytes, or None when there is nothing to draw;
    the studies left out (``result["excluded"]``) are footnoted, those in ``new`` marked."""
    pooled = pool_result(result)
    if pooled is None:
        return None
    from services.meta_analysis.plots import forest_plot  # matplotlib: only when drawing

    with tempfile.TemporaryDirectory(prefix="lr-digest-") as folder:
        path = forest_plot(
            pooled,
            Path(folder) / "forest.png",
            title=title or None,
            excluded=result.get("excluded") or None,
            new=_bare(new),
        )
        return path.read_bytes()


def _bare(labels: Collection[str]) -> set[str]:
    """Digest labels carry " (PMID n)"; the plot's rows carry the bare study label."""
    return {re.sub(r" \(PMID \d+\)$", "", label) for label in labels}
