"""Direct identifiers that must never enter the ledger (HIPAA §164.514(b)(2) safe-harbor kinds we can spot).

One compiled pattern, one pass over the text: every kind is a named alternative, and the name of the
alternative that matched says which kind was found. A text that fails every cheap necessary condition
(an '@', a keyword, the digit shape of a number) is clean without running the pattern at all.

The pattern reads UTF-8 bytes, so an event's JSON text is scanned as it arrived, without decoding it. It
is ASCII throughout: every byte of a non-ASCII character is "not a letter, digit or space" to it, as the
character itself would be to the same pattern in ASCII mode.
``tests/assets/identifier-corpus.json`` holds the positive and negative examples it is held to.
"""

from __future__ import annotations

import re

from ahocorasick_rs import BytesAhoCorasick

SSN = "a US Social Security number"
EMAIL = "an e-mail address"
PHONE = "a phone number"
MRN = "a medical record number"
NAME = "a patient name"
BIRTH_DATE = "a date of birth"

# An SSN as the SSA issues them: never area 000, 666 or 9xx, group 00 or serial 0000.
_SSN_DIGITS = r"(?!000|666|9)\d{3}(?P<sep>[ .-]?)(?!00)\d{2}(?P=sep)(?!0000)\d{4}(?!\d)"
_MONTH = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sept?|oct|nov|dec)[a-z]*\.?"
_DATE = (
    r"(?:\d{4}[-/.]\d{1,2}[-/.]\d{1,2}"  # 1961-04-12
    r"|\d{1,2}[-/.]\d{1,2}[-/.]\d{2}(?:\d{2})?"  # 04/12/1961, 12.04.61
    r"|(?:19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])"  # 19610412 (DICOM DA)
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"  # April 12, 1961
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}})"  # 12 April 1961
)
# A person's name as written after a label: "John Smith", "Mary-Jane O'Neil", "John A. Smith",
# "SMITH, JOHN", DICOM's "SMITH^JOHN". Case matters here (the labels around it ignore case), and a
# capitalised anatomical or clinical word is not a first name.
_WORD = r"[A-Z](?:[a-z]+|'[A-Z][a-z]+)(?:[-'][A-Z]?[a-z]+)?"
_NOT_A_NAME = r"(?!(?:Left|Right|Upper|Lower|Middle|Anterior|Posterior|Bilateral|Prior|No|Not|Unknown)\b)"
_PERSON = (
    rf"(?:{_NOT_A_NAME}{_WORD}(?:\s+[A-Z]\.?)?\s+{_WORD}"
    r"|[A-Z]{2,}(?:[-'][A-Z]+)?(?:,\s*[A-Z]{2,}\b|\^[A-Z][A-Za-z]+))"
)


def _word(first: str, rest: str) -> str:
    """A word starting ``first + rest``, ignoring case, written to open with a literal: Python's engine
    tries every alternative at every position, and one that opens with a literal fails there at once."""
    return rf"(?i:{first})(?<!\w\w)(?i:{rest})"


# A "Name:" label must begin a text or a field in it (one space allowed): after nothing, or after one of
# these. In an event's JSON text a string starts after a quote, so a scan of the whole event sees it too.
_FIELD_START = '\n\r\t"(\\[;,.|'
_NAME_FIELD = rf"(?i:n)(?:(?<![^{_FIELD_START}]\w)|(?<= \w)(?<![^{_FIELD_START}] \w))(?i:ame)\s*:"
# "patient name:" says a name follows, whatever it looks like; "Patient:" or "pt name" only when one does.
_PATIENT_NAME_LABEL = _word("p", r"atient(?:'s)?\s+name\s*[:=]")
_PATIENT_LABEL = _word("p", r"atient(?:'s)?\s*[:=]|(?:atient(?:'s)?|t\.?)\s+name\s*[:=]?")
_SSN_LABEL = _word("s", r"sn|s\#|oc(?:ial|\.)?\s*sec(?:urity|\.)?") + r"(?i:\s*(?:number|num|no\.?|\#))?"
_MRN_LABEL = _word("m", r"rn|edical\s+record(?:\s+(?:number|no\.?|\#))?")
_BIRTH_LABEL = (
    _word("d", r"ob|\.o\.b\.?|ate\s+of\s+birth") + "|" + _word("b", r"irth\s*date|irthday|orn(?:\s+on)?")
)

