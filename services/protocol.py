"""A review's protocol (``reviews/<slug>/protocol.toml``): loaded, validated, typed.

Errors: :class:`ProtocolError` (base) with :class:`UnknownReviewError` for a review folder that does
not exist. Messages name the file and the field to fix.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

if TYPE_CHECKING:
    from services.meta_analysis.moderators import HypothesisSpec

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")


class ProtocolError(Exception):
    """The protocol file is missing, not TOML, or has a bad field."""


class UnknownReviewError(ProtocolError):
    """No ``reviews/<slug>/protocol.toml`` for the review asked for."""


# cron fields: (name, lowest, highest, names allowed in place of numbers)
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day-of-month", 1, 31, ()),
    ("month", 1, 12, ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                      "nov", "dec")),
    ("day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat")),
)
_CRON_PART = re.compile(r"^(\*|[a-z0-9]+(-[a-z0-9]+)?)(/\d+)?$")


def _cron_value(text: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text in names:
        return names.index(text) + (1 if low == 1 else 0)
    if not text.isdigit() or not low <= int(text) <= high:
        raise ValueError(f"{text!r} is not in {low}-{high}")
    return int(text)


def check_cron(expression: str) -> str:
    """The expression if it is a valid 5-field cron; ValueError naming the bad field otherwise."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("cron must have 5 fields: minute hour day-of-month month day-of-week")
    for text, (name, low, high, names) in zip(fields, _CRON_FIELDS, strict=True):
        for part in text.lower().split(","):
            match = _CRON_PART.match(part)
            try:
                if match is None:
                    raise ValueError(f"{part!r} is not a number, range, list or step")
                if match.group(1) != "*":
                    bounds = [_cron_value(v, low, high, names) for v in match.group(1).split("-")]
                    if bounds != sorted(bounds):
                        raise ValueError(f"range {match.group(1)!r} runs backwards")
                if match.group(3) and int(match.group(3)[1:]) == 0:
                    raise ValueError("a step of 0")
            except ValueError as exc:
                raise ValueError(f"cron {expression!r}: {name} field: {exc}") from None
    return expression


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Search(_Strict):
    query: str = Field(min_length=3)
    start_date: dt.date
    overlap_days: int = Field(default=3, ge=0, le=60)

    @property
    def term(self) -> str:
        """The query on one line, as sent to esearch."""
        return " ".join(self.query.split())


class Criteria(_Strict):
    languages: list[str] = Field(default_factory=lambda: ["eng"])
    exclude_publication_types: list[str] = Field(default_factory=list)
    inclusion: list[str] = Field(default_factory=list)
    exclusion: list[str] = Field(default_factory=list)


class Screening(_Strict):
    reviewers_per_record: Literal[1, 2] = 1
    recall_target: float = Field(default=0.95, gt=0, le=1)
    audit_fraction: float = Field(default=0.05, ge=0, le=1)
    exclusion_reasons: list[str] = Field(default_factory=list)
    keywords: list[str] = Field(default_factory=list)


class Outcome(_Strict):
    name: str
    description: str = ""
    events_field: str = Field(min_length=1)  # the extraction field counting the events
    total_field: str = Field(min_length=1)  # and the one counting the sample
    transform: Literal["logit", "PFT", "PAS", "PR"] = "logit"
    method: Literal["REML", "DL", "PM", "ML"] = "REML"
    test: Literal["z", "knha"] = "z"
    headline: dict[str, float] | None = None


class ExtractionField(_Strict):
    name: str
    type: Literal["int", "float", "text", "choice", "list", "findings"]
    label: str
    required: bool = False
    choices_from: str | None = None


