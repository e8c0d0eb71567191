"""Pre-screen a review's new records: protocol rules, then the text model at the recall target.

Every record in state ``new`` leaves it, once: excluded by a protocol rule (language,
publication type; the reason and rule stored), auto-excluded by the model (score below a
threshold chosen so that a lower confidence bound on recall meets the protocol's target; score,
threshold and model version stored), or queued with a priority for reviewers. A random share of
the records the model would exclude is queued anyway (``audit_sample``) so the achieved recall
can be estimated. With too few decisions to bound recall (a new review, or one like the LDH
review whose baseline holds only included studies) nothing is auto-excluded: the queue is ranked
by similarity to the included studies and the protocol's keywords (cold start).

:func:`fit_model` fits the model on the review's :func:`training_set` outside any transaction; :func:`prescreen_new` then applies rules and model inside the caller's short
transaction (flush, never commit).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from classifiers import persistence
from classifiers.errors import TrainingDataError
from classifiers.features import record_text
from classifiers.models import TrainedModel, train
from classifiers.prescreen import AUDIT, AUTO_EXCLUDE, prescreen
from classifiers.ranking import cold_start_rank
from classifiers.rules import ProtocolRules, apply_rules
from classifiers.thresholds import ThresholdChoice, choose_threshold
from db.models import ClassifierModel, Record, ReviewRecord, ScreeningDecision, Study, utcnow
from services.protocol import Protocol, Screening

logger = logging.getLogger(__name__)


@dataclass
class PrescreenSummary:
    """What pre-screening did in one pass (the ``prescreen`` entry of an update's steps)."""

    records: int = 0
    rule_excluded: int = 0
    flagged: int = 0
    model_excluded: int = 0
    audit_sample: int = 0
    queued: int = 0
    mode: str = "none"
    model_version: str | None = None
    threshold: float | None = None
    note: str = ""
    by_rule: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _text(record: Record) -> str:
    return record_text(record.title, record.abstract, "; ".join(record.mesh + record.keywords))


def training_set(session: Session, review_id: int) -> tuple[list[str], list[int]]:
    """Texts and labels from the review's screened records and its included studies.

    Negatives: records excluded (by a reviewer, a rule, the model, an imported decision) and the
    inferred excludes of the baseline search period (``living-review backfill``). Positives:
    included studies, their records, and records that passed title/abstract screening.
    """
    texts: list[str] = []
    labels: list[int] = []
    rows = session.execute(
        select(ReviewRecord.state, ReviewRecord.stage, Study.status, Record)
        .join(Record, Record.id == ReviewRecord.record_id)
        .outerjoin(Study, Study.id == ReviewRecord.study_id)
        .where(
            ReviewRecord.review_id == review_id,
            ReviewRecord.state.in_(("included", "excluded", "linked", "inferred_excluded", "queued")),
        )
    ).all()
    for state, stage, study_status, record in rows:
        if state == "linked" and study_status != "included":
            continue  # the same paper as a reference the review cites but did not include
        if state == "queued" and stage != "full_text":
            continue  # not screened yet; at full text it passed title/abstract screening
        texts.append(_text(record))
        labels.append(0 if state in ("excluded", "inferred_excluded") else 1)
    linked_studies = {
        s
        for s in session.scalars(
            select(ReviewRecord.study_id).where(
                ReviewRecord.review_id == review_id, ReviewRecord.study_id.is_not(None)
            )
        )
    }
    for study in session.scalars(
        select(Study).where(Study.review_id == review_id, Study.status == "included")
    ):
        if study.id not in linked_studies and study.title:
            texts.append(record_text(study.title, "", ""))
            labels.append(1)
    return texts, labels


def _fit(
    texts: list[str], labels: list[int], target: float, seed: int
) -> tuple[TrainedModel | None, ThresholdChoice | None, str]:
    """Train and choose a threshold, or say why the model cannot be used yet."""
    if sum(1 for y in labels if y == 0) < 2:
        return None, None, "cold start: no excluded records to learn from yet"
    try:
        model = train(texts, labels, seed=seed)
    except TrainingDataError as exc:
        return None, None, f"cold start: {exc}"
    choice = choose_threshold(model.oof_scores, model.oof_labels, recall_target=target)
    return model, choice, choice.reason


@dataclass(frozen=True)
class Fitted:
    """The model fitted on a review's decisions (or why there is none), with its training set."""

    model: TrainedModel | None
    choice: ThresholdChoice | None
    note: str
    texts: list[str]
    labels: list[int]
    seed: int


def fit_model(texts: list[str], labels: list[int], screening: Screening, *, seed: int = 0) -> Fitted:
    """Fit the model on a review's :func:`training_set`; no database: run it outside a transaction."""
    model, choice, note = _fit(texts, labels, screening.recall_target, seed)
    return Fitted(model, choice, note, texts, labels, seed)


def prescreen_new(
    session: Session,
    *,
    review_id: int,
    protocol: Protocol,
    fitted: Fitted | None = None,
    seed: int = 0,
) -> PrescreenSummary:
    """Move every ``new`` record of the review to auto_excluded or queued; flush, no commit.

    ``fitted`` is the model fitted beforehand (:func:`fit_model`); without it the model is
    fitted here, inside the caller's transaction.
    """
    summary = PrescreenSummary()
    pending = list(
        session.scalars(
            select(ReviewRecord)
            .where(ReviewRecord.review_id == review_id, ReviewRecord.state == "new")
            .order_by(ReviewRecord.id)
        )
    )
    summary.records = len(pending)
    if not pending:
        return summary
    rules = ProtocolRules.from_mapping(protocol.criteria.model_dump())
    screening = protocol.screening
    left: list[ReviewRecord] = []
    protect: list[bool] = []
    for link in pending:
        decision = apply_rules(_rule_view(link.record), rules)
        if decision is not None and decision.action == "exclude":
            _exclude(session, link, reason=decision.reason, rule=decision.rule_id, source="rule")
            summary.rule_excluded += 1
            summary.by_rule[decision.rule_id] = summary.by_rule.get(decision.rule_id, 0) + 1
            continue
        flagged = decision is not None and decision.action == "flag"
        if flagged and decision is not None and decision.rule_id not in link.flags:
            link.flags = [*link.flags, decision.rule_id]
            summary.flagged += 1
        left.append(link)
        protect.append(flagged)
    if left:
        if fitted is None:
            fitted = fit_model(*training_set(session, review_id), screening, seed=seed)
        _model_or_cold_start(session, review_id, left, protect, screening, fitted, summary)
    session.flush()
    return summary


def _rule_view(record: Record) -> dict[str, Any]:
    return {
        "title": record.title,
        "abstract": record.abstract,
        "languages": record.languages,
        "publication_types": record.publication_types,
    }


def _model_or_cold_start(
    session: Session,
    review_id: int,
    links: list[ReviewRecord],
    protect: list[bool],
    screening: Screening,
    fitted: Fitted,
    summary: PrescreenSummary,
) -> None:
    texts = [_text(link.record) for link in links]
    train_texts, labels, seed = fitted.texts, fitted.labels, fitted.seed
    target = screening.recall_target
    model, choice, note = fitted.model, fitted.choice, fitted.note
    summary.note = note
    if model is None:
        positives = [t for t, y in zip(train_texts, labels, strict=True) if y == 1]
        ranks = cold_start_rank(texts, positives, list(screening.keywords))
        summary.mode = "cold_start"
        for link, value in zip(links, ranks, strict=True):
            _queue(link, float(value), None, note)
        summary.queued = len(links)
        return
    stored = _store_model(session, review_id, model, choice)
    summary.mode, summary.model_version = "model", stored.version
    summary.threshold = choice.threshold if choice else None
    rng = np.random.default_rng(seed + len(train_texts))
    result = prescreen(
        model,
        texts,
        choice,
        rng=rng,
        protect=protect,
        audit_fraction=screening.audit_fraction,
    )
    for i, link in enumerate(links):
        value, decision = float(result.scores[i]), result.decisions[i]
        link.score, link.model_version = value, model.version
        if decision == AUTO_EXCLUDE:
            _exclude(
                session,
                link,
                source="model",
                rule="model_threshold",
                score=value,
                model_version=model.version,
                reason=(
                    f"model score {value:.3f} below threshold {result.threshold:.3f} "
                    f"(recall target {target:g}; {note})"
                ),
            )
            summary.model_excluded += 1
        else:
            _queue(
                link,
                value,
                model.version,
                ""
                if decision != AUDIT
                else "audit sample: below the threshold, screened to measure recall",
            )
            link.audit_sample = decision == AUDIT
            summary.audit_sample += int(decision == AUDIT)
            summary.queued += 1


def _store_model(
    session: Session, review_id: int, model: TrainedModel, choice: ThresholdChoice | None
) -> ClassifierModel:
    row = session.scalars(
        select(ClassifierModel).where(
            ClassifierModel.review_id == review_id, ClassifierModel.version == model.version
        )
    ).first()
    if row is None:
        row = ClassifierModel(
            review_id=review_id,
            version=model.version,
            n_train=model.n_train,
            n_positive=model.n_pos,
            metrics={**model.cv, "threshold_reason": choice.reason if choice else ""},
            threshold=choice.threshold if choice else None,
            blob=persistence.dumps(model),
        )
        session.add(row)
        session.flush()
    return row


def _queue(link: ReviewRecord, priority: float, model_version: str | None, reason: str) -> None:
    link.state, link.priority, link.updated_at = "queued", priority, utcnow()
    link.model_version = model_version
    if reason:
        link.reason = reason


def _exclude(
    session: Session,
    link: ReviewRecord,
    *,
    reason: str,
    rule: str,
    source: str,
    score: float | None = None,
    model_version: str | None = None,
) -> None:
    link.state, link.reason, link.rule, link.updated_at = "auto_excluded", reason, rule, utcnow()
    session.add(
        ScreeningDecision(
            review_record_id=link.id,
            decision="exclude",
            reason=reason,
            source=source,
            score=score,
            model_version=model_version,
            stage=link.stage,
        )
    )
