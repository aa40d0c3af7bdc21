"""RFC 8785 canonical encoding: the exact bytes that are hashed."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from ledger.domain.canonical import canonicalize
from ledger.domain.errors import ValidationFailed

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=30,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (10.0, b"10"),
        (1e-7, b"1e-7"),
        (1e21, b"1e+21"),
        (1e20, b"100000000000000000000"),
        (-0.0, b"0"),
        (0.000001, b"0.000001"),
        (123.456, b"123.456"),
        ({"b": 1, "a": [True, None]}, b'{"a":[true,null],"b":1}'),
        ("é\n\u2028", '"é\\n\u2028"'.encode()),
        ({"\u20ac": 1, "\U0001f600": 2, "\ufb33": 3}, '{"\u20ac":1,"\U0001f600":2,"\ufb33":3}'.encode()),
    ],
)
def test_known_vectors_follow_rfc_8785(value: object, expected: bytes) -> None:
    assert canonicalize(value) == expected


@given(json_values)
def test_agrees_with_an_independent_implementation(value: object) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


@given(json_values)
def test_is_stable_under_a_json_round_trip(value: object) -> None:
    once = canonicalize(value)
    assert canonicalize(json.loads(once)) == once


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_every_float_matches_ecmascript_formatting(value: float) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), 2**53 + 1, {"x": object()}, "\ud800"])
def test_values_json_cannot_carry_exactly_are_refused(value: object) -> None:
    with pytest.raises(ValidationFailed):
        canonicalize(value)


@pytest.mark.parametrize(
    "value",
    [
        {"a": b"\x01"},
        {"a": __import__("datetime").datetime(2024, 1, 1, tzinfo=__import__("datetime").UTC)},
        {"a": __import__("decimal").Decimal("1.10")},
        {"a": {"x", "y"}},
        {"a": __import__("uuid").UUID(int=1)},
    ],
)
def test_values_that_are_not_json_types_are_refused_not_encoded(value: object) -> None:
    with pytest.raises(ValidationFailed):
        canonicalize(value)


@given(
    st.dictionaries(
        st.text(max_size=5), st.integers(min_value=2**53, max_value=2**64), min_size=1, max_size=3
    )
)
def test_large_integers_inside_containers_are_kept_only_when_a_double_carries_them(value: dict) -> None:
    try:
        out = canonicalize(value)
    except ValidationFailed:
        return
    assert json.loads(out) == value