class Extraction(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    outcome_terms: list[str] = Field(default_factory=list)
    fields: list[ExtractionField] = Field(default_factory=list)

    @model_validator(mode="after")
    def _fields_consistent(self) -> Extraction:
        seen: set[str] = set()
        for item in self.fields:
            if item.name in seen:
                raise ValueError(f"two extraction fields are named {item.name!r}; rename one")
            seen.add(item.name)
            if item.choices_from is not None and not isinstance(
                (self.model_extra or {}).get(item.choices_from), list
            ):
                raise ValueError(
                    f"field {item.name!r}: choices_from = {item.choices_from!r} names no "
                    f"vocabulary of [extraction] (add {item.choices_from} = [...])"
                )
        return self

    def field_names(self) -> set[str]:
        return {item.name for item in self.fields}

    def vocabulary(self, name: str) -> list[str]:
        """A named vocabulary of the section (designs, predictors, …); empty if absent."""
        value = (self.model_extra or {}).get(name, [])
        return [str(v) for v in value] if isinstance(value, list) else []


class EvidenceVocabulary(_Strict):
    """``[evidence]``: the words of the predictor and mechanism tables.

    ``factor_aliases`` and ``species_aliases`` map a protocol label to the other spellings a
    source uses (the seed prints "Disruption of PLL", "Rat"); a factor no alias matches stays
    as printed and is marked as outside the vocabulary.
    """

    directions: list[str] = Field(
        default_factory=lambda: ["favours the outcome", "against the outcome", "no association"]
    )
    effect_measures: list[str] = Field(default_factory=lambda: ["OR", "RR", "HR", "r", "p"])
    species: list[str] = Field(default_factory=lambda: ["human", "animal", "in vitro"])
    factor_aliases: dict[str, list[str]] = Field(default_factory=dict)
    species_aliases: dict[str, list[str]] = Field(default_factory=dict)


class RobItem(_Strict):
    key: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    text: str = Field(min_length=3)


class RiskOfBias(_Strict):
    """``[risk_of_bias]``: the tool studies are rated with, its items, answers and overall."""

    tool: str = Field(pattern=r"^[a-z0-9_]{1,40}$")
    name: str
    reference: str = ""
    raters_per_study: Literal[1, 2] = 2
    answers: list[str] = Field(default_factory=lambda: ["yes", "no", "unclear", "not applicable"])
    overall: list[str] = Field(default_factory=lambda: ["low", "moderate", "high"])
    items: list[RobItem] = Field(min_length=1)


class Grade(_Strict):
    """``[grade]``: where certainty starts and the numbers that propose each downgrade."""

    start: Literal["high", "moderate", "low"] = "high"
    rob_serious_share: float = Field(default=0.5, gt=0, le=1)
    rob_very_serious_share: float = Field(default=0.8, gt=0, le=1)
    i2_serious: float = Field(default=50.0, ge=0, le=100)
    i2_very_serious: float = Field(default=75.0, ge=0, le=100)
    pi_width_very_serious: float = Field(default=0.5, gt=0, le=1)
    ci_width_serious: float = Field(default=0.2, gt=0, le=1)
    ci_width_very_serious: float = Field(default=0.4, gt=0, le=1)
    egger_p: float = Field(default=0.10, gt=0, lt=1)


class Schedule(_Strict):
    cron: str = "0 3 * * 1"
    timezone: str = "UTC"

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r} (use an IANA name such as Europe/Paris)"
            ) from None
        return value


class Thresholds(_Strict):
    estimate_shift_pp: float = Field(default=2.0, ge=0)
    notify_on_k_change: bool = True
    notify_on_ci_nonoverlap: bool = True
    notify_on_heterogeneity_class_change: bool = True
    notify_on_retraction: bool = True


class Digest(_Strict):
    recipients: list[str] = Field(default_factory=list)
    periodic_no_change: bool = False
    thresholds: Thresholds = Field(default_factory=Thresholds)

    @field_validator("recipients")
    @classmethod
    def _emails(cls, value: list[str]) -> list[str]:
        for address in value:
            if "@" not in address or " " in address.strip():
                raise ValueError(f"not an email address: {address!r}")
        return value


