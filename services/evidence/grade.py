"""GRADE certainty per outcome: each domain's downgrade proposed from the numbers, confirmed
by a reviewer; and the sensitivity estimate restricted to studies at low risk of bias.

Certainty starts at ``[grade] start`` (prevalence from observational studies: high) and goes
down one level per downgrade, never below very low. The machine proposes (thresholds from the
protocol's ``[grade]``):

- **risk of bias** — the share of the pooled (random-effects) weight from studies whose
  standing overall judgement is high risk: ≥ ``rob_very_serious_share`` −2, ≥
  ``rob_serious_share`` −1; when that much weight is not yet rated, −1 until it is;
- **inconsistency** — I² ≥ ``i2_very_serious`` with a prediction interval wider than
  ``pi_width_very_serious`` −2; I² ≥ ``i2_serious`` −1;
- **indirectness** — 0: no number decides it; a reviewer rates it;
- **imprecision** — 95% CI width ≥ ``ci_width_very_serious`` −2, ≥ ``ci_width_serious`` −1;
- **publication bias** — with k ≥ 10, Egger's test p < ``egger_p`` −1 (for proportions a
  small-study effect need not be publication bias: the reason says so); with k < 10, 0 and
  "not assessable".

A reviewer's confirmation (:func:`confirm_domain`) stands until the proposal it confirmed
changes; then the domain is shown as proposed again ("stale"), so new numbers are looked at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import GradeJudgement, Review, User
from services.evidence.errors import EvidenceInputError
from services.meta_analysis.analysis import Analysis, pool_studies
from services.meta_analysis.bias import MIN_STUDIES, egger_test, funnel_data
from services.protocol import Grade

LEVELS = ("very low", "low", "moderate", "high")
DOMAINS = ("risk_of_bias", "inconsistency", "indirectness", "imprecision", "publication_bias")
DOMAIN_LABELS = {
    "risk_of_bias": "Risk of bias",
    "inconsistency": "Inconsistency",
    "indirectness": "Indirectness",
    "imprecision": "Imprecision",
    "publication_bias": "Publication bias",
}
MAX_REASON = 1000


@dataclass(frozen=True)
class DomainRating:
    """One GRADE domain: the machine's proposal with its reason, and a reviewer's confirmation."""

    domain: str
    label: str
    proposed: int
    reason: str
    figures: dict[str, Any]
    confirmed: int | None = None
    confirmed_reason: str | None = None
    confirmed_by: int | None = None
    stale: bool = False

    @property
    def downgrade(self) -> int:
        """The downgrade that counts: the confirmed one, unless it confirmed another proposal."""
        return self.proposed if self.confirmed is None or self.stale else self.confirmed


@dataclass(frozen=True)
class Certainty:
    """The GRADE rating of one outcome, with the figures behind it."""

    outcome: str
    start: str
    level: str
    status: str  # proposed | confirmed
    domains: list[DomainRating]
    sensitivity: dict[str, Any] | None
    egger: dict[str, Any] | None
    funnel: dict[str, Any] | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict; each domain with its effective ``downgrade``."""
        data = asdict(self)
        data["domains"] = [asdict(d) | {"downgrade": d.downgrade} for d in self.domains]
        return data

    def state(self) -> dict[str, Any]:
        """What the digest compares between recomputes: level and each domain's downgrade."""
        return {
            "level": self.level,
            "status": self.status,
            "domains": {d.domain: d.downgrade for d in self.domains},
        }


def _weights(analysis: Analysis) -> list[tuple[int | None, float]]:
    rows = analysis.result.studies
    return [
        (study.study_id, (row.weight_random or 0.0) / 100.0)
        for study, row in zip(analysis.included, rows, strict=True)
    ]


