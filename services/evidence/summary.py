"""The summary of findings of a review: each question, its answer, its certainty, what changed.

:func:`summary_of_findings` assembles, from the database, the three questions of a review
like the LDH one — how often (the pooled estimate with its GRADE certainty and the estimate
restricted to low risk-of-bias studies), what predicts it (per factor), by which mechanisms
(per modulator) — and what the last recompute changed. :func:`sof_csv` and the ``*_csv``
functions give the CSV exports (one header row, then one row per line of the table).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import asdict
from typing import Any

from sqlalchemy.orm import Session

from db.models import Review
from services.evidence.snapshots import EvidenceReport, build_report, latest_evidence
from services.evidence.tables import NOT_REPORTED, EvidenceTables
from services.meta_analysis.store import latest_snapshot


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def summary_of_findings(session: Session, review: Review) -> dict[str, Any]:
    """The summary of findings (JSON-ready; the page, the CSV and ``summary --json`` show it)."""
    report = build_report(session, review)
    res = report.analysis.result
    outcome = str((review.protocol or {}).get("outcome", {}).get("name") or "outcome")
    snapshot = latest_snapshot(session, review.id, outcome)
    evidence = latest_evidence(session, review.id)
    evidence_lines = list(evidence.changes or []) if evidence else []
    estimate_lines = [
        line for line in ((snapshot.changes or {}).get("reasons", []) if snapshot else [])
        if line not in evidence_lines
    ]
    return {
        "review": review.slug,
        "title": review.title,
        "prevalence": {
            "outcome": outcome,
            "k": res.k,
            "events": res.events,
            "total": res.total,
            "estimate": res.estimate,
            "ci_low": res.ci_low,
            "ci_high": res.ci_high,
            "pi_low": res.pi_low,
            "pi_high": res.pi_high,
            "i2": res.i2,
            "method": f"{res.method} {res.transform} ({res.test})",
            "certainty": report.certainty.to_dict(),
            "risk_of_bias": {"status": report.rob_status, "agreement": report.rob_agreement},
        },
        "predictors": [asdict(f) for f in report.tables.factors],
        "predictor_studies": report.tables.predictor_studies,
        "mechanisms": [asdict(m) for m in report.tables.modulators],
        "mechanism_studies": len(report.tables.mechanisms),
        "changes": {
            "estimate": estimate_lines,
            "evidence": evidence_lines,
            "at": None if snapshot is None else snapshot.created_at.isoformat(),
        },
    }


def _write(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def _directions(directions: dict[str, int]) -> str:
    return "; ".join(f"{n} {d}" for d, n in directions.items() if n)


def sof_csv(sof: dict[str, Any]) -> str:
    """The summary of findings as CSV: question, item, studies, patients, result, certainty."""
    prev = sof["prevalence"]
    cert = prev["certainty"]
    sens = cert.get("sensitivity") or {}
    rows: list[list[Any]] = [[
        "How often", prev["outcome"], prev["k"], prev["total"],
        f"{_pct(prev['estimate'])} [{_pct(prev['ci_low'])}; {_pct(prev['ci_high'])}], "
        f"PI [{_pct(prev['pi_low'])}; {_pct(prev['pi_high'])}], I² {prev['i2'] or 0:.0f}%",
        f"{cert['level']} ({cert['status']}): "
        + "; ".join(f"{d['label']} −{d['downgrade']}" for d in cert["domains"] if d["downgrade"]),
    ], [
        "How often (low risk of bias only)", prev["outcome"], sens.get("k", 0), "",
        f"{_pct(sens.get('estimate'))} [{_pct(sens.get('ci_low'))}; {_pct(sens.get('ci_high'))}]"
        if sens.get("pooled") else "; ".join(sens.get("notes", [])), "",
    ]]
    for f in sof["predictors"]:
        pooled = f.get("pooled_or")
        result = _directions(f["directions"])
        if pooled:
            result += f"; pooled OR {pooled['ratio']:.2f} [{pooled['ratio_ci_low']:.2f}; {pooled['ratio_ci_high']:.2f}]"
        rows.append(["What predicts it", f["factor"], f["k"], f["patients"], result, ""])
    for m in sof["mechanisms"]:
        rows.append(["By which mechanisms", m["modulator"], m["k"], "",
                     "; ".join(f"{n} {s}" for s, n in m["species"].items()), ""])
    return _write(("question", "item", "studies", "patients", "result", "certainty"), rows)


def predictors_csv(tables: EvidenceTables) -> str:
    """The predictor table, one row per study and factor."""
    header = ("study", "factor", "printed", "in_vocabulary", "direction", "measure", "value",
              "ci_low", "ci_high", "p", "n", "design", "country", "source")
    return _write(header, (
        [r.study, r.factor, r.printed, r.in_vocabulary, r.direction or NOT_REPORTED, r.measure,
         r.value, r.ci_low, r.ci_high, r.p, r.n, r.design, r.country, r.source]
        for r in tables.predictors
    ))


def mechanisms_csv(tables: EvidenceTables) -> str:
    """The mechanism table, one row per study."""
    header = ("study", "modulators", "printed", "species", "species_printed", "tissue", "method",
              "country", "source")
    return _write(header, (
        [r.study, "; ".join(r.modulators), r.printed, r.species, r.species_printed, r.tissue,
         r.method, r.country, r.source]
        for r in tables.mechanisms
    ))


def report_for(session: Session, review: Review) -> EvidenceReport:
    """The evidence report of a review (the tables and certainty)."""
    return build_report(session, review)
