"""The direct-identifier screen: held to a corpus of positive and negative examples, and fast paths that
never hide what the full pattern finds (issue 7 item 13)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.envelope import validate_event
from ledger.domain.errors import ForbiddenIdentifier
from ledger.domain.identifiers import _KINDS, _PATTERN, find_direct_identifier
from ledger.domain.registry import event_type_at
from ledger.synth.project import generate
from tests.factories import example_event

CORPUS: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parents[1] / "assets" / "identifier-corpus.json").read_text(encoding="utf-8")
)
POSITIVES = [(p["text"], p["kind"]) for p in CORPUS["positives"]]
NEGATIVES: list[str] = CORPUS["negatives"]


def test_the_corpus_is_large_enough_to_mean_something() -> None:
    assert len(POSITIVES) >= 40
    assert len(NEGATIVES) >= 40
    assert {kind for _, kind in POSITIVES} == set(_KINDS.values())  # every kind has examples


@pytest.mark.parametrize(("text", "kind"), POSITIVES)
def test_every_positive_is_found_and_named(text: str, kind: str) -> None:
    assert find_direct_identifier(text) == kind


@pytest.mark.parametrize("text", NEGATIVES)
def test_no_negative_is_flagged(text: str) -> None:
    assert find_direct_identifier(text) is None


@pytest.mark.parametrize(
    "text",
    ["ssn 123456789", "Patient: John Smith, DOB 1961-04-12", "DOB 1961-04-12", "SSN:123456789"],
)
def test_the_examples_of_issue_7_are_refused_at_validation(text: str) -> None:
    with pytest.raises(ForbiddenIdentifier) as caught:
        validate_event(example_event("review.submitted", tenant="acme", data_comment=text))
    assert [e.field for e in caught.value.errors] == ["data.comment"]


# Labels, separators and values that build identifiers and near-misses, so generated texts reach every
# alternative of the pattern and every edge of the pre-checks.
_LABELS = [
    "ssn", "SSN", "ss#", "social security", "Soc. Sec. #", "MRN", "medical record no.", "patient", "Patient",
    "patient's name", "pt name", "Name", "name", "dob", "D.O.B.", "date of birth", "birthdate", "born on",
    "Born", "",
]  # fmt: skip
_SEPARATORS = ["", " ", ": ", ":", " = ", " is ", "#", "\n", '"', "; ", "(", " on "]
_VALUES = [
    "123456789", "123 45 6789", "078-05-1120", "000123456", "555-123-4567", "(555) 123-4567", "+1 555.123.4567",
    "A1234567", "pending", "John Smith", "Mary-Jane O'Neil", "SMITH^JOHN", "DOE, JANE", "Left Lower",
    "1961-04-12", "04/12/1961", "19610412", "April 12, 1961", "12 Apr 1961", "1961", "x@y.io", "@y.io",
    "1.2.840.113619.2", "BI-RADS 4", "",
]  # fmt: skip
_pieces = st.one_of(
    st.builds(lambda *parts: "".join(parts), *(st.sampled_from(x) for x in (_LABELS, _SEPARATORS, _VALUES))),
    st.sampled_from([*_SEPARATORS, "a", "Z", "0", "9", "-", ".", 'name"', "model_name"]),
)
texts = st.lists(_pieces, max_size=6).map("".join)


def _kind_by_pattern(text: str) -> str | None:
    match = _PATTERN.search(text.encode())
    return _KINDS[match.lastgroup] if match is not None and match.lastgroup else None


_EVERY_TEMPLATE = [label + sep + value for label in _LABELS for sep in _SEPARATORS for value in _VALUES]


def test_the_pre_checks_and_the_json_scan_agree_with_the_pattern_on_every_template() -> None:
    # Exhaustive over label x separator x value (6,000 texts), alone and as a field of an event's JSON.
    for text in _EVERY_TEMPLATE:
        kind = _kind_by_pattern(text)
        assert find_direct_identifier(text) == kind, text
        encoded = msgspec.json.encode({"comment": text, "model_name": "x"}).decode()
        if kind is not None and "\\" not in encoded:
            assert find_direct_identifier(encoded) is not None, text


@settings(max_examples=500)
@given(texts)
def test_the_cheap_pre_checks_never_hide_a_match(text: str) -> None:
    assert find_direct_identifier(text) == _kind_by_pattern(text)


@settings(max_examples=300)
@given(st.lists(texts, min_size=1, max_size=4))
def test_one_scan_of_the_json_text_finds_whatever_a_field_holds(values: list[str]) -> None:
    # validate_event scans an event's whole JSON text once and walks the fields only on a hit (or an
    # escape): a string that holds an identifier must make the whole text hit too.
    document = {f"field{i}": value for i, value in enumerate(values)}
    text = msgspec.json.encode(document).decode()
    if "\\" in text:
        return  # escapes take the per-field walk
    if any(find_direct_identifier(value) for value in values):
        assert find_direct_identifier(text) is not None


def test_the_synthetic_project_has_no_false_positives() -> None:
    """Every string validation scans in the seeded demo project (20,000 events, seed 7) passes."""
    scanned = 0
    for raw in generate(events=20_000, seed=7):
        event_type = event_type_at(raw["type"], raw.get("schemaversion", 1))
        assert event_type is not None
        sealed = {p for p in event_type.sensitive_paths if p not in event_type.free_text_paths}
        for path, text in _strings(raw):
            if path[:1] == ("data",) and path[1:] in sealed:
                continue
            scanned += 1
            assert find_direct_identifier(text) is None, (path, text)
    assert scanned > 300_000


def _strings(value: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, (*path, k))]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, (*path, "[]"))]
    return []


_AS_TEXT = re.compile(_PATTERN.pattern.decode(), re.ASCII)
_non_ascii = st.sampled_from(["é", "ü", "—", "中", "\u00a0", "\u2028", "🙂", "İ", "K"])  # K: the Kelvin sign


@given(st.lists(st.one_of(_pieces, _non_ascii), max_size=8).map("".join))
def test_scanning_utf_8_bytes_finds_what_scanning_the_text_finds(text: str) -> None:
    as_text = _AS_TEXT.search(text)
    expected = _KINDS[as_text.lastgroup] if as_text is not None and as_text.lastgroup else None
    assert _kind_by_pattern(text) == expected


def test_no_whitespace_run_can_give_back_what_it_took() -> None:
    """Runs of ``\\s*`` side by side try every split of a long stretch of spaces (cubic time: a 4,000-
    character comment after "ssn" took minutes); possessive runs cannot, so matching stays linear."""
    source = _PATTERN.pattern.decode()
    assert re.search(r"\\s[*+](?!\+)", source) is None, "a whitespace run is not possessive"
    assert find_direct_identifier("ssn" + " " * 4000 + "123456789") == "a US Social Security number"
