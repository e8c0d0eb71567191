"""Regular expressions shared by the count rules (run on the normalised text, numbers as digits)."""

from __future__ import annotations

import re
from collections.abc import Iterable

NOUN = (
    r"(?:patients?|cases?|subjects?|participants?|herniations?|herniated\s+discs?|discs?"
    r"|individuals?|people|persons?|adolescents?|adults?|volunteers?|fragments?|lesions?"
    r"|herniated\s+masse?s?|masses)"
)
ADJ = r"(?:(?!(?:of|in|and|or|were|was|had|with)\b)[A-Za-z-]+\s+){0,2}"
NUM = r"(\d+(?:\.\d+)?)"
INT = r"(\d+)(?![.,]?\d)"
NOT_UNIT = r"(?!\s*(?:%|years?|yrs?|months?|weeks?|days?|mm|cm|ml|points?|levels?|-year))"

K_OF_N = re.compile(rf"\b{INT}\s+(?:out\s+)?of\s+(?:the\s+|these\s+|all\s+)?{INT}{NOT_UNIT}")
K_SLASH_N = re.compile(r"(?<![\d/.])(\d+)\s*/\s*(\d+)(?![\d/.])")
K_PCT = re.compile(rf"\b{INT}{NOT_UNIT}((?:\s+[A-Za-z-]+){{0,3}})\s*\(\s*{NUM}\s*%")
IN_K = re.compile(
    rf"\bin\s+(?:a\s+total\s+of\s+)?{INT}{NOT_UNIT}(?:\s+{ADJ}{NOUN}|\s+of\s+(?:them|these))?",
    re.IGNORECASE,
)
# Used with .match(text, pos): anchored at the clause start without "^".
LEAD_K = re.compile(
    rf"\W*(?:overall,?\s+|and\s+|but\s+)?(?:the\s+)?{INT}{NOT_UNIT}(?!\s+of\b)", re.IGNORECASE
)
ALL_N = re.compile(rf"\ball\s+(?:the\s+|of\s+the\s+)?{INT}\s+{ADJ}{NOUN}", re.IGNORECASE)
PCT = re.compile(rf"{NUM}\s*%")
THRESHOLD_BEFORE = re.compile(
    r"(?:at least|more than|less than|greater than|over|under|above|below|>|<|≥|≤|by|up to"
    r"|from|to|between|than|and|of at least|ranging)\s*$",
    re.IGNORECASE,
)
COMPLETE_PARTIAL = re.compile(
    rf"\b(?:complete(?:ly)?|total(?:ly)?)\s+in\s+{INT}(?:\s+{ADJ}{NOUN})?\s*(?:,\s*)?(?:and\s+)?"
    rf"(?:partial(?:ly)?|incomplete(?:ly)?)\s+in\s+{INT}"
    rf"|\b(?:partial(?:ly)?)\s+in\s+{INT}(?:\s+{ADJ}{NOUN})?\s*(?:,\s*)?(?:and\s+)?"
    rf"(?:complete(?:ly)?|total(?:ly)?)\s+in\s+{INT}",
    re.IGNORECASE,
)
GROUP_N = re.compile(r"\bgroup\b[^.;()]{0,40}\(\s*n\s*=\s*(\d+)\s*\)", re.IGNORECASE)

TOTAL_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "of-n",
        re.compile(
            rf"\b(?:of|among|amongst)\s+(?:the\s+|these\s+|all\s+)?(?:remaining\s+)?{INT}\s+{ADJ}{NOUN}",
            re.IGNORECASE,
        ),
    ),
    ("n-equals", re.compile(r"\bn\s*=\s*(\d+)")),
    (
        "total-of",
        re.compile(
            rf"\b(?:a\s+total\s+of|in\s+total,?|overall,?)\s+{INT}\s+{ADJ}{NOUN}", re.IGNORECASE
        ),
    ),
    (
        "verb-n",
        re.compile(
            r"\b(?:included|enrolled|studied|reviewed|followed|examined|assessed|evaluated|analy[sz]ed"
            r"|identified|recruited|investigated|report|treated|comprised|involved|describe|present)"
            rf"\s+(?:[a-z]+\s+)?{INT}\s+{ADJ}{NOUN}",
            re.IGNORECASE,
        ),
    ),
    ("lead-n", re.compile(rf"^\W*(?:[A-Z]+:\s*)?(?:the\s+)?{INT}\s+{ADJ}{NOUN}", re.IGNORECASE)),
    (
        "analysed-n",
        re.compile(
            rf"\b{INT}\s+(?:{ADJ}{NOUN}\s+)?(?:had\s+complete|completed|were\s+(?:analy[sz]ed|available"
            r"|evaluable|re-?examined)|had\s+(?:a\s+|two\s+)?(?:second|repeat|follow-up|serial)\s+MRI)",
            re.IGNORECASE,
        ),
    ),
)
ANALYSED_WORDS = re.compile(
    r"analy[sz]\w*|remaining|complete|with two MRI|repeat MRI|follow-up MRI|serial MRI|second MRI"
    r"|re-?examined|two MRI",
    re.IGNORECASE,
)
RECRUITED_WORDS = re.compile(r"recruited|enrolled|randomi[sz]ed|allocated|assigned", re.IGNORECASE)
LOST = re.compile(
    rf"\b{INT}\s+(?:{ADJ}{NOUN}\s+)?(?:were\s+|was\s+)?(?:lost\s+to\s+follow-up|withdrew|dropped\s+out"
    r"|were\s+excluded)",
    re.IGNORECASE,
)
DISTRACTOR = re.compile(
    r"\b(?:males?|females?|men|women|boys|girls|lost|surgery|surgical(?:ly)?|operat\w*|discectomy"
    r"|excluded|withdrew|dropped|died|refused|declined|required|pain|satisf\w*)\b",
    re.IGNORECASE,
)
SUBGROUP = re.compile(
    r"\b(?:group|those\s+with|patients\s+with|whereas|compared\s+with|contained|subligamentous"
    r"|transligamentous|non-contained|respectively)\b",
    re.IGNORECASE,
)
NEGATIVE_CLAUSE = re.compile(
    r"\b(?:no\s+change|unchanged|stable|enlarged|increased|progressed|did\s+not|no\s+regression"
    r"|no\s+resorption|not\s+regress\w*|without)\b",
    re.IGNORECASE,
)
NEGATION_BEFORE = re.compile(
    r"\b(?:no|not|without|never|failed\s+to|absence\s+of)\s+(?:\w+\s+){0,2}$", re.IGNORECASE
)
PAIN_NEAR = re.compile(
    r"\b(?:pain|score|VAS|ODI|Oswestry|symptoms?|disability|function)\b", re.IGNORECASE
)
HERNIATION_WORDS = re.compile(
    r"herniat|\bdiscs?\b|fragment|\bmass\b|nucleus|\bHNP\b|\bLDH\b|\bsize\b|volume|protrusion"
    r"|extrusion|sequest",
    re.IGNORECASE,
)
STRONG_OUTCOME = re.compile(
    r"resor|reabsor|regress|disappear|shr[iau]nk|absorb|no longer visible", re.IGNORECASE
)


def outcome_regex(terms: Iterable[str]) -> re.Pattern[str]:
    """One pattern matching any outcome term (and its inflections)."""
    alternatives = sorted({re.escape(t.strip()) for t in terms if t.strip()}, key=len, reverse=True)
    return re.compile(rf"\b(?:{'|'.join(alternatives)})\w*", re.IGNORECASE)
