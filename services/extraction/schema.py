"""The extraction schema: outcome terms and vocabularies, from the protocol's ``[extraction]``.

:func:`default_schema` holds sensible defaults for the lumbar disc herniation (LDH) resorption
review, so extraction works without a protocol; :func:`schema_from_mapping` reads the protocol's
``[extraction]`` table (shape in :data:`TOML_SHAPE`) and raises :class:`SchemaError` naming the
key to fix. Phrases are case-insensitive regular-expression fragments matched as whole words
(plain words work as they are; a trailing plural "s"/"es" is allowed).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from services.extraction.errors import SchemaError

TOML_SHAPE = """\
[extraction]
outcome_terms = ["resorption", "regression", "disappearance", "reduction", "shrinkage"]
condition_terms = ["lumbar", "lumbosacral"]  # the spinal region the review is about
min_confidence = 0.7                         # counts below it are left empty, with the reason
designs = ["Prospective", "Retrospective", "RCT", "Cohort", "Case series", "Case report",
           "Cross-sectional", "Review"]             # labels; known ones keep built-in phrases
herniation_types = ["Bulging", "Protrusion", "Extrusion", "Sequestration", "Contained",
                    "Non-contained"]
predictors = ["Size", "Modic change", "Rim enhancement", "PLL disruption"]
mechanisms = ["TNF-α", "VEGF", "MMP-3", "MCP-1", "Macrophage infiltration"]

