"""Predictor findings proposed from the abstract: which factor, in which direction, with what effect.

Rule id ``rules.predictor_direction``. A sentence that names a factor of the protocol's
predictor vocabulary and relates it to the outcome gives one finding per factor named:

- direction ``no association`` for a negated relation ("was not associated with", "no
  significant difference", "did not predict"), else ``against`` for a relation that
  lowers the outcome ("less likely to resorb", "lower rate of regression", "inhibits"), else
  ``favours`` for one that raises it ("more likely", "higher rate", "predictor of
  resorption", "associated with resorption"); a sentence that names the factor only as
  "predictive factors were A, B and C" gives the factor with no direction (the reviewer says);
- an odds/risk/hazard ratio with its 95% CI and a p-value when the sentence states them.

The first factor of the vocabulary whose phrase matches wins (as :mod:`.vocab` does); the
direction words are the protocol's ``[evidence] directions`` (else neutral ones).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from services.extraction.proposal import FieldProposal
from services.extraction.schema import DIRECTIONS
from services.extraction.text import sentences
from services.extraction.vocab import compile_phrases

FAVOURS, AGAINST, NONE = DIRECTIONS
_OUTCOME = r"(?:resor\w*|reabsor\w*|regress\w*|disappear\w*|shr[iu]nk\w*|absor\w*|resolution)"
_NEGATED = re.compile(
    r"\bnot\s+(?:significantly\s+)?(?:associated|correlated|related|predict\w*|a\s+(?:significant\s+)?predictor)"
    r"|\bno\s+(?:significant\s+|statistically\s+significant\s+)?(?:association|correlation|relationship|relation|difference|effect|influence)"
    r"|\bdid\s+not\s+(?:predict|correlate|differ|influence|affect)|\bnot\s+significant|\bunrelated\b",
    re.IGNORECASE,
)
_AGAINST = re.compile(
    r"\bless\s+(?:likely|often|frequent\w*|probable)|\blower\s+(?:rate|incidence|probability|odds|chance|likelihood|degree)"
    r"|\bdecreased\s+(?:chance|rate|probability|odds|likelihood)|\binhibit\w*|\bimped\w*|\bprevent\w*"
    r"|\bnegatively\s+(?:associated|correlated)|\bassociated\s+with\s+(?:less|lower|slower|poorer|reduced\s+rates?)"
    + r"|\bunlikely\s+to\s+" + _OUTCOME + r"|\bnegative\s+predictor",
    re.IGNORECASE,
)
_FAVOURS = re.compile(
    r"\bmore\s+(?:likely|often|frequent\w*|readily|probable)|\bhigher\s+(?:rate|incidence|probability|odds|chance|likelihood|degree)"
    + r"|\bgreater\s+(?:rate|degree|probability|chance|" + _OUTCOME + r")"
    + r"|\bpositively\s+(?:associated|correlated)"
    + r"|\bassociated\s+with\s+(?:greater|more|higher|faster|earlier|" + _OUTCOME + r")"
    + r"|\bpredict\w*\s+(?:of\s+)?(?:\w+\s+){0,2}" + _OUTCOME
    + r"|\bfavou?r\w*\s+" + _OUTCOME
    + r"|\bpositive\s+predictor|\bpromot\w*|\bfacilitat\w*",
    re.IGNORECASE,
)
_LISTED = re.compile(r"\b(?:predictive|prognostic)\s+factors?\b|\bpredictors?\b", re.IGNORECASE)
_RELATES = re.compile(_OUTCOME, re.IGNORECASE)
_NUM = r"(\d+(?:\.\d+)?)"
_RATIO = re.compile(
    r"\b(OR|RR|HR|odds\s+ratio|risk\s+ratio|relative\s+risk|hazard\s+ratio)\b[\s,:=]*" + _NUM
    + r"\s*[;,(\[]?\s*(?:95\s*%\s*(?:CI|confidence\s+interval)[\s,:=]*)?" + _NUM
    + r"\s*(?:-|–|to|;|,)\s*" + _NUM,
    re.IGNORECASE,
)
_P = re.compile(r"\bp\s*(=|<|≤)\s*(0?\.\d+)", re.IGNORECASE)
_MEASURES = {"or": "OR", "odds ratio": "OR", "rr": "RR", "risk ratio": "RR",
             "relative risk": "RR", "hr": "HR", "hazard ratio": "HR"}


def _direction(sentence: str, labels: Mapping[str, str]) -> str | None:
    if _NEGATED.search(sentence):
        return labels["none"]
    if _AGAINST.search(sentence):
        return labels["against"]
    if _FAVOURS.search(sentence):
        return labels["favours"]
    return None


def _effect(sentence: str) -> dict[str, Any]:
    effect: dict[str, Any] = {"measure": None, "value": None, "ci_low": None, "ci_high": None,
                              "p": None}
    ratio = _RATIO.search(sentence)
    if ratio is not None:
        value, low, high = (float(ratio.group(i)) for i in (2, 3, 4))
        if low <= value <= high:
            measure = _MEASURES[" ".join(ratio.group(1).lower().split())]
            effect.update(measure=measure, value=value, ci_low=low, ci_high=high)
    p = _P.search(sentence)
    if p is not None and p.group(1) == "=":
        effect["p"] = float(p.group(2))
    return effect


def propose_findings(
    abstract: str,
    vocab: Mapping[str, Sequence[str]],
    directions: Sequence[str] = (FAVOURS, AGAINST, NONE),
) -> FieldProposal | None:
    """Predictor findings (factor, direction, effect) stated in the abstract, or None."""
    labels = dict(zip(("favours", "against", "none"), directions, strict=True))
    findings: list[dict[str, Any]] = []
    first: tuple[int, int, str] | None = None
    for start, end in sentences(abstract):
        sentence = abstract[start:end]
        if not _RELATES.search(sentence):
            continue
        direction = _direction(sentence, labels)
        if direction is None and not _LISTED.search(sentence):
            continue
        named = [label for label, phrases in vocab.items()
                 if compile_phrases(phrases).search(sentence)]
        effect = _effect(sentence) if len(named) == 1 else {}
        for factor in named:
            if any(f["factor"] == factor for f in findings):
                continue
            findings.append({"factor": factor, "direction": direction, "measure": None,
                             "value": None, "ci_low": None, "ci_high": None, "p": None, **effect})
            if first is None:
                first = (start, end, sentence)
    if not findings or first is None:
        return None
    stated = sum(f["direction"] is not None for f in findings)
    return FieldProposal(
        findings,
        evidence=first[2],
        confidence=0.6 if stated == len(findings) else 0.4,
        method="rules.predictor_direction",
        start=first[0],
        end=first[1],
    )
