"""Pre-screen a review's new records: protocol rules, then the text model at the recall target.

Every record in state ``new`` leaves it, once: excluded by a protocol rule (language,
publication type; the reason and rule stored), auto-excluded by the model (score below a
threshold chosen so that a lower confidence bound on recall meets the protocol's target; score,
threshold and model version stored), or queued with a priority for reviewers. A random share of
the records the model would exclude is queued anyway (``audit_sample``) so the achieved recall
can be estimated. With too few decisions to bound recall (a new review, or one like the LDH
review whose baseline holds only included studies) nothing is auto-excluded: the queue is ranked
by similarity to the included studies and the protocol's keywords (cold start).

:func:`fit_model` fits the model on the review's :func:`training_set` and :func:`plan_prescreen`
works out every new record's outcome, both outside any write transaction; :func:`apply_outcomes`
then writes a chunk of the outcomes inside the caller's short transaction (flush, never commit),
skipping records that are no longer new, so an update writes in chunks and a re-run after a
crash carries on where the last committed chunk ended (:func:`services.update.prescreen`).
:func:`prescreen_new` does both for all records in one transaction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

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
        return {**self.__dict__, "by_rule": dict(self.by_rule)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PrescreenSummary:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def counted(self, done: PrescreenSummary) -> PrescreenSummary:
        """This summary's mode, model and note with its counts plus ``done``'s."""
        by_rule = dict(self.by_rule)
        for rule, n in done.by_rule.items():
            by_rule[rule] = by_rule.get(rule, 0) + n
        return PrescreenSummary(
            **{name: getattr(self, name) + getattr(done, name) for name in COUNTS},
            mode=self.mode,
            model_version=self.model_version,
            threshold=self.threshold,
            note=self.note,
            by_rule=by_rule,
        )


COUNTS = ("records", "rule_excluded", "flagged", "model_excluded", "audit_sample", "queued")


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


@dataclass(frozen=True)
class Outcome:
    """What pre-screening decided for one new record; written by :func:`apply_outcomes`."""

    review_record_id: int
    state: str  # queued | auto_excluded
    source: str | None = None  # of the exclusion decision: rule | model
    reason: str | None = None
    rule: str | None = None
    score: float | None = None
    priority: float | None = None
    model_version: str | None = None
    audit_sample: bool = False
    flag: str | None = None  # a protocol rule that flags the record for reviewers


@dataclass
class Plan:
    """Pre-screening worked out for a review's new records, nothing written yet."""

    summary: PrescreenSummary  # mode, model, threshold and note; counts come from applying
    outcomes: list[Outcome]
    model: TrainedModel | None = None
    choice: ThresholdChoice | None = None


def plan_prescreen(
    session: Session,
    *,
    review_id: int,
    protocol: Protocol,
    fitted: Fitted | None = None,
    seed: int = 0,
) -> Plan:
    """Rules, then the model (or the cold-start ranking), for every ``new`` record of the
    review; reads only, so it can run outside a write transaction.

    ``fitted`` is the model fitted beforehand (:func:`fit_model`); without it the model is
    fitted here.
    """
    summary = PrescreenSummary()
    pending = list(
        session.scalars(
            select(ReviewRecord)
            .options(joinedload(ReviewRecord.record))
            .where(ReviewRecord.review_id == review_id, ReviewRecord.state == "new")
            .order_by(ReviewRecord.id)
        )
    )
    plan = Plan(summary, [])
    if not pending:
        return plan
    rules = ProtocolRules.from_mapping(protocol.criteria.model_dump())
    screening = protocol.screening
    left: list[ReviewRecord] = []
    protect: list[bool] = []
    flags: dict[int, str] = {}
    for link in pending:
        decision = apply_rules(_rule_view(link.record), rules)
        if decision is not None and decision.action == "exclude":
            plan.outcomes.append(
                Outcome(link.id, "auto_excluded", "rule", decision.reason, decision.rule_id)
            )
            continue
        flagged = decision is not None and decision.action == "flag"
        if flagged and decision is not None and decision.rule_id not in link.flags:
            flags[link.id] = decision.rule_id
        left.append(link)
        protect.append(flagged)
    if left:
        if fitted is None:
            fitted = fit_model(*training_set(session, review_id), screening, seed=seed)
        _model_or_cold_start(plan, left, protect, screening, fitted, flags)
    return plan