def propose_risk_of_bias(
    weights: Sequence[tuple[int | None, float]], overall: Mapping[int, str], grade: Grade
) -> tuple[int, str, dict[str, Any]]:
    """Downgrade from the share of weight at high risk (and the share not yet rated)."""
    high = sum(w for sid, w in weights if sid is not None and overall.get(sid) == "high")
    unrated = sum(w for sid, w in weights if sid is None or sid not in overall)
    figures = {"share_high": high, "share_unrated": unrated, "k": len(weights)}
    share = f"{100 * high:.0f}% of the weight from studies at high risk of bias"
    if high >= grade.rob_very_serious_share:
        return 2, f"{share} (≥ {100 * grade.rob_very_serious_share:.0f}%)", figures
    if high >= grade.rob_serious_share:
        return 1, f"{share} (≥ {100 * grade.rob_serious_share:.0f}%)", figures
    if unrated >= grade.rob_serious_share:
        return 1, (
            f"{100 * unrated:.0f}% of the weight from studies not yet rated (agreed or resolved); "
            f"{share}"
        ), figures
    return 0, share, figures


def propose_inconsistency(i2: float, pi_width: float, grade: Grade) -> tuple[int, str]:
    """Downgrade from I² and the width of the prediction interval."""
    text = f"I² = {i2:.0f}%, prediction interval {100 * pi_width:.0f} percentage points wide"
    if i2 >= grade.i2_very_serious and pi_width >= grade.pi_width_very_serious:
        return 2, f"{text} (I² ≥ {grade.i2_very_serious:g}% and PI ≥ {100 * grade.pi_width_very_serious:.0f} points)"
    if i2 >= grade.i2_serious:
        return 1, f"{text} (I² ≥ {grade.i2_serious:g}%)"
    return 0, text


def propose_imprecision(ci_width: float, grade: Grade) -> tuple[int, str]:
    """Downgrade from the width of the 95% CI against the protocol's thresholds."""
    text = f"95% CI {100 * ci_width:.1f} percentage points wide"
    if ci_width >= grade.ci_width_very_serious:
        return 2, f"{text} (≥ {100 * grade.ci_width_very_serious:.0f})"
    if ci_width >= grade.ci_width_serious:
        return 1, f"{text} (≥ {100 * grade.ci_width_serious:.0f})"
    return 0, f"{text} (< {100 * grade.ci_width_serious:.0f})"


def propose_publication_bias(egger: Mapping[str, Any] | None, k: int, grade: Grade) -> tuple[int, str]:
    """Downgrade from Egger's test (k ≥ 10)."""
    if egger is None:
        return 0, f"not assessable: k = {k} < {MIN_STUDIES} studies for Egger's test"
    text = f"Egger's test z = {egger['z']:.2f}, p = {egger['p']:.3g} (k = {k})"
    if egger["p"] < grade.egger_p:
        return 1, (
            f"{text} < {grade.egger_p:g}: small studies report other proportions than large "
            "ones (for proportions this need not be publication bias)"
        )
    return 0, f"{text} ≥ {grade.egger_p:g}"


def proposals(
    analysis: Analysis, overall: Mapping[int, str], grade: Grade
) -> list[tuple[str, int, str, dict[str, Any]]]:
    """(domain, proposed downgrade, reason, figures) for the five domains."""
    res = analysis.result
    if not res.pooled:
        return [(d, 0, "no pooled estimate (fewer than 2 studies)", {}) for d in DOMAINS]
    ci_width = float(res.ci_high or 0) - float(res.ci_low or 0)
    pi_width = float(res.pi_high or 0) - float(res.pi_low or 0)
    egger = egger_of(analysis)
    rob_down, rob_reason, rob_fig = propose_risk_of_bias(_weights(analysis), overall, grade)
    inc = propose_inconsistency(float(res.i2 or 0), pi_width, grade)
    imp = propose_imprecision(ci_width, grade)
    pub = propose_publication_bias(egger, res.k, grade)
    return [
        ("risk_of_bias", rob_down, rob_reason, rob_fig),
        ("inconsistency", *inc, {"i2": res.i2, "pi_width": pi_width}),
        ("indirectness", 0, "no number decides it: a reviewer rates whether the studies' "
         "patients, treatment and imaging match the question", {}),
        ("imprecision", *imp, {"ci_width": ci_width}),
        ("publication_bias", *pub, {"egger": egger}),
    ]


def egger_of(analysis: Analysis) -> dict[str, Any] | None:
    """Egger's test on the pooled studies (transformed scale), None when k < 10."""
    rows = analysis.result.studies
    if len(rows) < MIN_STUDIES or not analysis.result.pooled:
        return None
    return egger_test([r.yi for r in rows], [r.vi for r in rows]).to_dict()


