"""Pydantic models of the JSON API (request bodies and responses)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)


class SessionOut(BaseModel):
    csrf_token: str
    email: str | None = None
    user_id: int | None = None


class ReviewOut(BaseModel):
    slug: str
    title: str
    role: str
    reviewers_per_record: int


class RecordOut(BaseModel):
    """A record waiting in the queue, as the reviewer sees it."""

    review_record_id: int
    pmid: int
    doi: str | None
    title: str
    abstract: str
    abstract_sections: list[dict[str, Any]]
    journal: str | None
    year: int | None
    publication_types: list[Any]
    languages: list[Any]
    stage: str
    score: float | None
    priority: float
    rule: str | None
    model_version: str | None
    reason: str | None


class ProgressOut(BaseModel):
    stage: str
    done_by_user: int
    left_for_user: int
    queued: int
    decided: int
    estimated_recall: float | None
    expected_relevant_left: float | None
    relevant_left_low: float | None = None
    relevant_left_high: float | None = None
    held_by_others: int = 0


class NextOut(BaseModel):
    record: RecordOut | None
    progress: ProgressOut
    exclusion_reasons: list[str]


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    review_record_id: int
    stage: Literal["title_abstract", "full_text"] = "title_abstract"
    decision: Literal["include", "exclude", "maybe"]
    reason: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=4000)


class ChangeIn(BaseModel):
    """A new decision replacing one of the reviewer's own (same record, same stage)."""

    model_config = ConfigDict(extra="forbid")
    decision: Literal["include", "exclude", "maybe"]
    reason: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=4000)


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    decision: Literal["include", "exclude", "maybe"]
    reason: str | None = Field(default=None, max_length=500)
    note: str | None = Field(default=None, max_length=4000)


class DecisionOut(BaseModel):
    id: int
    review_record_id: int
    stage: str
    decision: str
    reason: str | None
    source: str
    undone: bool
    record_state: str
    record_stage: str
    study_id: int | None


class ConflictDecisionOut(BaseModel):
    reviewer: str
    decision: str
    reason: str | None
    note: str | None


class ConflictOut(BaseModel):
    review_record_id: int
    pmid: int
    title: str
    stage: str
    decisions: list[ConflictDecisionOut]


class AgreementOut(BaseModel):
    stage: str
    reviewer_a: str
    reviewer_b: str
    n: int
    observed: float | None
    kappa: float | None
    table: dict[str, dict[str, int]]


class ExtractionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, Any]
    expected_current_id: int | None = None


class ExtractionOut(BaseModel):
    id: int
    study_id: int
    data: dict[str, Any]
    status: str
    source: str
    user_id: int | None
    supersedes_id: int | None
    superseded: bool
    created_at: dt.datetime


class EstimateOut(BaseModel):
    id: int
    created_at: dt.datetime
    trigger: str
    k: int
    estimate: float | None
    ci_low: float | None
    ci_high: float | None
    pi_low: float | None
    pi_high: float | None
    i2: float | None
    tau2: float | None
