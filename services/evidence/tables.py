"""The predictor and mechanism evidence tables of a review, and a summary per factor.

Rows come from the review's included studies:

- a reviewer's confirmed extraction that states predictor findings (the ``findings`` field)
  or predictors (the ``predictors`` list) gives that study's predictor rows; otherwise the
  published baseline row (the seed's Table 2, kind ``predictors``) does, each printed factor
  mapped to the protocol's vocabulary (``[evidence] factor_aliases``), with the direction where
  the seed's text states it (kind ``predictor_directions``);
- likewise a confirmed extraction naming mechanisms gives the mechanism row, else the
  published Table 3 row (modulators matched with the extraction vocabulary's phrases, species
  mapped with ``[evidence] species_aliases``).

:func:`factor_summaries` gives per factor: studies, patients, direction counts and the pooled
odds ratio (random effects on the log scale, the review's estimator) when at least two
studies report an OR with its CI. Pure functions after :func:`load_tables`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from db.models import Extraction, Study
from services.extraction.schema import schema_from_mapping
from services.extraction.vocab import compile_phrases
from services.meta_analysis.effects import log_ratio, pool_effects
from services.meta_analysis.errors import InvalidStudyData
from services.protocol import EvidenceVocabulary

NOT_REPORTED = "not reported"
_RANK = {"confirmed": 0, "published": 1}
_SPLIT = re.compile(r"\s*(?:;|,|\band\b)\s*")


@dataclass(frozen=True)
class PredictorRow:
    """One factor of one study: direction and effect when reported."""

    study_id: int
    study: str
    factor: str
    printed: str
    in_vocabulary: bool
    direction: str | None
    measure: str | None = None
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    p: float | None = None
    n: int | None = None
    design: str | None = None
    country: str | None = None
    source: str = ""


@dataclass(frozen=True)
class MechanismRow:
    """One mechanism study: the modulators it examined, species, tissue, method."""

    study_id: int
    study: str
    modulators: tuple[str, ...]
    printed: str
    species: str | None
    species_printed: str | None
    tissue: str | None
    method: str | None
    country: str | None
    source: str


@dataclass(frozen=True)
class FactorSummary:
    """A factor across studies: counts, directions and the pooled odds ratio if any."""

    factor: str
    in_vocabulary: bool
    k: int
    patients: int
    directions: dict[str, int]
    studies: list[str]
    study_ids: list[int]
    pooled_or: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ModulatorSummary:
    """A modulator across mechanism studies, by species."""

    modulator: str
    k: int
    species: dict[str, int]
    studies: list[str]
    study_ids: list[int]


@dataclass(frozen=True)
class EvidenceTables:
    """Both tables of a review with their summaries; ``to_dict()`` is ``evidence --json``."""

    predictors: list[PredictorRow]
    mechanisms: list[MechanismRow]
    factors: list[FactorSummary]
    modulators: list[ModulatorSummary]

    @property
    def predictor_studies(self) -> int:
        return len({r.study_id for r in self.predictors})

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON (see README, "The evidence tables")."""
        return {
            "predictors": {
                "studies": self.predictor_studies,
                "rows": [asdict(r) for r in self.predictors],
                "factors": [asdict(f) for f in self.factors],
            },
            "mechanisms": {
                "studies": len(self.mechanisms),
                "rows": [asdict(r) | {"modulators": list(r.modulators)} for r in self.mechanisms],
                "modulators": [asdict(m) for m in self.modulators],
            },
        }


def _match_label(text: str, labels: Sequence[str], aliases: Mapping[str, Sequence[str]]) -> str | None:
    folded = text.casefold().strip()
    for label in labels:
        if label.casefold() == folded or folded in (a.casefold() for a in aliases.get(label, ())):
            return label
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _int(value: Any) -> int | None:
    number = _number(value)
    return None if number is None else int(number)


