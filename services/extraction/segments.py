"""Read an abstract into segments and number candidates with their role features.

A *segment* is a clause-like piece of a sentence (split at ``,`` ``;`` ``:`` and at "and",
"but", "whereas", "while" outside parentheses). Every number in it becomes a :class:`Number` with
what it counts (patients, herniations, animals …), whether it is a measure (a percentage of
volume, a duration, a year, a spinal level, a citation), its denominator ("k of N", "k/N",
"(n = N)"), a stated share ("(64.6%)"). The segment itself gets its role: a report of the
outcome (and which category: complete, partial, any, none, enlarged, above a threshold), a
clinical outcome, an exclusion, a subset ("among the 45 whose herniation resorbed"), a stage of
the sample (0 screened, 1 enrolled, 2 imaged/analysed), background or purpose, its section label
and the time point it names. :mod:`services.extraction.sample` scores these features.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field

from services.extraction import patterns as P
from services.extraction.text import Normalized, blank_parentheses, sentences

_NUMBER = re.compile(r"(?<![\w.,])(\d+(?:\.\d+)?)(?![\d])")
_SPLIT = re.compile(r"[;:]|,|\s(?:and|or|but|whereas|while|whilst)\s", re.IGNORECASE)
_SECTION = re.compile(r"^\W*([A-Z][A-Za-z ]{2,30}):\s")
_SECTIONS = {
    "background": "background",
    "introduction": "background",
    "objective": "background",
    "objectives": "background",
    "purpose": "background",
    "aim": "background",
    "aims": "background",
    "summary of background data": "background",
    "study design": "background",
    "methods": "methods",
    "method": "methods",
    "materials and methods": "methods",
    "patients and methods": "methods",
    "subjects and methods": "methods",
    "results": "results",
    "findings": "results",
    "conclusion": "conclusions",
    "conclusions": "conclusions",
}
_MONTHS = {"day": 1 / 30.4, "week": 1 / 4.35, "month": 1.0, "year": 12.0}


@dataclass(frozen=True)
class Number:
    """One number of a segment with what it counts and what it is tied to."""

    value: float
    start: int
    end: int
    measure: bool  # a percentage, duration, size, year, level, score, citation: never a count
    noun: str | None  # the counted noun that follows ("patients", "discs" …)
    in_parens: bool
    of: int | None = None  # denominator: "k of N", "k/N"
    of_span: tuple[int, int] | None = None
    pct: float | None = None  # stated share "(p%)" right after it
    pct_digits: int = 0
    referent: bool = False  # "the 38 patients", "these 52": names a group, does not count one

    @property
    def kind(self) -> str:
        """ "patient", "herniation", "animal", "other" or "" (no noun)."""
        if self.noun is None:
            return ""
        if P.SEX.fullmatch(self.noun):
            return "sex"
        if P.PATIENT_KIND.match(self.noun):
            return "patient"
        if P.HERNIATION_KIND.match(self.noun):
            return "herniation"
        if re.match(P.ANIMAL_NOUNS, self.noun, re.IGNORECASE):
            return "animal"
        return "other"


@dataclass
class Segment:
    """A clause-like piece of a sentence with its role features."""

    start: int
    end: int
    sentence: tuple[int, int]
    sentence_no: int
    section: str
    text: str
    numbers: list[Number] = field(default_factory=list)
    outcome: bool = False  # names the outcome in the herniation sense (not clinical, not a measure)
    mentions: bool = False  # names the outcome at all (also as a measured amount), not clinically
    category: str = ""  # complete | partial | any | none | enlarged | threshold | ""
    clinical: bool = False
    excluded: bool = False
    sex: bool = False
    subset: bool = False
    purpose: bool = False
    background: bool = False
    stage: int = -1
    share: tuple[float, int, int] | None = None  # "68% of the 84": (p, digits, N)
    share_only: tuple[float, int] | None = None  # "in 62.5% of the patients": (p, digits)
    all_of: bool = False  # "in all patients"
    timepoint: float | None = None  # months
    respectively: bool = False  # the sentence pairs its counts "…, respectively"
    contrast: bool = False  # starts after "while", "whereas", "but"

    @property
    def counts(self) -> list[Number]:
        """Numbers that may count something (not measures)."""
        return [n for n in self.numbers if not n.measure and float(n.value).is_integer()]


def _digits(raw: str) -> int:
    return len(raw.split(".")[1]) if "." in raw else 0


def _is_measure(text: str, m: re.Match[str], seg_start: int) -> bool:
    value = float(m.group(1))
    after = text[m.end() : m.end() + 16]
    before = text[max(seg_start, m.start() - 14) : m.start()]
    if "." in m.group(1) or P.UNIT_AFTER.match(after) or P.RANGE_TO_UNIT.match(after):
        return True
    if P.BEFORE_NOT_COUNT.search(before) or re.search(r"[\[–-]\s*$", before[-2:]):
        return True
    if re.match(r"^\s*[\]–-]\s*\d", after) or re.match(r"^\s*\]", after):
        return True
    if 1900 <= value <= 2039 and not P.NOUN.match(after):
        return True
    counted = P.NOUN.match(after) is not None
    return bool(P.YEAR_BEFORE.search(before)) and 1900 <= value <= 2039 and not counted


def _numbers(text: str, s0: int, s1: int) -> list[Number]:
    plain = blank_parentheses(text[s0:s1])
    found: list[Number] = []
    for m in _NUMBER.finditer(text, s0, s1):
        after = text[m.end() : s1]
        noun = P.NOUN.match(after)
        in_parens = plain[m.start() - s0] == " " and text[m.start()] != " "
        before = text[max(s0, m.start() - 12) : m.start()]
        referent = (
            re.search(r"\b(?:the|these|those|our|of|among|amongst)\s+$", before, re.I) is not None
        )
        everyone = re.search(r"\ball\s+(?:the\s+|of\s+the\s+)?$", before, re.I) is not None
        found.append(
            Number(
                value=float(m.group(1)),
                start=m.start(),
                end=m.end(),
                measure=_is_measure(text, m, s0),
                noun=noun.group(1) if noun else None,
                in_parens=in_parens,
                referent=referent and not everyone,
                of=int(float(m.group(1))) if everyone and "." not in m.group(1) else None,
            )
        )
    return _pair(text, found, s1)


_OF = re.compile(
    r"^\s*(?:\(\s*\d+(?:\.\d+)?\s*%\s*\)\s*)?(?:out\s+)?of\s+(?:the\s+|these\s+|all\s+)?$"
)
_SLASH = re.compile(r"^\s*/\s*$")
_PCT_LATER = re.compile(r"^[^\d()]{0,60}\(\s*(\d+(?:\.\d+)?)\s*%\s*\)")
_PCT = re.compile(r"^\s*(?:[A-Za-z-]+\s+){0,3}?\(\s*(\d+(?:\.\d+)?)\s*%")


def _pair(text: str, nums: list[Number], s1: int) -> list[Number]:
    """Tie "k of N", "k/N" and "k (p%)" together; N stays as a number of its own."""
    out = list(nums)
    for i, n in enumerate(nums):
        if n.measure:
            continue
        after = n.end
        for m in [x for x in nums[i + 1 :] if not (x.measure and x.in_parens)][:1]:
            gap = text[n.end : m.start]
            if m.measure or not (_OF.match(gap) or _SLASH.match(gap)):
                continue
            if m.value >= n.value:
                out[i] = _with(out[i], of=int(m.value), of_span=(m.start, m.end))
                after = m.end
        pct = _PCT.match(text[n.end : s1]) or _PCT_LATER.match(text[after:s1])
        if pct:
            out[i] = _with(out[i], pct=float(pct.group(1)), pct_digits=_digits(pct.group(1)))
    return out


def _with(n: Number, **changes: object) -> Number:
    data = {**n.__dict__, **changes}
    return Number(**data)  # type: ignore[arg-type]


def _pieces(text: str, s0: int, s1: int) -> list[tuple[int, int]]:
    plain = blank_parentheses(text[s0:s1])
    bounds = [s0]
    for m in _SPLIT.finditer(plain):
        # keep "1,204"-like and "k of N" groups whole; a comma inside a number was removed already
        bounds.append(s0 + m.end())
    bounds.append(s1)
    return [(a, b) for a, b in itertools.pairwise(bounds) if text[a:b].strip()]


def _role(seg: Segment, outcome: re.Pattern[str], sentence_outcome: bool) -> None:
    t = seg.text
    seg.background = seg.section == "background" or bool(P.BACKGROUND.search(t))
    seg.purpose = bool(P.PURPOSE.search(t))
    seg.clinical = bool(P.CLINICAL.search(t) and P.CLINICAL_CHANGE.search(t))
    seg.excluded = bool(P.EXCLUDED.search(t))
    seg.sex = bool(P.SEX.search(blank_parentheses(t)))
    sub = P.SUBSET.search(t)
    seg.subset = sub is not None and outcome.search(t, sub.end()) is not None
    tp = P.TIMEPOINT.search(t)
    if tp:
        seg.timepoint = float(tp.group(1)) * _MONTHS[tp.group(2).lower().rstrip("s")]
    seg.all_of = (
        re.search(r"\bin\s+all\s+(?:the\s+)?(?:patients|cases|of\s+them)\b", t, re.I) is not None
    )
    named = [m for m in outcome.finditer(t) if not _clinical_term(t, m)]
    terms = [m for m in named if not _measure_term(t, m)]
    seg.mentions = bool(named) and not seg.purpose
    negative = P.NEGATIVE.search(t) is not None
    worded = bool(named) or (
        bool(seg.counts) and (sentence_outcome or P.HERNIATION_WORDS.search(t) is not None)
    )
    if negative and (worded or P.HERNIATION_WORDS.search(t) or seg.counts):
        seg.category = "none"
    elif P.ENLARGED.search(t) and not terms and worded and not P.NOT_HERNIA.search(t):
        seg.category = "enlarged"
    elif terms or (
        (P.PARTIAL.search(t) or P.COMPLETE.search(t))
        and not seg.clinical
        and worded
        and not named  # an outcome word read as a measured amount gives no category
        and not P.NOT_HERNIA.search(t)
    ):
        if P.COMPLETE.search(t):
            seg.category = "complete"
        elif re.search(
            r"\b(?:partial|incomplete|marked|minor|substantial|moderate|slight)", t, re.I
        ):
            seg.category = "partial"
        else:
            seg.category = "any"
        if P.THRESHOLD.search(blank_parentheses(t)):
            seg.category = "threshold"
    seg.outcome = bool(terms) and not negative and not seg.purpose
    if (seg.purpose and seg.category != "none") or seg.excluded:
        seg.category = ""
    if seg.clinical and not terms and seg.category in ("complete", "partial", "any", "threshold"):
        seg.category = ""
    if P.STAGE2.search(t):
        seg.stage = 2
    elif P.STAGE0.search(t):
        seg.stage = 0
    elif P.STAGE1.search(t):
        seg.stage = 1


def _measure_term(text: str, m: re.Match[str]) -> bool:
    """An outcome word that describes a measured amount ("decreased by 42%", "a 61% reduction",
    "the mean reduction rate"), not patients in whom it happened."""
    near = text[max(0, m.start() - 22) : m.end() + 22]
    if not P.MEASURE_NEAR.search(near):
        return False
    counted = (
        re.search(r"\bin\s+\d+\b(?!\s*%)(?!\s*(?:years?|months?|weeks?|days?))", text) is not None
    )
    paired = re.search(r"\b\d+\s*(?:/|of)\s*\d+\b(?!\s*%)", text) is not None
    return not (counted or paired)


def _clinical_term(text: str, m: re.Match[str]) -> bool:
    """An outcome word about symptoms ("sciatica resolved", "reduction in leg pain")."""
    before = text[max(0, m.start() - 40) : m.start()]
    after = text[m.end() : m.end() + 30]
    if re.match(
        r"^\s*(?:of|in)\s+(?:the\s+)?(?:\w+\s+)?(?:pain|symptoms?|sciatica|VAS|ODI|score)",
        after,
        re.I,
    ):
        return True
    clinical = list(P.CLINICAL.finditer(before))
    if not clinical:
        return False
    between = before[clinical[-1].end() :]
    if P.HERNIATION_WORDS.search(between) is not None:
        return False
    return P.OUTCOME_STRONG.search(m.group()) is None or len(between.split()) <= 3


def _share(seg: Segment) -> None:
    only = re.search(
        r"(\d+(?:\.\d+)?)\s*%\s+of\s+(?:the\s+|these\s+|all\s+|our\s+)?(?:them|patients|cases"
        r"|herniations|discs|subjects|participants)\b",
        seg.text,
    )
    if only and not seg.counts:
        seg.share_only = (float(only.group(1)), _digits(only.group(1)))
    m = re.search(r"(\d+(?:\.\d+)?)\s*%\s+of\s+(?:the\s+|these\s+|all\s+)?(\d+)\b", seg.text)
    if m and not P.MEASURE_NEAR.search(
        seg.text[: m.start()].split(",")[-1][-20:].replace(m.group(0), "")
    ):
        seg.share = (float(m.group(1)), _digits(m.group(1)), int(m.group(2)))


def read_segments(nz: Normalized, outcome: re.Pattern[str]) -> list[Segment]:
    """Every segment of the abstract with its numbers and role features, in text order."""
    text = nz.text
    out: list[Segment] = []
    section = ""
    for no, sent in enumerate(sentences(text)):
        head = _SECTION.match(text[sent[0] : sent[1]])
        if head:
            section = _SECTIONS.get(head.group(1).strip().lower(), section)
        sentence_background = P.BACKGROUND.search(text, sent[0], sent[1]) is not None
        sentence_outcome = any(
            not _clinical_term(text[sent[0] : sent[1]], m)
            for m in outcome.finditer(text[sent[0] : sent[1]])
        )
        respectively = P.RESPECTIVELY.search(text, sent[0], sent[1]) is not None
        for a, b in _pieces(text, *sent):
            seg = Segment(a, b, sent, no, section, text[a:b])
            seg.numbers = _numbers(text, a, b)
            _role(seg, outcome, sentence_outcome)
            seg.background = seg.background or sentence_background
            seg.respectively = respectively
            seg.contrast = (
                re.search(r"\b(?:while|whilst|whereas|but)\s*$", text[max(0, a - 9) : a])
                is not None
            )
            _share(seg)
            out.append(seg)
    _inherit(out)
    _parallel_stage(out)
    return out


def _parallel_stage(segs: list[Segment]) -> None:
    """ "We included 103 patients from A and 87 patients from B": the second count is of the
    same stage as the first (a second candidate, not nothing)."""
    for prev, seg in itertools.pairwise(segs):
        if (
            seg.stage < 0
            and prev.stage >= 0
            and prev.sentence_no == seg.sentence_no
            and not seg.category
            and not seg.excluded
            and not seg.sex
            and any(n.kind == "patient" or n.kind == "herniation" for n in seg.counts)
            and any(n.kind for n in prev.counts)
        ):
            seg.stage = prev.stage


def _inherit(segs: list[Segment]) -> None:
    """A segment with counts and no role words of its own ("and in 6 of 22 protrusions") takes
    the outcome role of the sentence's earlier segment."""
    for i, seg in enumerate(segs):
        if seg.category or seg.outcome or not seg.counts or seg.stage >= 0 or seg.excluded:
            continue
        if seg.clinical or seg.sex:
            continue
        for prev in reversed(segs[:i]):
            if prev.sentence_no != seg.sentence_no:
                break
            if prev.purpose and not prev.counts:
                continue
            if prev.subset:
                seg.subset = True
                break
            if prev.category and not prev.clinical:
                threshold = P.THRESHOLD.search(blank_parentheses(seg.text))
                seg.category = "threshold" if threshold else prev.category
                seg.outcome = prev.outcome
                if prev.category == "none" and seg.contrast:
                    seg.category, seg.outcome = "any", True
                seg.background = prev.background
                break
