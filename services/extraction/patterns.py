"""Cue words the count reader looks for (run on the normalised text: numbers as digits).

Each pattern names one role feature of a segment (a clause-like piece of a sentence): what its
numbers count, whether it reports the outcome, a category of it, a negation, a clinical outcome,
an exclusion, a stage of the sample (enrolled → imaged → analysed), background or purpose.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_I = re.IGNORECASE

PATIENT_NOUNS = (
    r"patients?|cases?|subjects?|participants?|individuals?|people|persons?|adults?|adolescents?"
    r"|children|volunteers?|workers?|athletes?|men|women|males?|females?"
)
HERNIATION_NOUNS = (
    r"herniations?|herniated\s+discs?|discs?|disks?|fragments?|levels?|lesions?|masse?s?"
    r"|extrusions?|protrusions?|sequestrations?|herniated\s+masse?s?"
)
ANIMAL_NOUNS = r"rabbits?|rats?|mice|dogs?|pigs?|sheep|animals?|goats?"
OTHER_NOUNS = r"studies|articles|publications|trials|papers|records|scans|images|reports"
NOUN = re.compile(
    rf"^\s*(?:(?!(?:the|a|an|it|they|them|these|of|in|were|was|had|with|and|or|who|whom)\b)"
    rf"[a-z][a-z-]*\s+){{0,3}}?({PATIENT_NOUNS}|{HERNIATION_NOUNS}|{ANIMAL_NOUNS}"
    rf"|{OTHER_NOUNS})\b",
    _I,
)
PATIENT_KIND = re.compile(rf"^(?:{PATIENT_NOUNS})$", _I)
HERNIATION_KIND = re.compile(rf"^(?:{HERNIATION_NOUNS})$", _I)

# what follows a number that makes it a measure, not a count
UNIT_AFTER = re.compile(
    r"^\s*(?:%|percent|±|\+/-|-?\s*(?:years?|yrs?|months?|mo\b|weeks?|wks?|days?|hours?|h\b|mm3?|cm3?|ml"
    r"|mg|kg|points?|°|degrees?|times|x\b|-year|-month|-week|-day|T\b|tesla|mm²|cm²))",
    _I,
)
RANGE_TO_UNIT = re.compile(
    r"^\s*(?:to|-|–|and|or)\s*\d+(?:\.\d+)?\s*(?:%|years?|months?|weeks?|days?|mm|cm)", _I
)
BEFORE_NOT_COUNT = re.compile(
    r"(?:\b[LSCT]|\bgrade|\btype|\bModic|\bstage|\bclass|\bgroup|\bversion|\bkappa|±|\+/-|\bp\s*[<=>]"
    r"|\bscore\s+(?:of\s+)?|\bVAS\s+(?:of\s+)?|\blevel|\bday|\bweek|\bmonth|\byear|\bage[sd]?|\bfigure"
    r"|\btable|\bphase)\s*[-=]?\s*$",
    _I,
)
YEAR_BEFORE = re.compile(
    r"(?:\b(?:in|since|between|from|to|until|of|during|and|by|before|after)\s+|[(,]\s*|-)$", _I
)

OUTCOME_STRONG = re.compile(r"resor|reabsor|regress|shr[iau]nk|absorb", _I)
COMPLETE = re.compile(
    r"\b(?:complete(?:ly)?(?!\w)|totally|total\s+(?:resorption|regression|resolution|disappearance)"
    r"|full(?:y)?(?!\w)|disappear\w*|no\s+longer\s+visible|vanish\w*)",
    _I,
)
PARTIAL = re.compile(
    r"\b(?:partial(?:ly)?|partly|incomplete(?:ly)?|marked(?:ly)?|minor|substantial(?:ly)?|moderate"
    r"|slight(?:ly)?|smaller|decreas\w*|reduc\w*|shr[iau]nk\w*|(?:volume|size)\s+loss"
    r"|lost\s+(?:volume|size)|loss\s+of\s+(?:volume|size))",
    _I,
)
NEGATIVE = re.compile(
    r"\b(?:no\s+(?:obvious\s+|significant\s+|visible\s+)?(?:change|regression|resorption|reduction"
    r"|resolution|decrease|shrinkage|disappearance|reabsorption)|unchanged|not\s+(?:\w+\s+)?change"
    r"|stable|absent|remained|without\s+(?:any\s+)?(?:change|regression|resorption|reduction)"
    r"|non-?\s?(?:resorption|regression|resorbed|regressed)|did\s+not|had\s+not|was\s+not\s+seen"
    r"|were\s+not|not\s+(?:regress|resorb|shr[iau]nk|reduc|decreas)\w*|no\s+resorption"
    r"|the\s+same\b|same\s+size|not\s+at\s+all|not\s+resorbed|not\s+regressed)",
    _I,
)
NOT_HERNIA = re.compile(
    r"\b(?:dural|sac|canal|foramen|foraminal|space|score|pain|VAS|ODI|JOA|compromise|occlusion"
    r"|height)\b",
    _I,
)
ENLARGED = re.compile(r"\b(?:enlarg\w*|increased|progress\w*|larger|grew|worsen\w*)", _I)
THRESHOLD = re.compile(
    r"(?:exceed\w*|more\s+than|over|above|greater\s+than|at\s+least|>|≥|by\s+more\s+than)\s*\d", _I
)
CLINICAL = re.compile(
    r"\b(?:pain|symptoms?|sciatica|complaints?|VAS|ODI|JOA|disability|numbness|weakness|deficits?"
    r"|radiculopathy|relief|recovery|recovered|improv\w*|satisf\w*|function|walking|paresis"
    r"|cauda|motor|reherniation|recurren\w*)\b",
    _I,
)
CLINICAL_CHANGE = re.compile(
    r"\b(?:improv\w*|relie\w*|recover\w*|resolv\w*|disappear\w*|decreas\w*|reduc\w*|fell|better"
    r"|worse\w*|persist\w*|free\s+of|satisf\w*|remission|reported)",
    _I,
)
HERNIATION_WORDS = re.compile(
    r"herniat|\bdiscs?\b|\bdisks?\b|fragment|\bmass\b|nucleus|\bHNP\b|\bLDH\b|size|volume|area"
    r"|protrusion|extrusion|sequest|MRI|imaging|scan",
    _I,
)
EXCLUDED = re.compile(
    r"\b(?:lost|withdr[ae]w\w*|dropped|excluded|died|declined|refused|underwent\s+(?:\w+\s+)?"
    r"(?:surgery|discectomy|microdiscectomy|operation|sequestrectomy|decompression|fusion)"
    r"|operated|required\s+surgery|had\s+surgery|needed\s+surgery|surgical(?:ly)?\s+treated"
    r"|were\s+treated\s+surgically|discectomy|did\s+not\s+(?:have|undergo|attend))\b",
    _I,
)
SEX = re.compile(r"\b(?:men|women|males?|females?|boys|girls)\b", _I)
BACKGROUND = re.compile(
    r"\b(?:have\s+been\s+reported|has\s+been\s+reported|been\s+reported|earlier\s+stud\w*"
    r"|previous(?:ly)?\s+(?:stud\w*|report\w*|published)|literature|in\s+some\s+series"
    r"|since\s+\d{4}|published\s+series|series\s+report|up\s+to\s+\d|range[sd]?\s+from"
    r"|et\s+al|colleagues|described\s+by|reported\s+by)\b",
    _I,
)
PURPOSE = re.compile(
    r"\b(?:to\s+(?:assess|determine|evaluate|investigate|see|examine|test|clarify|describe)"
    r"|whether|aim\w*|purpose|objective|until|defined\s+as|was\s+recorded|were\s+recorded"
    r"|is\s+possible|may|might|could|can|will|would|unknown|if)\b",
    _I,
)
MEASURE_NEAR = re.compile(
    r"\bby\s+(?:a\s+mean\s+of\s+|more\s+than\s+|about\s+|approximately\s+)?\d+(?:\.\d+)?\s*%"
    r"|\d+(?:\.\d+)?\s*%\s+(?:mean\s+)?(?:reduction|decrease|resorption|regression|loss|shrinkage)"
    r"|(?:reduction|decrease|resorption|regression|shrinkage)\s+(?:rate\s+)?(?:of|was|averaged|by)"
    r"\s+\d|\bfrom\s+\d+(?:\.\d+)?\s*%?\s*to\s+\d|\bmean\b|\baverage\w*|\bmedian\b|±|\bratio\b"
    r"|\brate\b",
    _I,
)
SUBSET = re.compile(
    r"\b(?:among|of|in)\s+(?:the|these|those)\s+\d+\s+(?:\w+\s+){0,2}?(?:whose|who|that|in\s+whom"
    r"|with)\b",
    _I,
)
RESPECTIVELY = re.compile(r"\brespectively\b", _I)
TIMEPOINT = re.compile(
    r"\b(?:at|after|by|within)\s+(\d+(?:\.\d+)?)\s*-?\s*(months?|years?|weeks?|days?)\b", _I
)

# stages of the sample: 0 screened/registry, 1 enrolled/included, 2 imaged/analysed
STAGE2 = re.compile(
    r"\b(?:analy[sz]ed|analy[sz]is|available|completed|remaining|leaving|left|formed\s+the"
    r"|evaluable|re-?examined|re-?imaged|re-?evaluated|re-?scanned|imaged|follow-up\s+(?:MRI|imaging|scan)"
    r"|(?:had|underwent|with)\s+(?:a\s+|the\s+)?(?:[\w-]+\s+){0,2}?(?:MRI|MR|scans?|imaging|examinations?)"
    r"|(?:second|repeat\w*|repeated|control|follow-up|serial|two|2|both)\s+(?:MRI|MR|imaging|scans?"
    r"|examinations?|magnetic)|MRI\s+(?:follow-up|was\s+(?:repeated|available))|repeated\s+(?:MRI"
    r"|imaging)|we\s+repeated|had\s+(?:MRI|imaging)|followed\s+(?:up\s+)?(?:with|by)\s+(?:MRI|MR"
    r"|magnetic|imaging|serial|repeat))",
    _I,
)
STAGE1 = re.compile(
    r"\b(?:included|enrolled|recruited|studied|reviewed|followed|investigated|comprised|involved"
    r"|treated|received|managed|given|allocated|assigned|randomi[sz]ed|examined|evaluated|assessed"
    r"|participated|series|cohort|a\s+total\s+of|in\s+total|consecutive|we\s+(?:studied|followed"
    r"|included|enrolled|analysed|analyzed|reviewed))\b|\b[nN]\s*=",
    _I,
)
STAGE0 = re.compile(
    r"\b(?:screened|registry|database|attended|admitted|identified|referred|eligible|assessed\s+for"
    r"\s+eligibility|visited|presented)\b",
    _I,
)
COUNT_LEAD = re.compile(r"^\W*(?:of|in|among)\s+(?:the\s+|these\s+|all\s+)?$", _I)


def outcome_regex(terms: Iterable[str]) -> re.Pattern[str]:
    """One pattern matching any outcome term (and its inflections)."""
    alternatives = sorted({re.escape(t.strip()) for t in terms if t.strip()}, key=len, reverse=True)
    return re.compile(rf"\b(?:{'|'.join(alternatives)})\w*", re.IGNORECASE)
