"""One-step binomial-normal GLMM for proportions, as metafor's ``rma.glmm(measure="PLO")``.

Model: x_i ~ Binomial(n_i, expit(β + τ b_i)), b_i ~ N(0, 1); fitted by maximum likelihood with
7-point adaptive Gauss–Hermite quadrature around each study's conditional mode (lme4 ``glmer``
with ``nAGQ = 7``). No continuity correction: 0/n and n/n studies enter as they are. The standard
error of β comes from the numerical Hessian of the log-likelihood over (β, τ), as lme4's
``vcov``. Heterogeneity: the likelihood-ratio Q (saturated vs common-effect model) and I²/H²
from τ² and the typical within-study variance of the (corrected) logits, as metafor prints them.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from scipy import optimize, special, stats

from services.meta_analysis.estimators import FloatArray, fit_rows
from services.meta_analysis.pooling import (
    _labels,
    _study_rows,
    check_counts,
    correction_notes,
    summarise,
)
from services.meta_analysis.results import BaseFields, PoolResult
from services.meta_analysis.transforms import effect_sizes

_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(7)
_LOG_WEIGHTS = np.log(_WEIGHTS / math.sqrt(2.0 * math.pi)) + 0.5 * _NODES**2


def _loglik(beta: float, tau: float, x: FloatArray, n: FloatArray, modes: FloatArray) -> float:
    """Marginal log-likelihood (without binomial coefficients) by adaptive quadrature.

    ``modes`` holds the conditional modes of the last call (a warm start); updated in place.
    """
    b = modes
    for _ in range(100):  # Newton for the conditional modes; the integrand is log-concave
        p = special.expit(beta + tau * b)
        step = (tau * (x - n * p) - b) / (tau * tau * n * p * (1.0 - p) + 1.0)
        b += np.clip(step, -1.0, 1.0)  # b is on the N(0, 1) scale: damp far-off warm starts
        if np.max(np.abs(step)) < 1e-10:
            break
    p = special.expit(beta + tau * b)
    scale = 1.0 / np.sqrt(tau * tau * n * p * (1.0 - p) + 1.0)
    nodes = b[:, None] + scale[:, None] * _NODES[None, :]
    eta = beta + tau * nodes
    log_terms = (
        x[:, None] * eta
        - n[:, None] * np.logaddexp(0.0, eta)
        - 0.5 * nodes**2
        + _LOG_WEIGHTS[None, :]
    )
    top = log_terms.max(axis=1)
    per_study = np.log(scale) + top + np.log(np.exp(log_terms - top[:, None]).sum(axis=1))
    return float(per_study.sum())


def _fit(x: FloatArray, n: FloatArray) -> tuple[float, float, float]:
    """Maximise the likelihood over (β, τ ≥ 0); return β, τ and the standard error of β."""
    es = effect_sizes(x, n, "logit")
    start = fit_rows(es.yi, es.vi, "all", "DL")
    modes = np.zeros(x.size)

    def objective(par: FloatArray) -> float:
        return -_loglik(float(par[0]), float(par[1]), x, n, modes)

    best = optimize.minimize(
        objective,
        np.array([float(start.mu[0]), max(math.sqrt(float(start.tau2[0])), 0.05)]),
        method="L-BFGS-B",
        jac="3-point",
        bounds=[(None, None), (0.0, None)],
        options={"ftol": 1e-14, "gtol": 1e-8, "maxiter": 500},
    )
    beta, tau = float(best.x[0]), abs(float(best.x[1]))
    return beta, tau, _beta_se(objective, beta, tau)


def _beta_se(objective: Callable[[FloatArray], float], beta: float, tau: float) -> float:
    """Standard error of β from a central-difference Hessian of −log L over (β, τ)."""
    h = 1e-4
    if tau < 10 * h:
        d2 = (
            objective(np.array([beta + h, tau]))
            - 2 * objective(np.array([beta, tau]))
            + objective(np.array([beta - h, tau]))
        )
        return math.sqrt(h * h / d2)
    par = np.array([beta, tau])
    hess = np.zeros((2, 2))
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * h, np.eye(2)[j] * h
            hess[i, j] = (
                objective(par + ei + ej)
                - objective(par + ei - ej)
                - objective(par - ei + ej)
                + objective(par - ei - ej)
            ) / (4 * h * h)
    return math.sqrt(float(np.linalg.inv(hess)[0, 0]))


def _lrt_q(x: FloatArray, n: FloatArray) -> float:
    """Likelihood-ratio heterogeneity statistic: saturated against common-effect binomial model."""
    p = x.sum() / n.sum()
    sat = special.xlogy(x, x / n) + special.xlogy(n - x, (n - x) / n)
    common = special.xlogy(x, p) + special.xlogy(n - x, 1 - p)
    return float(2.0 * np.sum(sat - common))


def pool_glmm(
    events: Sequence[float | None],
    totals: Sequence[float | None],
    *,
    labels: Sequence[str] | None = None,
    level: float = 0.95,
) -> PoolResult:
    """Pool proportions with the binomial-normal GLMM (ML, nAGQ = 7); the logit scale, z test.

    Same input rules and "cannot pool" behaviour as :func:`services.meta_analysis.pool`.
    """
    names = _labels(labels, len(events))
    x, n = check_counts(events, totals, names)
    es = effect_sizes(x, n, "logit")
    k = int(x.size)
    base: BaseFields = {
        "k": k,
        "transform": "logit",
        "method": "GLMM",
        "test": "z",
        "level": level,
        "events": int(x.sum()),
        "total": int(n.sum()),
    }
    rows = _study_rows(names, x, n, es.yi, es.vi, es.corrected, (None, None), level)
    if k < 2:
        why = "no studies" if k == 0 else "only one study"
        return PoolResult(
            pooled=False, notes=(f"cannot pool: {why} (need at least 2)",), studies=rows, **base
        )
    beta, tau, se = _fit(x, n)
    z = float(stats.norm.ppf(0.5 + level / 2))
    p_fe = x.sum() / n.sum()
    mu_fe, se_fe = math.log(p_fe / (1 - p_fe)), 1.0 / math.sqrt(n.sum() * p_fe * (1 - p_fe))
    se_pi = math.sqrt(se * se + tau * tau)
    w = 1.0 / es.vi
    s2 = (k - 1) * w.sum() / (w.sum() ** 2 - (w * w).sum())
    notes = [
        f"{note} — for the I² line only; the GLMM uses the counts"
        for note in correction_notes(es.corrected, names, "logit")
    ]
    return summarise(
        mu=beta,
        se=se,
        crit=z,
        se_pi=se_pi,
        mu_fe=mu_fe,
        se_fe=se_fe,
        tau2=tau * tau,
        s2=s2,
        q=_lrt_q(x, n),
        transform="logit",
        n=n,
        notes=notes,
        rows=rows,
        base=base,
    )
