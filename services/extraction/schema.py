"""The extraction schema: outcome terms and vocabularies, from the protocol's ``[extraction]``.

Nothing here belongs to one review: every vocabulary and phrase comes from the protocol
(:func:`schema_from_mapping` reads its ``[extraction]`` table, shape in :data:`TOML_SHAPE`, and
raises :class:`SchemaError` naming the key to fix); a protocol that gives none gets an empty
vocabulary, and :func:`default_schema` is the empty schema. Phrases are case-insensitive
regular-expression fragments matched as whole words (plain words work as they are; a trailing
plural "s"/"es" is allowed).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from services.extraction.errors import SchemaError

if TYPE_CHECKING:
    from services.protocol import Protocol

TOML_SHAPE = """\
[extraction]
outcome_terms = ["improvement", "improved", "remission"]  # counts only from sentences naming one
condition_terms = ["knee", "genu"]           # the condition the review is about (optional)
other_conditions = {hip = ["hip", "coxa"]}   # optional: a study naming one more gets no counts
min_confidence = 0.7                         # counts below it are left empty, with the reason
designs = ["Cohort", "RCT", "Case report"]   # labels, in the form's order
design_precedence = ["RCT", "Case report", "Cohort"]  # optional: tried in this order
predictors = ["Age", "Body mass index"]
herniation_types = []                        # each vocabulary is optional (empty when absent)
mechanisms = []

[extraction.phrases]              # optional: a label's phrases (else the label as written)
"Body mass index" = ["body mass index", "\\bBMI\\b"]

[extraction.phrases.designs]      # optional: phrases for the labels of one vocabulary only
"RCT" = ["randomi[sz]ed", "RCT"]
# A vocabulary may instead be a table label = [phrases]: [extraction.predictors] Age = ["age"]
"""

VOCABULARIES = ("designs", "herniation_types", "predictors", "mechanisms")
MIN_CONFIDENCE = 0.7
# A finding's direction: raises the outcome, lowers it, no relation (the protocol's
# ``[evidence] directions`` name them in its words).
DIRECTIONS = ("favours the outcome", "against the outcome", "no association")


@dataclass(frozen=True)
class ExtractionSchema:
    """Vocabularies the rules match against; every mapping is label -> phrases."""

    outcome_terms: tuple[str, ...] = ()
    condition_terms: tuple[str, ...] = ()
    min_confidence: float = MIN_CONFIDENCE
    designs: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    herniation_types: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    predictors: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    mechanisms: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    directions: tuple[str, ...] = DIRECTIONS  # favours, against, none
    # conditions a study may be about instead (name -> phrases): named more than the
    # condition terms, the study gets no counts
    other_conditions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


def default_schema() -> ExtractionSchema:
    """The empty schema: no outcome terms, no vocabularies (a protocol gives them)."""
    return ExtractionSchema()


def _phrases(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise SchemaError(f"[extraction] {key} must be a non-empty list of strings")
    return tuple(value)


def _scoped(extra: Mapping[str, Any], kind: str) -> Mapping[str, Any]:
    """``[extraction.phrases.<kind>]``: phrases for the labels of one vocabulary."""
    scoped = extra.get(kind, {})
    if not isinstance(scoped, Mapping):
        raise SchemaError(f"[extraction.phrases.{kind}] must be a table of label = [phrases]")
    return scoped


def _vocabulary(
    value: Any, kind: str, extra: Mapping[str, Any], order: Any
) -> dict[str, tuple[str, ...]]:
    """Label -> phrases from a list of labels (phrases from ``[extraction.phrases.<kind>]``,
    else ``[extraction.phrases]``, else the label as written) or a table label = [phrases]."""
    if isinstance(value, Mapping):
        vocab = {str(label): _phrases(v, f"{kind}.{label}") for label, v in value.items()}
    else:
        labels = _phrases(value, kind) if value != [] else ()
        scoped = _scoped(extra, kind)
        vocab = {}
        for label in labels:
            if label in scoped:
                vocab[label] = _phrases(scoped[label], f"phrases.{kind}.{label}")
            elif isinstance(extra.get(label), list):
                vocab[label] = _phrases(extra[label], f"phrases.{label}")
            else:
                vocab[label] = (re.escape(label),)
    if order is None:
        return vocab
    ranked = _phrases(order, "design_precedence")
    unknown = [label for label in ranked if label not in vocab]
    if unknown:
        raise SchemaError(f"[extraction] design_precedence names {unknown[0]!r}, not in designs")
    rank = {label: ranked.index(label) if label in ranked else len(ranked) for label in vocab}
    return dict(sorted(vocab.items(), key=lambda item: rank[item[0]]))


def schema_from_mapping(
    section: Mapping[str, Any], directions: Any = None
) -> ExtractionSchema:
    """Build a schema from a protocol's ``[extraction]`` table; an absent vocabulary is empty.

    Each vocabulary is either a list of labels (the protocol's choices) or a table
    ``label = [phrases]``; ``[extraction.phrases]`` (any vocabulary) and
    ``[extraction.phrases.<vocabulary>]`` give a listed label its phrases. Keys this
    service does not use (``fields`` …) are left to the protocol loader. ``directions`` are the
    protocol's ``[evidence] directions`` (favours, against, none).
    """
    extra = section.get("phrases") or {}
    if not isinstance(extra, Mapping):
        raise SchemaError("[extraction.phrases] must be a table of label = [phrases]")
    kwargs: dict[str, Any] = {}
    if "outcome_terms" in section:
        kwargs["outcome_terms"] = _phrases(section["outcome_terms"], "outcome_terms")
    if "condition_terms" in section:
        kwargs["condition_terms"] = _phrases(section["condition_terms"], "condition_terms")
    if "min_confidence" in section:
        value = section["min_confidence"]
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise SchemaError("[extraction] min_confidence must be a number from 0 to 1")
        kwargs["min_confidence"] = float(value)
    others = section.get("other_conditions", {})
    if not isinstance(others, Mapping):
        raise SchemaError("[extraction.other_conditions] must be a table of name = [phrases]")
    kwargs["other_conditions"] = {
        str(name): _phrases(v, f"other_conditions.{name}") for name, v in others.items()
    }
    for kind in VOCABULARIES:
        if kind in section:
            order = section.get("design_precedence") if kind == "designs" else None
            kwargs[kind] = _vocabulary(section[kind], kind, extra, order)
    if directions is not None:
        if len(_phrases(directions, "directions")) != 3:
            raise SchemaError("[evidence] directions must name 3: favours, against, none")
        kwargs["directions"] = tuple(directions)
    return ExtractionSchema(**kwargs)


def schema_of(protocol: Protocol) -> ExtractionSchema:
    """The extraction schema of a loaded protocol (``[extraction]``, ``[evidence] directions``)."""
    return schema_from_mapping(protocol.extraction.model_dump(), protocol.evidence.directions)


def load_schema(protocol_path: Path) -> ExtractionSchema:
    """Read ``[extraction]`` from a protocol TOML file (the empty schema when it is absent)."""
    try:
        data = tomllib.loads(protocol_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SchemaError(f"cannot read protocol {protocol_path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"protocol {protocol_path} is not valid TOML: {exc}") from exc
    section = data.get("extraction", {})
    if not isinstance(section, Mapping):
        raise SchemaError(f"[extraction] in {protocol_path} must be a table")
    evidence = data.get("evidence", {})
    directions = evidence.get("directions") if isinstance(evidence, Mapping) else None
    return schema_from_mapping(section, directions)
