"""Direct identifiers that must never enter the ledger (HIPAA §164.514(b)(2) safe-harbor kinds we can spot)."""

from __future__ import annotations

import re
from collections.abc import Callable

# Digits are ASCII digits: the cheap pre-checks below mirror the patterns exactly only that way.
_ASCII = re.ASCII
_ZERO_DIGITS = str.maketrans("0123456789", "0000000000")
_SEPARATORS = " .-"
# With every digit written 0, these are what an SSN or a phone number must contain.
_NUMBER_SHAPES = (
    "000-00-0000",
    *(f"000{a}000{b}0000" for a in _SEPARATORS for b in _SEPARATORS),
    *(f"000){a}000" for a in _SEPARATORS),
)

Check = Callable[[str, str], bool]  # (text, its lower-case form) -> may the pattern match?


def _has_number_shape(text: str, _lower: str) -> bool:
    zeroed = text.translate(_ZERO_DIGITS)
    return any(shape in zeroed for shape in _NUMBER_SHAPES)


_PATTERNS: tuple[tuple[str, Check, re.Pattern[str]], ...] = (
    ("a US Social Security number", _has_number_shape, re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)", _ASCII)),
    ("an e-mail address", lambda text, _: "@" in text,
     re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    ("a phone number", _has_number_shape,
     re.compile(r"(?<![\w.])(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w|\.\d)", _ASCII)),
    ("a medical record number", lambda _, lower: "mrn" in lower or "medical" in lower,
     re.compile(r"\b(?:MRN|medical\s+record(?:\s+(?:number|no\.?|#))?)\s*[:#=]?\s*[A-Z0-9-]{4,}", re.IGNORECASE)),
    ("a patient name", lambda _, lower: "patient" in lower,
     re.compile(r"\bpatient(?:'s)?\s+name\s*[:=]", re.IGNORECASE)),
)  # fmt: skip


def find_direct_identifier(text: str) -> str | None:
    """Name the kind of direct identifier found in ``text``, or ``None`` when there is none.

    Each pattern runs only when a cheap necessary condition holds (an '@', a keyword, the digit shape of
    a number), since running five regular expressions over every string of every event is slow.
    """
    lower = text.lower()
    for kind, may_match, pattern in _PATTERNS:
        if may_match(text, lower) and pattern.search(text):
            return kind
    return None
