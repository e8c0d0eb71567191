"""Effect sizes for proportions and their back-transformations, as metafor's ``escalc``.

Transforms (``measure`` in metafor):

- ``logit`` (PLO): yi = log(p / (1 - p)), vi = 1/x + 1/(n - x).
- ``PFT`` Freeman–Tukey double arcsine: yi = ½[asin√(x/(n+1)) + asin√((x+1)/(n+1))],
  vi = 1/(4n + 2); back-transformed with the harmonic mean of the n (Miller 1978, metafor's
  ``transf.ipft.hm``). Known weakness: one "typical" n is used for every back-transformed value,
  so a pooled estimate or interval can land far from the data when study sizes differ
  (Schwarzer et al. 2019, Res Synth Methods 10:476). Prefer ``logit`` or the GLMM.
- ``PAS`` arcsine: yi = asin√p, vi = 1/(4n); back-transformed with sin².
- ``PR`` raw proportion: yi = p, vi = p(1 - p)/n; no back-transformation (limits may leave [0, 1]).

Continuity correction: as metafor (``add = 1/2, to = "only0"``), 0.5 is added to the events and
non-events of a study with 0 or n events for ``logit`` and ``PR``; never for ``PFT`` and ``PAS``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from services.meta_analysis.errors import UnknownOption

FloatArray = NDArray[np.float64]

TRANSFORMS: tuple[str, ...] = ("logit", "PFT", "PAS", "PR")
_ALIASES = {"logit": "logit", "plo": "logit", "pft": "PFT", "pas": "PAS", "pr": "PR"}
_CORRECTED = frozenset({"logit", "PR"})
CONTINUITY = 0.5


def normalise_transform(name: str) -> str:
    """Return the canonical transform name for ``name`` (case-insensitive; PLO = logit)."""
    canonical = _ALIASES.get(name.lower())
    if canonical is None:
        raise UnknownOption("transform", name, TRANSFORMS)
    return canonical


@dataclass(frozen=True)
class EffectSizes:
    """Per-study effect sizes ``yi`` with sampling variances ``vi`` on the transformed scale."""

    transform: str
    yi: FloatArray
    vi: FloatArray
    corrected: NDArray[np.bool_]
    totals: FloatArray


def effect_sizes(events: FloatArray, totals: FloatArray, transform: str) -> EffectSizes:
    """Compute yi and vi for each study; mark the studies that got a continuity correction."""
    transform = normalise_transform(transform)
    x = np.asarray(events, dtype=float)
    n = np.asarray(totals, dtype=float)
    corrected = np.zeros(x.shape, dtype=bool)
    if transform in _CORRECTED:
        corrected = (x == 0) | (x == n)
        x = np.where(corrected, x + CONTINUITY, x)
        n = np.where(corrected, n + 2 * CONTINUITY, n)
    p = x / n
    if transform == "logit":
        yi = np.log(p / (1.0 - p))
        vi = 1.0 / x + 1.0 / (n - x)
    elif transform == "PR":
        yi = p
        vi = p * (1.0 - p) / n
    elif transform == "PAS":
        yi = np.arcsin(np.sqrt(p))
        vi = 1.0 / (4.0 * n)
    else:
        yi = 0.5 * (np.arcsin(np.sqrt(x / (n + 1.0))) + np.arcsin(np.sqrt((x + 1.0) / (n + 1.0))))
        vi = 1.0 / (4.0 * n + 2.0)
    return EffectSizes(transform, yi, vi, corrected, np.asarray(totals, dtype=float))


def _pft(p: FloatArray | float, n: FloatArray | float) -> FloatArray:
    x = np.asarray(p, dtype=float) * n
    return 0.5 * (np.arcsin(np.sqrt(x / (n + 1.0))) + np.arcsin(np.sqrt((x + 1.0) / (n + 1.0))))


def inverse_pft(values: FloatArray | float, n: FloatArray | float) -> FloatArray:
    """Invert the double arcsine for a study of size ``n`` (Miller 1978), clamped to [0, 1]."""
    t = np.asarray(values, dtype=float)
    s = np.sin(2.0 * t)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = 1.0 - (s + (s - 1.0 / s) / n) ** 2
        p = 0.5 * (1.0 - np.sign(np.cos(2.0 * t)) * np.sqrt(inner))
    p = np.where(t > _pft(1.0, n), 1.0, p)
    p = np.where(t < _pft(0.0, n), 0.0, p)
    return np.asarray(p, dtype=float)


def back_transform(values: FloatArray | float, transform: str, totals: FloatArray) -> FloatArray:
    """Map values on the transformed scale back to proportions (PFT: harmonic mean of totals)."""
    t = np.asarray(values, dtype=float)
    if transform == "logit":
        return np.asarray(1.0 / (1.0 + np.exp(-t)), dtype=float)
    if transform == "PAS":
        return np.asarray(np.sin(np.clip(t, 0.0, np.pi / 2)) ** 2, dtype=float)
    if transform == "PFT":
        harmonic = 1.0 / float(np.mean(1.0 / np.asarray(totals, dtype=float)))
        return inverse_pft(t, harmonic)
    return np.asarray(t, dtype=float)
