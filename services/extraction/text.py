"""Text helpers for extraction: numbers written as words, sentences and clauses, with offsets.

Rules run on a *normalised* copy of the abstract (number words turned into digits, thousands
separators and "percent" folded) and report spans in the original text through :class:`Normalized`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

_UNITS = {
    "zero": 0,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "thirteen": 13,
    "fourteen": 14,
    "fifteen": 15,
    "sixteen": 16,
    "seventeen": 17,
    "eighteen": 18,
    "nineteen": 19,
}
_TENS = {
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "sixty": 60,
    "seventy": 70,
    "eighty": 80,
    "ninety": 90,
}
_U = "|".join(sorted(_UNITS, key=len, reverse=True))
_T = "|".join(_TENS)
_BELOW_100 = rf"(?:(?:{_T})(?:[- ](?:{_U}))?|(?:{_U}))"
_BELOW_1000 = rf"(?:(?:{_U}|a)[- ]hundred(?:[- ](?:and[- ])?{_BELOW_100})?|{_BELOW_100})"
_WORD_NUMBER = re.compile(
    rf"\b(?:{_BELOW_1000}[- ]thousand(?:[- ](?:and[- ])?{_BELOW_1000})?|{_BELOW_1000})\b",
    re.IGNORECASE,
)
# "1,204", and "1 204" with a thin or no-break space: one number
_THOUSANDS = re.compile(r"(?<=\d)[,\u2009\u202f\u00a0](?=\d{3}(?!\d))")
_MIDDLE_DOT = re.compile(r"(?<=\d)[·\u00b7\u2219](?=\d)")
_SPACES = re.compile(r"[\u00a0\u2009\u202f\u2007\u200a]")
_PERCENT_WORD = re.compile(r"\s?\b(?:percent|per cent)\b", re.IGNORECASE)


def words_to_int(phrase: str) -> int:
    """Value of a number written in words ("forty-two", "One-hundred and forty-three",
    "two thousand and twelve")."""
    total = 0
    current = 0
    for word in re.split(r"[\s-]+", phrase.lower()):
        if word == "and":
            continue
        if word == "a":
            current = 1
        elif word == "hundred":
            current = max(current, 1) * 100
        elif word == "thousand":
            total += max(current, 1) * 1000
            current = 0
        elif word in _TENS:
            current += _TENS[word]
        elif word in _UNITS:
            current += _UNITS[word]
    return total + current


@dataclass(frozen=True)
class Normalized:
    """A normalised copy of a text and the map from its offsets back to the original."""

    original: str
    text: str
    index: tuple[int, ...]  # index[i] = original offset of text[i]; one extra entry at the end

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Original (start, end) of the normalised span [start, end)."""
        return self.index[start], self.index[end]


def normalize(original: str) -> Normalized:
    """Turn number words into digits, drop thousands separators (comma, thin space), read "·"
    as a decimal point, make odd spaces plain, write "percent" as "%"."""
    replacements: list[tuple[int, int, str]] = []
    for match in _WORD_NUMBER.finditer(original):
        replacements.append((match.start(), match.end(), str(words_to_int(match.group()))))
    for match in _THOUSANDS.finditer(original):
        replacements.append((match.start(), match.end(), ""))
    for match in _MIDDLE_DOT.finditer(original):
        replacements.append((match.start(), match.end(), "."))
    for match in _SPACES.finditer(original):
        replacements.append((match.start(), match.end(), " "))
    for match in _PERCENT_WORD.finditer(original):
        replacements.append((match.start(), match.end(), "%"))
    replacements.sort()
    pieces: list[str] = []
    index: list[int] = []
    pos = 0
    for start, end, new in replacements:
        if start < pos:
            continue
        pieces.append(original[pos:start])
        index.extend(range(pos, start))
        pieces.append(new)
        index.extend([start] * len(new))
        pos = end
    pieces.append(original[pos:])
    index.extend(range(pos, len(original)))
    index.append(len(original))
    return Normalized(original, "".join(pieces), tuple(index))


_SENTENCE_END = re.compile(
    r"(?<!\bet al)(?<!\bvs)(?<!\be\.g)(?<!\bi\.e)(?<!\bFig)(?<!\bapprox)(?<!\bno)[.!?]\s+(?=[A-Z0-9(])"
)
_HEADING = re.compile(
    r"\b(?:BACKGROUND|INTRODUCTION|OBJECTIVES?|PURPOSE|AIMS?|STUDY DESIGN|SUMMARY OF BACKGROUND DATA"
    r"|(?:MATERIALS?|PATIENTS|SUBJECTS) AND METHODS|METHODS?|RESULTS|FINDINGS|CONCLUSIONS?"
    r"|Background|Introduction|Objectives?|Purpose|Aims?|Study [Dd]esign|Summary of [Bb]ackground [Dd]ata"
    r"|(?:Materials?|Patients|Subjects) and [Mm]ethods|Methods?|Results|Findings|Conclusions?"
    r"|Case [Dd]escription|Case [Pp]resentation|Case [Rr]eport)\s*:\s"
)


def sentences(text: str) -> list[tuple[int, int]]:
    """(start, end) of each sentence of ``text``; a structured-abstract heading starts one."""
    bounds = [0]
    bounds.extend(m.end() for m in _SENTENCE_END.finditer(text))
    bounds.extend(m.start() for m in _HEADING.finditer(text) if m.start() > 0)
    bounds = sorted(set(bounds))
    bounds.append(len(text))
    spans = []
    for start, end in itertools.pairwise(bounds):
        chunk = text[start:end]
        lead = len(chunk) - len(chunk.lstrip())
        trail = len(chunk.rstrip())
        if trail > lead:
            spans.append((start + lead, start + trail))
    return spans


_CLAUSE_BREAK = re.compile(
    r";|,\s*(?:and\s+|but\s+|whereas\s+|while\s+)?(?=\d)|,\s*(?:whereas|while|but)\s"
    r"|\s(?:and|but|whereas|while)\s+(?=\d)|,\s(?=the\s)"
)


def clauses(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """(start, end) of the clauses of ``text[start:end]``, split before a new count."""
    chunk = blank_parentheses(text[start:end])
    bounds = [start]
    bounds.extend(start + m.end() for m in _CLAUSE_BREAK.finditer(chunk))
    bounds.append(end)
    return [(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def blank_parentheses(text: str) -> str:
    """``text`` with what is inside parentheses replaced by spaces (same length)."""
    out = []
    depth = 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth = max(0, depth - 1)
        elif depth:
            out.append(" ")
            continue
        out.append(char)
    return "".join(out)