[extraction.phrases]          # optional: more phrases for any label above
"Rim enhancement" = ["ring-like enhancement"]
"Sacral slope" = ["sacral slope", "\\bSS\\b"]
# A vocabulary may instead be a table label = [phrases]: [extraction.predictors] Size = ["size"]
"""

OUTCOME_TERMS: tuple[str, ...] = (
    "resorption",
    "resorbed",
    "resorb",
    "reabsorption",
    "reabsorbed",
    "regression",
    "regressed",
    "regress",
    "disappearance",
    "disappeared",
    "disappear",
    "reduction",
    "reduced",
    "shrinkage",
    "shrank",
    "shrunk",
    "shrink",
    "decreased in size",
    "decrease in size",
    "diminished",
    "diminish",
    "resolved",
    "resolution",
    "resolved herniation",
    "became smaller",
    "no longer visible",
    "absorbed",
)

# The lumbar review's condition: a study of another spinal region gets no counts.
CONDITION_TERMS: tuple[str, ...] = (
    "lumbar",
    "lumbosacral",
    r"L[1-5]\s*[-/–]\s*(?:L?[1-5]|S1)",
    "sciatica",
    "LDH",
)
MIN_CONFIDENCE = 0.7

DESIGNS: dict[str, tuple[str, ...]] = {
    "RCT": (
        "randomized",
        "randomised",
        "randomly allocated",
        "randomly assigned",
        "allocated randomly",
        "assigned randomly",
        "RCT",
    ),
    "review": (
        "systematic review",
        "meta-analysis",
        "narrative review",
        "this review",
        "literature review",
        "we review the literature",
        "meta-analyses",
        "we searched",
        "commentary",
    ),
    "case report": (
        "case report",
        "we report a",
        "we present a",
        "a case of",
        r"\ba \d+-year-old (?:man|woman|male|female|patient|boy|girl)",
    ),
    "prospective": ("prospective", "prospectively"),
    "retrospective": ("retrospective", "retrospectively"),
    "case series": (
        "case series",
        r"(?:present|report|describe)s?\s+(?:[2-9]|10)\s+(?:\w+\s+)?(?:cases|patients)",
        r"\bcases\s+of\b",
    ),
    "cohort": ("cohort study", "cohort of"),
    "cross-sectional": (r"cross-sectional(?!\s+area)",),
}

HERNIATION_TYPES: dict[str, tuple[str, ...]] = {
    "bulging": ("bulging", "bulge"),
    "protrusion": ("protrusion", "protruded", "protruding"),
    "extrusion": ("extrusion", "extruded"),
    "sequestration": ("sequestration", "sequestrated", "sequestered", "free fragment"),
    "non-contained": ("non-contained", "noncontained", "uncontained", "ruptured"),
    "contained": ("contained",),
}

PREDICTORS: dict[str, tuple[str, ...]] = {
    "size": (
        "size",
        "larger herniation",
        "large herniation",
        "larger",
        "volume",
        "canal compromise",
    ),
    "Modic change": ("Modic",),
    "rim enhancement": (
        "rim enhancement",
        "ring enhancement",
        "peripheral enhancement",
        "bull's-eye",
        "edge enhancement",
        "enhancing rim",
    ),
    "PLL disruption": ("posterior longitudinal ligament", "PLL", "transligamentous"),
    "sequestration": ("sequestration", "sequestrated", "sequestered", "free fragment"),
    "migration": ("migration", "migrated"),
    "T2 signal": ("T2 signal", "high signal intensity", "T2-weighted signal"),
    "symptom duration": ("duration of symptoms", "symptom duration"),
}

MECHANISMS: dict[str, tuple[str, ...]] = {
    "TNF-α": (r"TNF-?\s?(?:α|alpha|a\b)", r"tumou?r necrosis factor-?\s?(?:α|alpha)"),
    "IL-1α": (r"IL-?1\s?(?:α|alpha)", r"interleukin-?1\s?(?:α|alpha)"),
    "IL-1β": (r"IL-?1\s?(?:β|beta)", r"interleukin-?1\s?(?:β|beta)"),
    "IL-4": (r"IL-?4\b", r"interleukin-?4\b"),
    "IL-6": (r"IL-?6\b", r"interleukin-?6\b"),
    "IL-8": (r"IL-?8\b", r"interleukin-?8\b"),
    "IL-10": (r"IL-?10\b", r"interleukin-?10\b"),
    "IL-12": (r"IL-?12\b", r"interleukin-?12\b"),
    "IFN-γ": (r"IFN-?\s?(?:γ|gamma)", r"interferon-?\s?(?:γ|gamma)"),
    "VEGF": (r"VEGF", r"vascular endothelial growth factor"),
    "PDGF": (r"PDGF", r"platelet-derived growth factor"),
    "MMP-1": (r"MMP-?1\b", r"matrix metalloproteinase-?1\b"),
    "MMP-2": (r"MMP-?2\b", r"matrix metalloproteinase-?2\b"),
    "MMP-3": (r"MMP-?3\b", r"matrix metalloproteinase-?3\b", r"stromelysin-?1?"),
    "MMP-7": (r"MMP-?7\b", r"matrix metalloproteinase-?7\b"),
    "MMP-8": (r"MMP-?8\b", r"matrix metalloproteinase-?8\b"),
    "MMP-9": (r"MMP-?9\b", r"matrix metalloproteinase-?9\b"),
    "MCP-1": (r"MCP-?1\b", r"monocyte chemo(?:attractant|tactic) protein-?1\b"),
    "MIP-1α": (r"MIP-?1\s?(?:α|alpha)", r"macrophage inflammatory protein-?1\s?(?:α|alpha)"),
    "PGE2": (r"PGE-?2\b", r"prostaglandin E-?2\b"),
    "TWEAK": (r"TWEAK",),
    "TSLP": (r"TSLP", r"thymic stromal lymphopoietin"),
    "CXCL10": (r"CXCL-?10\b",),
    "CXCL1": (r"CXCL-?1\b",),
    "RANTES": (r"RANTES", r"CCL-?5\b"),
    "midkine": (r"midkine",),
    "macrophage infiltration": (r"macrophages?",),
    "neovascularization": (
        r"neovasculari[sz]\w*",
        r"angiogenesis",
        r"neovessels?",
        r"new blood vessels?",
    ),
}


@dataclass(frozen=True)
class ExtractionSchema:
    """Vocabularies the rules match against; every mapping is label -> phrases."""

    outcome_terms: tuple[str, ...] = OUTCOME_TERMS
    condition_terms: tuple[str, ...] = CONDITION_TERMS
    min_confidence: float = MIN_CONFIDENCE
    designs: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(DESIGNS))
    herniation_types: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(HERNIATION_TYPES)
    )
    predictors: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(PREDICTORS))
    mechanisms: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: dict(MECHANISMS))


def default_schema() -> ExtractionSchema:
    """The built-in schema for the LDH resorption review."""
    return ExtractionSchema()


def _phrases(value: Any, key: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v for v in value):
        raise SchemaError(f"[extraction] {key} must be a non-empty list of strings")
    return tuple(value)


def _key(label: str) -> str:
    return label.casefold().replace("isation", "ization").replace("-", " ").strip()


def _builtin(kind: str) -> dict[str, tuple[str, ...]]:
    defaults = {
        "designs": DESIGNS,
        "herniation_types": HERNIATION_TYPES,
        "predictors": PREDICTORS,
        "mechanisms": MECHANISMS,
    }[kind]
    return {_key(label): phrases for label, phrases in defaults.items()}


def _vocabulary(value: Any, kind: str, extra: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Label -> phrases from a list of labels (built-in phrases for known labels, else the
    label itself, plus any ``[extraction.phrases]``) or from a table label = [phrases]."""
    if isinstance(value, Mapping) and value:
        return {str(label): _phrases(v, f"{kind}.{label}") for label, v in value.items()}
    labels = _phrases(value, kind)
    builtin = _builtin(kind)
    vocab: dict[str, tuple[str, ...]] = {}
    for label in labels:
        phrases = builtin.get(_key(label), (re.escape(label),))
        if label in extra:
            phrases = (*_phrases(extra[label], f"phrases.{label}"), *phrases)
        vocab[label] = phrases
    if kind == "designs":  # most specific first, whatever the protocol's order
        order = list(_builtin(kind))
        rank = {
            label: order.index(_key(label)) if _key(label) in order else len(order)
            for label in vocab
        }
        vocab = dict(sorted(vocab.items(), key=lambda item: rank[item[0]]))
    return vocab


def schema_from_mapping(section: Mapping[str, Any]) -> ExtractionSchema:
    """Build a schema from a protocol's ``[extraction]`` table; absent keys keep the defaults.

    Each vocabulary is either a list of labels (the protocol's choices) or a table
    ``label = [phrases]``; ``[extraction.phrases]`` adds phrases to listed labels. Keys this
    service does not use (``fields`` …) are left to the protocol loader.
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
    for kind in ("designs", "herniation_types", "predictors", "mechanisms"):
        if kind in section:
            kwargs[kind] = _vocabulary(section[kind], kind, extra)
    return ExtractionSchema(**kwargs)


def load_schema(protocol_path: Path) -> ExtractionSchema:
    """Read ``[extraction]`` from a protocol TOML file (defaults when the table is absent)."""
    try:
        data = tomllib.loads(protocol_path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SchemaError(f"cannot read protocol {protocol_path}: {exc.strerror}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise SchemaError(f"protocol {protocol_path} is not valid TOML: {exc}") from exc
    section = data.get("extraction", {})
    if not isinstance(section, Mapping):
        raise SchemaError(f"[extraction] in {protocol_path} must be a table")
    return schema_from_mapping(section)