class _Vocab:
    """The protocol's words: predictor labels and aliases, mechanism phrases, species."""

    def __init__(self, protocol: Mapping[str, Any]) -> None:
        section = dict(protocol.get("extraction") or {})
        self.evidence = EvidenceVocabulary.model_validate(protocol.get("evidence") or {})
        self.factors = [str(v) for v in section.get("predictors") or []]
        self.mechanisms = schema_from_mapping(
            {k: v for k, v in section.items() if k in ("mechanisms", "phrases")}
        ).mechanisms

    def factor(self, printed: str) -> tuple[str, bool]:
        label = _match_label(printed, self.factors, self.evidence.factor_aliases)
        return (label, True) if label else (printed.strip(), False)

    def species(self, printed: str | None) -> str | None:
        if not printed:
            return None
        return _match_label(printed, self.evidence.species, self.evidence.species_aliases) or (
            printed.strip()
        )

    def modulators(self, printed: str) -> tuple[str, ...]:
        found: list[str] = []
        for token in _SPLIT.split(printed):
            token = token.strip()
            if not token:
                continue
            label = next(
                (lab for lab, ph in self.mechanisms.items() if compile_phrases(ph).search(token)),
                " ".join(token.split()),
            )
            if label not in found:
                found.append(label)
        return tuple(found)


def load_tables(session: Session, review_id: int, protocol: Mapping[str, Any]) -> EvidenceTables:
    """Both evidence tables of a review from its included studies' current extractions."""
    vocab = _Vocab(protocol)
    rows = session.execute(
        select(Study, Extraction)
        .join(Extraction, Extraction.study_id == Study.id)
        .where(
            Study.review_id == review_id,
            Study.status == "included",
            Extraction.superseded.is_(False),
        )
        .order_by(Study.year, Study.id, Extraction.id)
    ).all()
    by_study: dict[int, tuple[Study, list[Extraction]]] = {}
    for study, extraction in rows:
        by_study.setdefault(study.id, (study, []))[1].append(extraction)
    predictors: list[PredictorRow] = []
    mechanisms: list[MechanismRow] = []
    for study, extractions in by_study.values():
        predictors += _predictor_rows(study, extractions, vocab)
        mechanism = _mechanism_row(study, extractions, vocab)
        if mechanism is not None:
            mechanisms.append(mechanism)
    method = str((protocol.get("outcome") or {}).get("method") or "REML")
    return EvidenceTables(
        predictors,
        mechanisms,
        factor_summaries(predictors, vocab.evidence.directions, method=method),
        modulator_summaries(mechanisms),
    )


def _confirmed(extractions: list[Extraction]) -> Extraction | None:
    mine = [e for e in extractions if e.status == "confirmed"]
    return mine[-1] if mine else None


def _published(extractions: list[Extraction], kind: str) -> list[Extraction]:
    return [e for e in extractions if e.kind == kind and e.status == "published"]


def _label(study: Study, data: Mapping[str, Any]) -> str:
    return str(data.get("study") or study.label)


def _predictor_rows(
    study: Study, extractions: list[Extraction], vocab: _Vocab
) -> list[PredictorRow]:
    confirmed = _confirmed(extractions)
    if confirmed is not None:
        data = confirmed.data or {}
        findings = [f for f in data.get("predictor_findings") or [] if isinstance(f, Mapping)]
        listed = [str(p) for p in data.get("predictors") or []]
        if findings or listed:
            return _confirmed_rows(study, data, findings, listed, vocab)
    rows: list[PredictorRow] = []
    stated = {
        vocab.factor(str(e.data.get("factor") or ""))[0]: str(e.data.get("direction") or "")
        for e in _published(extractions, "predictor_directions")
    }
    for extraction in _published(extractions, "predictors"):
        data = extraction.data or {}
        for printed in str(data.get("predictors") or "").split(";"):
            if not printed.strip():
                continue
            factor, known = vocab.factor(printed)
            rows.append(
                PredictorRow(
                    study_id=study.id,
                    study=_label(study, data),
                    factor=factor,
                    printed=printed.strip(),
                    in_vocabulary=known,
                    direction=stated.get(factor) or None,
                    n=_int(data.get("sample_size")),
                    country=data.get("country"),
                    source=extraction.source,
                )
            )
    return rows


