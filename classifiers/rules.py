"""Deterministic protocol rules, applied before any model score.

A rule looks only at a record's metadata (a plain mapping with ``title``, ``abstract``,
``languages`` and ``publication_types``) and the protocol's structured criteria. Each decision
says what to do (``exclude`` or ``flag``), why, and which rule decided, so it can be stored and
shown to reviewers. A record with no abstract is flagged for a human, never excluded for that
reason alone. Bad protocol values raise ``ValueError`` naming the field.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

logger = logging.getLogger(__name__)

RULE_LANGUAGE = "language"
RULE_PUBLICATION_TYPE = "publication_type"
RULE_NO_ABSTRACT = "no_abstract"


@dataclass(frozen=True)
class ProtocolRules:
    """The structured inclusion criteria a rule can check.

    ``languages``: allowed ISO 639-2 codes as PubMed writes them (``"eng"``); empty = any.
    ``exclude_publication_types``: PubMed publication types that exclude a record.
    """

    languages: tuple[str, ...] = ()
    exclude_publication_types: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> ProtocolRules:
        """Build from a protocol section, e.g. ``{"languages": ["eng"], ...}``."""
        return cls(
            languages=_strings(data.get("languages", ()), "languages"),
            exclude_publication_types=_strings(
                data.get("exclude_publication_types", ()), "exclude_publication_types"
            ),
        )


@dataclass(frozen=True)
class RuleDecision:
    """What a rule decided about one record, and why."""

    action: Literal["exclude", "flag"]
    reason: str
    rule_id: str


def _strings(value: Any, field: str) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise ValueError(f"protocol rules: {field} must be a list of strings")
    items = tuple(value)
    if not all(isinstance(v, str) and v.strip() for v in items):
        raise ValueError(f"protocol rules: {field} must contain non-empty strings")
    return tuple(v.strip() for v in items)


def _record_list(record: Mapping[str, Any], key: str) -> list[str]:
    value = record.get(key) or []
    if isinstance(value, str):
        value = [value]
    return [str(v).strip() for v in value if str(v).strip()]


def _language_rule(record: Mapping[str, Any], rules: ProtocolRules) -> RuleDecision | None:
    if not rules.languages:
        return None
    languages = _record_list(record, "languages")
    if not languages:
        return None  # unknown language: let the reviewers see it
    allowed = {lang.lower() for lang in rules.languages}
    if any(lang.lower() in allowed for lang in languages):
        return None
    return RuleDecision(
        action="exclude",
        reason=(
            f"language {', '.join(languages)} not in the protocol's languages "
            f"({', '.join(rules.languages)})"
        ),
        rule_id=RULE_LANGUAGE,
    )


def _publication_type_rule(
    record: Mapping[str, Any], rules: ProtocolRules
) -> RuleDecision | None:
    excluded = {t.casefold(): t for t in rules.exclude_publication_types}
    hits = [t for t in _record_list(record, "publication_types") if t.casefold() in excluded]
    if not hits:
        return None
    return RuleDecision(
        action="exclude",
        reason=f"publication type {', '.join(hits)} is excluded by the protocol",
        rule_id=RULE_PUBLICATION_TYPE,
    )


def _abstract_rule(record: Mapping[str, Any]) -> RuleDecision | None:
    abstract = record.get("abstract")
    if isinstance(abstract, str) and abstract.strip():
        return None
    return RuleDecision(
        action="flag",
        reason="no abstract: a reviewer must judge from the title or the full text",
        rule_id=RULE_NO_ABSTRACT,
    )


def apply_rules(
    record: Mapping[str, Any], protocol_rules: ProtocolRules | Mapping[str, Any]
) -> RuleDecision | None:
    """Apply the protocol's rules to one record; None when no rule applies.

    Exclusions (language, then publication type) come first; a record that no rule excludes
    but has no abstract is flagged for a reviewer (and must not be auto-excluded by the model).
    A record with unknown languages is never excluded for its language.
    """
    rules = (
        protocol_rules
        if isinstance(protocol_rules, ProtocolRules)
        else ProtocolRules.from_mapping(protocol_rules)
    )
    for decide in (_language_rule, _publication_type_rule):
        decision = decide(record, rules)
        if decision is not None:
            return decision
    return _abstract_rule(record)
