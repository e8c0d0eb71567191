"""Extraction confirmation: the form built from the protocol's schema, validation, history.

A confirmation adds an Extraction row (status ``confirmed``, who and when) that supersedes the
current one; earlier rows stay as history. Validation refuses the whole form (InvalidInputError
with a message per field) so nothing half-valid is saved. Functions take ``*, session``, flush,
never commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from db.models import OUTCOME_KIND, Extraction, ExtractionProposal, Review, Study, User
from services.evidence.findings import convert_findings, findings_options
from services.extraction.form import prefill as form_prefill
from services.screening.decisions import audit
from services.screening.errors import ConflictError, InvalidInputError, NotFoundError
from services.screening.rules import ScreeningRules, rules_of

KIND = OUTCOME_KIND
MAX_TEXT = 500
MAX_COUNT = 10_000_000


@dataclass(frozen=True)
class FieldSpec:
    """One field of the extraction form."""

    name: str
    type: str  # int|float|text|choice|list|findings
    label: str
    required: bool
    choices: tuple[str, ...]
    options: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # findings columns


def form_fields(review: Review) -> list[FieldSpec]:
    """The extraction form of a review, from ``[extraction] fields`` of its protocol."""
    section = rules_of(review).extraction
    specs = []
    for raw in section.get("fields") or []:
        vocabulary = (
            section.get(raw.get("choices_from") or "", []) if raw.get("choices_from") else []
        )
        specs.append(
            FieldSpec(
                name=str(raw["name"]),
                type=str(raw.get("type", "text")),
                label=str(raw.get("label") or raw["name"]),
                required=bool(raw.get("required", False)),
                choices=tuple(str(c) for c in vocabulary),
                options=findings_options(review.protocol) if raw.get("type") == "findings" else {},
            )
        )
    return specs


def validate_values(
    specs: list[FieldSpec], raw: Mapping[str, Any], rules: ScreeningRules
) -> dict[str, Any]:
    """Typed values of a submitted form; InvalidInputError naming every bad field."""
    errors: dict[str, str] = {}
    values: dict[str, Any] = {}
    known = {s.name for s in specs}
    for name in raw:
        if name not in known:
            errors[name] = "not a field of this review's extraction form"
    for spec in specs:
        try:
            value = _convert(spec, raw.get(spec.name))
        except ValueError as exc:
            errors[spec.name] = str(exc)
            continue
        if value is None and spec.required:
            errors[spec.name] = "required"
        values[spec.name] = value
    events, total = values.get(rules.events_field), values.get(rules.total_field)
    if isinstance(events, int) and isinstance(total, int) and events > total:
        errors.setdefault(rules.events_field, f"{events} is more than the total ({total})")
    if errors:
        raise InvalidInputError(errors)
    return values


def _convert(spec: FieldSpec, value: Any) -> Any:
    if spec.type == "findings":
        return convert_findings(value, spec.choices, spec.options)
    if spec.type == "list":
        items = value if isinstance(value, list) else ([] if value in (None, "") else [value])
        items = [str(v).strip() for v in items if str(v).strip()]
        unknown = [v for v in items if spec.choices and v not in spec.choices]
        if unknown:
            raise ValueError(f"unknown value(s): {', '.join(unknown)}")
        return items or None
    if isinstance(value, list):
        raise ValueError("one value expected")
    text = "" if value is None else str(value).strip()
    if text == "":
        return None
    if spec.type == "int":
        if isinstance(value, float) or not text.lstrip("-").isdigit():
            raise ValueError(f"{text!r} is not a whole number")
        number = int(text)
        if number < 0:
            raise ValueError("must not be negative")
        if number > MAX_COUNT:
            raise ValueError("is implausibly large")
        return number
    if spec.type == "float":
        try:
            number_f = float(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a number") from None
        if number_f != number_f or number_f < 0:
            raise ValueError("must be a non-negative number")
        return number_f
    if spec.type == "choice":
        if text not in spec.choices:
            raise ValueError(f"unknown value {text!r} (choose one of: {', '.join(spec.choices)})")
        return text
    if len(text) > MAX_TEXT:
        raise ValueError(f"at most {MAX_TEXT} characters")
    return text


def current_extraction(session: Session, study_id: int, kind: str = KIND) -> Extraction | None:
    """The extraction in force for a study and kind (not superseded)."""
    return session.scalars(
        select(Extraction)
        .where(
            Extraction.study_id == study_id,
            Extraction.kind == kind,
            Extraction.superseded.is_(False),
        )
        .order_by(Extraction.id.desc())
        .limit(1)
    ).first()


def extraction_history(session: Session, study_id: int, kind: str = KIND) -> list[Extraction]:
    """All extractions of a study and kind, newest first."""
    return list(
        session.scalars(
            select(Extraction)
            .where(Extraction.study_id == study_id, Extraction.kind == kind)
            .order_by(Extraction.id.desc())
        )
    )


def latest_proposal(
    session: Session, review: Review, record_id: int | None
) -> ExtractionProposal | None:
    """The machine's newest proposal for a record, if any."""
    if record_id is None:
        return None
    return session.scalars(
        select(ExtractionProposal)
        .where(ExtractionProposal.review_id == review.id, ExtractionProposal.record_id == record_id)
        .order_by(ExtractionProposal.id.desc())
        .limit(1)
    ).first()