def _confirmed_rows(
    study: Study,
    data: Mapping[str, Any],
    findings: list[Mapping[str, Any]],
    listed: list[str],
    vocab: _Vocab,
) -> list[PredictorRow]:
    common: dict[str, Any] = {
        "study_id": study.id,
        "study": study.label,
        "n": _int(data.get("n_total")),
        "design": data.get("design"),
        "country": data.get("country"),
        "source": "reviewer",
    }
    rows = [
        PredictorRow(
            factor=str(f.get("factor")),
            printed=str(f.get("factor")),
            in_vocabulary=str(f.get("factor")) in vocab.factors,
            direction=f.get("direction"),
            measure=f.get("measure"),
            value=_number(f.get("value")),
            ci_low=_number(f.get("ci_low")),
            ci_high=_number(f.get("ci_high")),
            p=_number(f.get("p")),
            **common,
        )
        for f in findings
    ]
    stated = {row.factor for row in rows}
    rows += [
        PredictorRow(factor=p, printed=p, in_vocabulary=p in vocab.factors, direction=None, **common)
        for p in listed
        if p not in stated
    ]
    return rows


def _mechanism_row(
    study: Study, extractions: list[Extraction], vocab: _Vocab
) -> MechanismRow | None:
    confirmed = _confirmed(extractions)
    if confirmed is not None and (confirmed.data or {}).get("mechanisms"):
        data = confirmed.data
        names = tuple(str(m) for m in data["mechanisms"])
        return MechanismRow(
            study.id, study.label, names, ", ".join(names), vocab.species(data.get("species")),
            data.get("species"), data.get("tissue"), data.get("mechanism_method"),
            data.get("country"), "reviewer",
        )
    for extraction in _published(extractions, "mechanisms"):
        data = extraction.data or {}
        printed = str(data.get("cellular_modulators") or "")
        return MechanismRow(
            study.id, _label(study, data), vocab.modulators(printed), printed,
            vocab.species(data.get("species")), data.get("species"), data.get("tissue"),
            data.get("method"), data.get("country"), extraction.source,
        )
    return None


def factor_summaries(
    rows: Sequence[PredictorRow], directions: Sequence[str], *, method: str = "REML"
) -> list[FactorSummary]:
    """Per factor (most studies first): studies, patients, direction counts, pooled OR."""
    groups: dict[str, list[PredictorRow]] = {}
    for row in rows:
        groups.setdefault(row.factor, []).append(row)
    out = []
    for factor, members in groups.items():
        counts = {d: 0 for d in (*directions, NOT_REPORTED)}
        for row in members:
            key = row.direction if row.direction in counts else NOT_REPORTED
            counts[key] += 1
        pooled, notes = _pooled_or(members, method)
        ids = list(dict.fromkeys(r.study_id for r in members))
        out.append(
            FactorSummary(
                factor=factor,
                in_vocabulary=members[0].in_vocabulary,
                k=len(ids),
                patients=sum(r.n or 0 for r in {r.study_id: r for r in members}.values()),
                directions=counts,
                studies=list(dict.fromkeys(r.study for r in members)),
                study_ids=ids,
                pooled_or=pooled,
                notes=notes,
            )
        )
    return sorted(out, key=lambda s: (-s.k, s.factor.casefold()))


def _pooled_or(rows: Sequence[PredictorRow], method: str) -> tuple[dict[str, Any] | None, list[str]]:
    effects, notes = [], []
    for row in rows:
        if row.measure != "OR" or None in (row.value, row.ci_low, row.ci_high):
            continue
        try:
            effects.append(log_ratio(row.study, row.value, row.ci_low, row.ci_high))  # type: ignore[arg-type]
        except InvalidStudyData as exc:
            notes.append(str(exc))
    if len(effects) < 2:
        return None, notes
    result = pool_effects([e[0] for e in effects], [e[1] for e in effects], method=method)
    return result.to_dict(), notes


def modulator_summaries(rows: Sequence[MechanismRow]) -> list[ModulatorSummary]:
    """Per modulator (most studies first): studies and their species."""
    groups: dict[str, list[MechanismRow]] = {}
    for row in rows:
        for name in row.modulators:
            groups.setdefault(name, []).append(row)
    out = []
    for name, members in groups.items():
        species: dict[str, int] = {}
        for row in members:
            key = row.species or NOT_REPORTED
            species[key] = species.get(key, 0) + 1
        out.append(
            ModulatorSummary(
                name, len(members), species, [r.study for r in members],
                [r.study_id for r in members],
            )
        )
    return sorted(out, key=lambda s: (-s.k, s.modulator.casefold()))