def funnel_of(analysis: Analysis) -> dict[str, Any] | None:
    """The funnel plot data of the pooled studies, None when k < 10."""
    rows, res = analysis.result.studies, analysis.result
    if len(rows) < MIN_STUDIES or res.estimate_t is None:
        return None
    return funnel_data(
        [r.yi for r in rows], [r.vi for r in rows], res.estimate_t, labels=[r.label for r in rows]
    ).to_dict()


def sensitivity(
    analysis: Analysis, overall: Mapping[int, str], options: Mapping[str, Any]
) -> dict[str, Any]:
    """The estimate restricted to studies whose standing judgement is low risk of bias."""
    low = [s for s in analysis.included if s.study_id is not None and overall.get(s.study_id) == "low"]
    result = pool_studies(low, **options)
    return {
        "k": result.k,
        "pooled": result.pooled,
        "estimate": result.estimate,
        "ci_low": result.ci_low,
        "ci_high": result.ci_high,
        "i2": result.i2,
        "notes": list(result.notes),
    }


def latest_judgements(session: Session, review_id: int, outcome: str) -> dict[str, GradeJudgement]:
    """The newest confirmation of each domain of an outcome."""
    rows = session.scalars(
        select(GradeJudgement)
        .where(GradeJudgement.review_id == review_id, GradeJudgement.outcome == outcome)
        .order_by(GradeJudgement.id)
    )
    return {row.domain: row for row in rows}


def assess(
    session: Session,
    review: Review,
    analysis: Analysis,
    overall: Mapping[int, str],
    options: Mapping[str, Any],
) -> Certainty:
    """The outcome's certainty now: proposals from ``analysis``, confirmations from the DB."""
    protocol = review.protocol or {}
    grade = Grade.model_validate(protocol.get("grade") or {})
    outcome = str((protocol.get("outcome") or {}).get("name") or "outcome")
    confirmed = latest_judgements(session, review.id, outcome)
    domains = []
    for domain, proposed, reason, figures in proposals(analysis, overall, grade):
        row = confirmed.get(domain)
        domains.append(
            DomainRating(
                domain, DOMAIN_LABELS[domain], proposed, reason, figures,
                confirmed=None if row is None else row.downgrade,
                confirmed_reason=None if row is None else row.reason,
                confirmed_by=None if row is None else row.user_id,
                stale=row is not None and row.proposed != proposed,
            )
        )
    start = LEVELS.index(grade.start)
    level = LEVELS[max(0, start - sum(d.downgrade for d in domains))]
    done = all(d.confirmed is not None and not d.stale for d in domains)
    return Certainty(
        outcome, grade.start, level, "confirmed" if done else "proposed", domains,
        sensitivity(analysis, overall, options), egger_of(analysis), funnel_of(analysis),
    )


def confirm_domain(
    *,
    session: Session,
    review: Review,
    user: User,
    outcome: str,
    domain: str,
    downgrade: Any,
    proposed: int,
    reason: str,
) -> GradeJudgement:
    """Record a reviewer's downgrade for one domain (0, 1 or 2); flushes, never commits.

    ``proposed`` is the machine's proposal the reviewer saw. EvidenceInputError names a bad
    domain, downgrade or a missing reason for departing from the proposal.
    """
    errors: dict[str, str] = {}
    if domain not in DOMAINS:
        errors["domain"] = f"one of: {', '.join(DOMAINS)}"
    text = str(downgrade).strip()
    if text not in ("0", "1", "2"):
        errors["downgrade"] = "0, 1 or 2 levels"
    reason = (reason or "").strip()
    if len(reason) > MAX_REASON:
        errors["reason"] = f"at most {MAX_REASON} characters"
    elif text.isdigit() and int(text) != proposed and not reason:
        errors["reason"] = "say why you depart from the proposal"
    if errors:
        raise EvidenceInputError(errors)
    row = GradeJudgement(
        review_id=review.id, outcome=outcome, domain=domain, proposed=proposed,
        downgrade=int(text), reason=reason, user_id=user.id,
    )
    session.add(row)
    session.flush()
    return row