class Hypothesis(_Strict):
    """A claim about subgroups, tested on every update (see services.meta_analysis.moderators)."""

    name: str = Field(min_length=1)
    by: str = Field(min_length=1)
    expect: Literal["greater", "less", "differs", "similar"]
    groups: dict[str, list[str]] = Field(default_factory=dict)
    cut: float | None = None
    min_studies: int = Field(default=2, ge=1)
    alpha: float = Field(default=0.05, gt=0, lt=1)

    def spec(self) -> HypothesisSpec:
        """The engine's plain form of the hypothesis (imported here: the engine loads SciPy)."""
        from services.meta_analysis.moderators import HypothesisSpec

        return HypothesisSpec(**self.model_dump())


class Analysis(_Strict):
    """Moderator analyses of the outcome: subgroup fields, meta-regression fields, hypotheses."""

    subgroups: list[str] = Field(default_factory=list)
    moderators: list[str] = Field(default_factory=list)
    hypotheses: list[Hypothesis] = Field(default_factory=list)


class Protocol(_Strict):
    slug: str
    title: str
    baseline_doi: str | None = None
    search: Search
    criteria: Criteria = Field(default_factory=Criteria)
    screening: Screening = Field(default_factory=Screening)
    outcome: Outcome
    extraction: Extraction = Field(default_factory=Extraction)
    schedule: Schedule = Field(default_factory=Schedule)
    digest: Digest = Field(default_factory=Digest)
    analysis: Analysis = Field(default_factory=Analysis)
    evidence: EvidenceVocabulary = Field(default_factory=EvidenceVocabulary)
    risk_of_bias: RiskOfBias | None = None
    grade: Grade = Field(default_factory=Grade)

    @model_validator(mode="after")
    def _outcome_fields_exist(self) -> Protocol:
        names = self.extraction.field_names()
        if names:
            for key in ("events_field", "total_field"):
                value = getattr(self.outcome, key)
                if value not in names:
                    raise ValueError(
                        f"outcome.{key} = {value!r} names no [[extraction.fields]] entry "
                        f"(known: {', '.join(sorted(names))})"
                    )
        return self

    def digest_hash(self) -> str:
        """A stable hash of the protocol's content (stored with the review)."""
        text = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()


def review_dir(reviews_dir: Path, slug: str) -> Path:
    """The folder of a review; raises UnknownReviewError when absent."""
    if not SLUG.match(slug):
        raise UnknownReviewError(
            f"review name {slug!r} is not valid (lower-case letters, digits, _-)"
        )
    folder = reviews_dir / slug
    if not (folder / "protocol.toml").is_file():
        known = sorted(p.parent.name for p in reviews_dir.glob("*/protocol.toml"))
        raise UnknownReviewError(
            f"unknown review {slug!r}: no {folder / 'protocol.toml'} "
            f"(known reviews: {', '.join(known) or 'none'})"
        )
    return folder


def load_protocol(reviews_dir: Path, slug: str) -> Protocol:
    """Read and validate ``reviews/<slug>/protocol.toml``."""
    path = review_dir(reviews_dir, slug) / "protocol.toml"
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            f"{path}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"
        ) from exc
    return parse_protocol(text, source=str(path), slug=slug)


def stored_protocol(data: dict[str, Any] | None, *, source: str) -> Protocol:
    """The protocol kept with a review in the database, validated; ProtocolError if it is not.

    ``source`` names the copy in the message (e.g. ``review ldh_resorption (database copy)``).
    """
    try:
        return Protocol.model_validate(data or {})
    except ValidationError as exc:
        raise ProtocolError(f"{source}: {_first_error(exc)}; run `living-review init`") from exc


def _first_error(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    message = str(first["msg"]).removeprefix("Value error, ")
    return f"field {where}: {message}"


def parse_protocol(text: str, *, source: str, slug: str | None = None) -> Protocol:
    """Validate protocol TOML text; ``source`` names the file in messages."""
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProtocolError(f"{source} is not valid TOML: {exc}") from exc
    try:
        protocol = Protocol.model_validate(data)
    except ValidationError as exc:
        raise ProtocolError(f"{source}: {_first_error(exc)}") from exc
    if slug is not None and protocol.slug != slug:
        raise ProtocolError(f"{source}: slug = {protocol.slug!r} but the folder is {slug!r}")
    return protocol
