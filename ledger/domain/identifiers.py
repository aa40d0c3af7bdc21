"""Direct identifiers that must never enter the ledger (HIPAA §164.514(b)(2) safe-harbor kinds we can spot)."""

from __future__ import annotations

import re

_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("a US Social Security number", re.compile(r"(?<!\d)\d{3}-\d{2}-\d{4}(?!\d)")),
    ("an e-mail address", re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")),
    (
        "a phone number",
        re.compile(r"(?<![\w.])(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w|\.\d)"),
    ),
    (
        "a medical record number",
        re.compile(
            r"\b(?:MRN|medical\s+record(?:\s+(?:number|no\.?|#))?)\s*[:#=]?\s*[A-Z0-9-]{4,}", re.IGNORECASE
        ),
    ),
    ("a patient name", re.compile(r"\bpatient(?:'s)?\s+name\s*[:=]", re.IGNORECASE)),
)


def find_direct_identifier(text: str) -> str | None:
    """Name the kind of direct identifier found in ``text``, or ``None`` when there is none."""
    for kind, pattern in _PATTERNS:
        if pattern.search(text):
            return kind
    return None
