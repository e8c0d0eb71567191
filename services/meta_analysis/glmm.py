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
_TAU_MAX = 50.0  # the optimiser's bound on τ
# Beyond τ = 10 (τ² = 100 on the logit scale) the studies' proportions spread over all of
# (0, 1): such a fit says the data hold no common proportion; the engine refuses to pool it.
_TAU_DEGENERATE = 10.0
_LOG_WEIGHTS = np.log(_WEIGHTS / math.sqrt(2.0 * math.pi)) + 0.5 * _NODES**2


def _log_integrand(
    beta: float, tau: float, b: FloatArray, x: FloatArray, n: FloatArray
) -> FloatArray:
    eta = beta + tau * b
    return np.asarray(x * eta - n * np.logaddexp(0.0, eta) - 0.5 * b * b, dtype=float)


def _loglik(beta: float, tau: float, x: FloatArray, n: FloatArray, modes: FloatArray) -> float:
    """Marginal log-likelihood (without binomial coefficients) by adaptive quadrature.

    ``modes`` holds the conditional modes of the last call (a warm start); updated in place.
    """
    b = modes
    for _ in range(200):  # Newton for the conditional modes; the integrand is log-concave
        p = special.expit(beta + tau * b)
        step = (tau * (x - n * p) - b) / (tau * tau * n * p * (1.0 - p) + 1.0)
        current = _log_integrand(beta, tau, b, x, n)
        for _ in range(60):  # halve a step that overshoots (a fixed clip can cycle)
            worse = _log_integrand(beta, tau, b + step, x, n) < current - 1e-12 * np.abs(current)
            if not worse.any():
                break
            step = np.where(worse, 0.5 * step, step)
        b += step
        if np.max(np.abs(step)) < 1e-13:  # tight: the optimiser differentiates log L numerically
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


def _fit(x: FloatArray, n: FloatArray) -> tuple[float, float, float, float, bool]:
    """Maximise the likelihood over (β, τ ≥ 0); return β, τ, se(β), log L and convergence.

    log L is what metafor's ``rma.glmm`` reports (``fit.stats``, ``logLik()``): the saturated
    model's log-likelihood minus half glmer's deviance, i.e. the binomial log-likelihood (with
    its coefficients) at the conditional modes of the study effects.

    τ = 0 is a stationary point of the likelihood in τ (it is even in τ), so a start near it can
    stall there although the maximum is interior: when the first start ends near the boundary or
    fails, the fit is repeated from τ = 0.5, 1.5 and 4 and the highest likelihood kept.
    """
    es = effect_sizes(x, n, "logit")
    start = fit_rows(es.yi, es.vi, "all", "DL")
    beta0 = float(start.mu[0])
    modes = np.zeros(x.size)

    def objective(par: FloatArray) -> float:
        return -_loglik(float(par[0]), float(par[1]), x, n, modes)

    def run(tau0: float) -> optimize.OptimizeResult:
        modes[:] = 0.0
        return optimize.minimize(
            objective,
            np.array([beta0, tau0]),
            method="L-BFGS-B",
            jac="3-point",
            bounds=[(None, None), (0.0, _TAU_MAX)],
            options={"ftol": 1e-15, "gtol": 1e-9, "maxiter": 1000},
        )

    best = run(max(math.sqrt(float(start.tau2[0])), 0.05))
    if best.x[1] < 1e-3 or not best.success:
        for tau0 in (0.5, 1.5, 4.0):
            trial = run(tau0)
            if trial.fun < best.fun - 1e-10 or (trial.success and not best.success):
                best = trial
    beta, tau = _polish(objective, float(best.x[0]), abs(float(best.x[1])))
    modes[:] = 0.0
    objective(np.array([beta, tau]))  # leaves the conditional modes at the optimum in `modes`
    p = special.expit(beta + tau * modes)
    binomial = special.gammaln(n + 1) - special.gammaln(x + 1) - special.gammaln(n - x + 1)
    conditional = float(np.sum(binomial + special.xlogy(x, p) + special.xlogy(n - x, 1 - p)))
    return beta, tau, _beta_se(objective, beta, tau), conditional, bool(best.success)


def _polish(
    objective: Callable[[FloatArray], float], beta: float, tau: float
) -> tuple[float, float]:
    """A few Newton steps on (β, τ) from the quasi-Newton answer, kept only while they lower
    −log L: L-BFGS-B with numerical gradients stops early on the flat likelihoods of sets with
    many 0/n and n/n studies."""
    par, value = np.array([beta, tau]), objective(np.array([beta, tau]))
    h = 1e-4
    for _ in range(4):
        if par[1] < 10 * h:
            break
        grad = np.array(
            [(objective(par + e) - objective(par - e)) / (2 * h) for e in np.eye(2) * h]
        )
        hess = _hessian(objective, par, h)
        if np.linalg.det(hess) <= 0 or hess[0, 0] <= 0:
            break
        trial = par - np.linalg.solve(hess, grad)
        trial[1] = min(max(trial[1], 0.0), _TAU_MAX)
        trial_value = objective(trial)
        if not trial_value < value:
            break
        par, value = trial, trial_value
    return float(par[0]), float(par[1])


def _hessian(objective: Callable[[FloatArray], float], par: FloatArray, h: float) -> FloatArray:
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
    return hess


def _beta_se(objective: Callable[[FloatArray], float], beta: float, tau: float) -> float:
    """Standard error of β from a central-difference Hessian of −log L over (β, τ)."""
    h = 1e-4
    if tau < 10 * h:
        d2 = (
            objective(np.array([beta + h, tau]))
            - 2 * objective(np.array([beta, tau]))
            + objective(np.array([beta - h, tau]))
        )
        return math.sqrt(h * h / d2) if d2 > 0 else math.nan
    hess = _hessian(objective, np.array([beta, tau]), h)
    if np.linalg.det(hess) <= 0 or hess[1, 1] <= 0:
        return math.nan
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
    degenerate = _degenerate(x, n)
    if degenerate is None:
        beta, tau, se, value, converged = _fit(x, n)
        if tau > _TAU_DEGENERATE:
            degenerate = f"the fitted τ² = {tau * tau:.3g} exceeds 100 (no common proportion)"
        elif not math.isfinite(se):
            degenerate = "the likelihood's curvature at its maximum is not positive"
    if degenerate is not None:
        note = f"cannot pool with the GLMM: {degenerate}; use an inverse-variance method instead"
        return PoolResult(
            pooled=False, degenerate=True, converged=False, notes=(note,), studies=rows, **base
        )
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
        fit_info=(value, converged),
    )


def _degenerate(x: FloatArray, n: FloatArray) -> str | None:
    """Why the likelihood has no finite maximum, or None.

    With every study at 0 or n events the likelihood keeps rising as τ → ∞ (each study is fitted
    exactly in the limit), or, all at 0 (all at n), as β → −∞ (+∞); metafor/lme4 then stop at a
    huge τ² or β. One study strictly between 0 and n makes the likelihood vanish as τ → ∞.
    """
    if np.all(x == 0) or np.all(x == n):
        side, limit = ("0", "0") if np.all(x == 0) else ("all", "1")
        return f"every study has {side} events, so the pooled proportion runs to {limit}"
    if np.all((x == 0) | (x == n)):
        return "every study has 0 or all events, so the likelihood keeps rising as τ² → ∞"
    return None