_KINDS = {
    "ssn": SSN,
    "ssn_labelled": SSN,
    "email": EMAIL,
    "phone": PHONE,
    "mrn": MRN,
    "name_label": NAME,
    "name": NAME,
    "birth_date": BIRTH_DATE,
}


def _possessive(pattern: str) -> str:
    """Every whitespace run made possessive (``\\s*+``, ``\\s++``): several runs side by side would
    otherwise try every way of sharing one long stretch of spaces, which turns a 4,000-character comment
    into minutes of matching. No alternative here needs a run to give back what it took."""
    return re.sub(r"\\s([*+])(?![+?])", r"\\s\1+", pattern)


_PATTERN = re.compile(
    _possessive(
        "|".join(
            [
                r"(?P<ssn>\d(?<!\d\d)\d{2}-\d{2}-\d{4}(?!\d))",
                rf"(?P<ssn_labelled>{_SSN_LABEL}\s*(?i:is)?\s*[:#=]?\s*{_SSN_DIGITS})",
                # The local part is the one character before the '@' (the alternative starts at the '@').
                r"(?P<email>@(?<=[A-Za-z0-9._%+-]@)[A-Za-z0-9.-]+\.[A-Za-z]{2,})",
                r"(?P<phone>(?=[+(\d])(?<![\w.])(?:\+?1[ .-]?)?\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?!\w|\.\d))",
                rf"(?P<mrn>{_MRN_LABEL}\s*[:#=]?\s*(?=[A-Za-z-]*\d)[A-Za-z0-9-]{{4,}})",
                rf"(?P<name_label>{_PATIENT_NAME_LABEL})",
                rf"(?P<name>(?:{_PATIENT_LABEL}|{_NAME_FIELD})\s*{_PERSON})",
                rf"(?P<birth_date>(?:{_BIRTH_LABEL})\s*[:#=-]?\s*(?i:(?:is\s+|on\s+)?{_DATE}))",
            ]
        )
    ).encode()
)

# The cheap necessary condition: one Aho-Corasick pass for every literal some kind cannot match without,
# over the text with digits written 0, letters in lower case and the separators " ." written "-" (so
# that, for instance, every SSN or phone-number shape reads as one of three). "name" followed by a quote
# is never part of a match (a JSON key such as "model_name"), so such occurrences do not count.
_NECESSARY_FORM = bytes.maketrans(
    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ .", b"0000000000abcdefghijklmnopqrstuvwxyz--"
)
_NECESSARY = (
    b"@",
    *(b"ssn", b"ss#", b"soc", b"mrn", b"medical", b"patient", b"dob", b"d-o-b", b"birth", b"born"),
    *(b"000-00-0000", b"000-000-0000", b"000)-000"),
    b"name",
)
_NAME = len(_NECESSARY) - 1
_NECESSARY_SEARCH = BytesAhoCorasick(_NECESSARY)


def _may_match(data: bytes) -> bool:
    for pattern, _, end in _NECESSARY_SEARCH.find_matches_as_indexes(
        data.translate(_NECESSARY_FORM), overlapping=True
    ):
        if pattern != _NAME or data[end : end + 1] != b'"':
            return True
    return False


def find_direct_identifier(text: str | bytes) -> str | None:
    """Name the kind of direct identifier found in ``text``, or ``None`` when there is none."""
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    if not _may_match(data):
        return None
    match = _PATTERN.search(data)
    return _KINDS[match.lastgroup] if match is not None and match.lastgroup else None