def study_of(session: Session, review: Review, study_id: int) -> Study:
    """A study of this review; NotFoundError otherwise."""
    study = session.get(Study, study_id)
    if study is None or study.review_id != review.id:
        raise NotFoundError(f"study {study_id} is not in review {review.slug}")
    return study


def confirm_extraction(
    *,
    session: Session,
    review: Review,
    user: User,
    study_id: int,
    values: Mapping[str, Any],
    expected_current_id: int | None = None,
) -> Extraction:
    """Validate and save a reviewer's extraction for a study, superseding the current one.

    ``expected_current_id`` (the extraction the reviewer saw) guards against overwriting a
    confirmation made meanwhile: ConflictError if it differs. InvalidInputError for bad values.
    """
    study = study_of(session, review, study_id)
    # a retracted study still takes data: left out of pooling, it feeds the sensitivity estimate
    if study.status not in ("included", "retracted"):
        raise ConflictError(f"study {study.id} is {study.status}; it cannot take new data")
    data = validate_values(form_fields(review), values, rules_of(review))
    session.execute(update(Study).where(Study.id == study.id).values(status=study.status))
    current = current_extraction(session, study.id)
    if expected_current_id is not None and (current is None or current.id != expected_current_id):
        raise ConflictError("someone confirmed this study's data meanwhile: reload and check")
    proposal = latest_proposal(session, review, study.record_id)
    provenance: dict[str, Any] = {"proposal_id": proposal.id if proposal else None}
    if proposal is not None:
        provenance["extractor_version"] = proposal.extractor_version
        shaped = proposed_values(proposal)
        provenance["corrected"] = sorted(
            k for k, v in data.items() if k in shaped and not _same(shaped[k], v)
        )
    row = Extraction(
        study_id=study.id,
        kind=KIND,
        data=data,
        status="confirmed",
        source="reviewer",
        provenance=provenance,
        user_id=user.id,
        supersedes_id=current.id if current else None,
    )
    if current is not None:
        current.superseded = True
    session.add(row)
    session.flush()
    audit(
        session,
        review,
        user,
        "confirm_extraction",
        row.id,
        study_id=study.id,
        supersedes=row.supersedes_id,
    )
    return row


def _same(proposed: Any, confirmed: Any) -> bool:
    if isinstance(proposed, list) and not isinstance(confirmed, list):
        return len(proposed) == 1 and str(proposed[0]) == str(confirmed)
    if isinstance(proposed, list):
        return bool(proposed == confirmed)
    return str(proposed) == str(confirmed)


def proposed_values(proposal: ExtractionProposal | None) -> dict[str, Any]:
    """The proposal's values in the form's shape: the protocol's field names (``age_range``,
    ``sex_male_female``), durations with their unit ("12 months"), abstained fields absent."""
    if proposal is None:
        return {}
    fields = {
        name: info
        for name, info in (proposal.fields or {}).items()
        if isinstance(info, dict) and info.get("value") is not None
    }
    return form_prefill(fields)


def _fit(spec: FieldSpec, value: Any) -> tuple[Any, str | None]:
    """A proposed value made to agree with the field's type, or None with why not."""
    if value is None:
        return None, None
    if spec.type == "findings":
        return (value, None) if isinstance(value, list) else (None, "not a list of findings")
    if spec.type == "list":
        items = value if isinstance(value, list) else [value]
        known = [str(v) for v in items if not spec.choices or str(v) in spec.choices]
        return known, None
    if isinstance(value, list):
        if len(value) == 1:
            value = value[0]
        else:
            shown = ", ".join(map(str, value))
            return None, f"several named ({shown}): choose one"
    if spec.type == "choice" and spec.choices and str(value) not in spec.choices:
        match = next((c for c in spec.choices if c.casefold() == str(value).casefold()), None)
        if match is None:
            return None, f"{value} is not one of the choices"
        value = match
    if spec.type in ("int", "float") and isinstance(value, bool | dict):
        return None, "not a number"
    return value, None


def proposal_hints(specs: list[FieldSpec], proposal: ExtractionProposal | None) -> dict[str, str]:
    """Per field, why the proposal was not pre-filled (a list for a single choice …)."""
    values = proposed_values(proposal)
    hints: dict[str, str] = {}
    for spec in specs:
        _value, why = _fit(spec, values.get(spec.name))
        if why:
            hints[spec.name] = why
    return hints


def prefill(
    specs: list[FieldSpec], current: Extraction | None, proposal: ExtractionProposal | None
) -> dict[str, Any]:
    """Form values: the current extraction's, else the proposal's in the field's type (a single
    choice gets one value, a duration keeps its unit, text inputs get text)."""
    proposed = proposed_values(proposal) if current is None else {}
    values: dict[str, Any] = {}
    for spec in specs:
        if current is not None:
            value = current.data.get(spec.name)
        else:
            value, _why = _fit(spec, proposed.get(spec.name))
        if spec.type == "findings":
            values[spec.name] = [dict(row) for row in value or [] if isinstance(row, Mapping)]
        elif spec.type == "list":
            values[spec.name] = (
                list(value or []) if isinstance(value, list) else ([value] if value else [])
            )
        else:
            values[spec.name] = "" if value is None else _text(value)
    return values


def _text(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