def prescreen_new(
    session: Session,
    *,
    review_id: int,
    protocol: Protocol,
    fitted: Fitted | None = None,
    seed: int = 0,
) -> PrescreenSummary:
    """Move every ``new`` record of the review to auto_excluded or queued in the caller's
    transaction (flush, no commit): :func:`plan_prescreen`, then :func:`apply_outcomes` of all.
    An update writes in chunks instead (:func:`services.update.prescreen`)."""
    plan = plan_prescreen(
        session, review_id=review_id, protocol=protocol, fitted=fitted, seed=seed
    )
    done = apply_outcomes(session, review_id=review_id, plan=plan, outcomes=plan.outcomes)
    return plan.summary.counted(done)


def apply_outcomes(
    session: Session, *, review_id: int, plan: Plan, outcomes: list[Outcome]
) -> PrescreenSummary:
    """Write ``outcomes`` (a chunk of ``plan``'s) to the records still ``new``; flush, no
    commit. Returns the counts of what was written (records already pre-screened, e.g. by a
    run that crashed after writing them, are skipped and not counted)."""
    done = PrescreenSummary()
    if not outcomes:
        return done
    if plan.model is not None:
        _store_model(session, review_id, plan.model, plan.choice)
    links = {
        link.id: link
        for link in session.scalars(
            select(ReviewRecord).where(
                ReviewRecord.id.in_([o.review_record_id for o in outcomes]),
                ReviewRecord.state == "new",
            )
        )
    }
    for outcome in outcomes:
        link = links.get(outcome.review_record_id)
        if link is None:
            continue
        done.records += 1
        if outcome.flag is not None:
            link.flags = [*link.flags, outcome.flag]
            done.flagged += 1
        if outcome.source == "model":
            link.score, link.model_version = outcome.score, outcome.model_version
        if outcome.state == "auto_excluded":
            _exclude(session, link, outcome)
            if outcome.source == "rule" and outcome.rule is not None:
                done.rule_excluded += 1
                done.by_rule[outcome.rule] = done.by_rule.get(outcome.rule, 0) + 1
            else:
                done.model_excluded += 1
            continue
        _queue(link, outcome)
        done.audit_sample += int(outcome.audit_sample)
        done.queued += 1
    session.flush()
    return done


def _rule_view(record: Record) -> dict[str, Any]:
    return {
        "title": record.title,
        "abstract": record.abstract,
        "languages": record.languages,
        "publication_types": record.publication_types,
    }


def _model_or_cold_start(
    plan: Plan,
    links: list[ReviewRecord],
    protect: list[bool],
    screening: Screening,
    fitted: Fitted,
    flags: dict[int, str],
) -> None:
    summary = plan.summary
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
            plan.outcomes.append(
                Outcome(link.id, "queued", priority=float(value), reason=note or None,
                        flag=flags.get(link.id))
            )
        return
    plan.model, plan.choice = model, choice
    summary.mode, summary.model_version = "model", model.version
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
        version, flag = model.version, flags.get(link.id)
        if decision == AUTO_EXCLUDE:
            reason = (
                f"model score {value:.3f} below threshold {result.threshold:.3f} "
                f"(recall target {target:g}; {note})"
            )
            plan.outcomes.append(
                Outcome(link.id, "auto_excluded", "model", reason, "model_threshold", value,
                        model_version=version, flag=flag)
            )
        else:
            audit = decision == AUDIT
            plan.outcomes.append(
                Outcome(
                    link.id,
                    "queued",
                    "model",
                    "audit sample: below the threshold, screened to measure recall"
                    if audit
                    else None,
                    score=value,
                    priority=value,
                    model_version=version,
                    audit_sample=audit,
                    flag=flag,
                )
            )


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


def _queue(link: ReviewRecord, outcome: Outcome) -> None:
    link.state, link.priority, link.updated_at = "queued", outcome.priority or 0.0, utcnow()
    link.model_version = outcome.model_version
    link.audit_sample = outcome.audit_sample
    if outcome.reason:
        link.reason = outcome.reason


def _exclude(session: Session, link: ReviewRecord, outcome: Outcome) -> None:
    link.state, link.reason, link.rule = "auto_excluded", outcome.reason, outcome.rule
    link.updated_at = utcnow()
    session.add(
        ScreeningDecision(
            review_record_id=link.id,
            decision="exclude",
            reason=outcome.reason,
            source=outcome.source,
            score=outcome.score,
            model_version=outcome.model_version,
            stage=link.stage,
        )
    )
