"""The chain verifier, on in-memory rows: a good chain verifies; any single-byte change is caught where it is."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.domain.canonical import canonicalize
from ledger.domain.fields import parse_rfc3339
from ledger.domain.hashing import GENESIS_HASH, chain_hash, leaf_hash
from ledger.domain.stored import stored_document
from ledger.domain.verification import (
    StoredRow,
    check_range,
    describe_instant,
    join,
    pg_microseconds,
    verify_rows,
)

Row = StoredRow


def build_chain(n: int, log: str = "acme", time: str = "2026-01-01T00:00:00Z") -> list[Row]:
    """Rows exactly as the append service writes them, as binary COPY reads them back."""
    rows: list[Row] = []
    prev = GENESIS_HASH
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for position in range(n):
        recorded = start + timedelta(seconds=position)
        event = {"id": f"e{position}", "type": "annotation.created", "tenant": log, "source": "urn:test",
                 "actor": "ann-1", "time": time, "data": {"n": position}}  # fmt: skip
        canonical = canonicalize(stored_document(event, log, position, recorded))
        digest = chain_hash(prev, leaf_hash(canonical))
        rows.append(StoredRow(log.encode(), position, f"e{position}".encode(), b"annotation.created", log.encode(),
                              b"urn:test", None, b"ann-1", pg_microseconds(parse_rfc3339(time)),
                              pg_microseconds(recorded), prev, digest, canonical))  # fmt: skip
        prev = digest
    return rows


def head_of(rows: list[Row]) -> tuple[int, bytes]:
    return len(rows), rows[-1].hash if rows else GENESIS_HASH


def test_an_untouched_chain_verifies() -> None:
    rows = build_chain(20)
    result = verify_rows("acme", iter(rows), head_of(rows))
    assert result.intact
    assert result.checked == 20


def test_an_empty_log_with_a_genesis_head_verifies() -> None:
    assert verify_rows("acme", iter([]), (0, GENESIS_HASH)).intact


@settings(max_examples=300, deadline=None)
@given(n=st.integers(min_value=1, max_value=12), data=st.data())
def test_any_single_byte_change_in_the_canonical_bytes_breaks_at_that_position(
    n: int, data: st.DataObject
) -> None:
    rows = build_chain(n)
    head = head_of(rows)
    target = data.draw(st.integers(min_value=0, max_value=n - 1), label="position")
    canonical = bytearray(rows[target].canonical)
    offset = data.draw(st.integers(min_value=0, max_value=len(canonical) - 1), label="offset")
    canonical[offset] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor")
    rows[target] = rows[target]._replace(canonical=bytes(canonical))

    result = verify_rows("acme", iter(rows), head)

    assert result.first_break is not None
    assert result.first_break.position == target


@settings(max_examples=200, deadline=None)
@given(n=st.integers(min_value=1, max_value=12), data=st.data())
def test_any_single_byte_change_in_a_stored_hash_breaks_at_that_position(n: int, data: st.DataObject) -> None:
    rows = build_chain(n)
    head = head_of(rows)
    target = data.draw(st.integers(min_value=0, max_value=n - 1), label="position")
    column = data.draw(st.sampled_from(["prev_hash", "hash"]), label="column")
    value = bytearray(getattr(rows[target], column))
    value[data.draw(st.integers(min_value=0, max_value=31))] ^= data.draw(
        st.integers(min_value=1, max_value=255)
    )
    rows[target] = rows[target]._replace(**{column: bytes(value)})

    result = verify_rows("acme", iter(rows), head)

    assert result.first_break is not None
    assert result.first_break.position == target


def test_a_missing_row_is_named_by_its_position() -> None:
    rows = build_chain(10)
    head = head_of(rows)
    del rows[4]
    result = verify_rows("acme", iter(rows), head)
    assert result.first_break is not None
    assert result.first_break.position == 4
    assert "missing" in result.first_break.reason


def test_a_truncated_tail_is_caught_against_the_head() -> None:
    rows = build_chain(10)
    head = head_of(rows)
    result = verify_rows("acme", iter(rows[:7]), head)
    assert result.first_break is not None
    assert result.first_break.position == 7
    assert "3 row(s) were removed from the tail" in result.first_break.reason


@pytest.mark.parametrize(
    ("column", "value"),
    [("type", b"review.submitted"), ("actor", b"ann-99"), ("subject", b"other/item"), ("source", b"urn:forged"),
     ("event_time", pg_microseconds(datetime(2020, 1, 1, tzinfo=UTC))), ("event_id", b"e-forged"),
     ("tenant", b"other"), ("recorded_at", pg_microseconds(datetime(2026, 1, 1, 0, 0, 2, 1, tzinfo=UTC)))],
)  # fmt: skip
def test_a_query_column_that_disagrees_with_the_hashed_bytes_is_caught(column: str, value: object) -> None:
    rows = build_chain(5)
    head = head_of(rows)
    rows[2] = rows[2]._replace(**{column: value})  # what GET /v1/events filters on, not the hashed document
    result = verify_rows("acme", iter(rows), head)
    assert result.first_break is not None
    assert result.first_break.position == 2
    assert column in result.first_break.reason


@given(
    event=st.dictionaries(st.text(max_size=8), st.integers() | st.text(max_size=8), max_size=6),
    log=st.text(min_size=1, max_size=20),
    position=st.integers(min_value=0, max_value=2**40),
)
def test_the_append_paths_byte_assembly_equals_canonicalising_the_whole_document(
    event, log, position
) -> None:
    from ledger.domain.stored import format_time, stored_bytes

    recorded = datetime(2028, 2, 29, 23, 59, 59, 999999, tzinfo=UTC)
    event = {k: v for k, v in event.items() if not isinstance(v, int) or abs(v) < 2**53}
    whole = canonicalize(stored_document(event, log, position, recorded))
    assembled = stored_bytes(
        canonicalize(event), canonicalize(log), position, canonicalize(format_time(recorded))
    )
    assert assembled == whole


DAY, HOUR = 86_400 * 10**6, 3_600 * 10**6
DAYS_TO_2000 = date(2000, 1, 1).toordinal()  # PostgreSQL counts from 2000-01-01 UTC


@pytest.mark.parametrize(
    ("text", "microseconds"),
    [
        ("2000-01-01T00:00:00Z", 0),
        ("2000-01-01T00:00:00.000001+00:00", 1),
        ("1999-12-31T23:59:59.999999Z", -1),
        ("2000-01-01T01:00:00+01:00", 0),
        # Year 0 in UTC: no Python datetime holds the instant, PostgreSQL does (and stored it).
        ("0001-01-01T00:00:00+14:00", (1 - DAYS_TO_2000) * DAY - 14 * HOUR),
        (
            "9999-12-31T23:59:59-14:00",
            (date(9999, 12, 31).toordinal() - DAYS_TO_2000 + 1) * DAY - 10**6 + 14 * HOUR,
        ),
    ],
)
def test_instants_count_as_postgresql_stores_them_even_beyond_pythons_range(
    text: str, microseconds: int
) -> None:
    assert pg_microseconds(parse_rfc3339(text)) == microseconds


def test_an_instant_no_datetime_can_hold_is_still_described() -> None:
    assert describe_instant(0) == "2000-01-01T00:00:00.000000Z"
    assert describe_instant(2**63 - 1) == f"{2**63 - 1} µs from 2000-01-01T00:00:00Z"  # PostgreSQL's infinity


def test_an_event_time_beyond_pythons_datetime_range_verifies_and_a_change_to_it_is_caught() -> None:
    """Accepted before times were bounded: in UTC it is year 0, which PostgreSQL holds and Python cannot."""
    rows = build_chain(3, time="0001-01-01T00:00:00+14:00")
    assert verify_rows("acme", iter(rows), head_of(rows)).intact

    rows[1] = rows[1]._replace(event_time=rows[1].event_time + 1)
    result = verify_rows("acme", iter(rows), head_of(rows))
    assert result.first_break is not None
    assert result.first_break.position == 1
    assert (
        result.first_break.details["event_time"]["column"]
        == f"{rows[1].event_time} µs from 2000-01-01T00:00:00Z"
    )


def in_ranges(rows: list[Row], borders: list[int]) -> list:
    """Check ``rows`` as ranges starting at each border (the first 0, the last open) would read them."""
    segments = []
    for i, start in enumerate(borders):
        end = borders[i + 1] if i + 1 < len(borders) else None
        part = [r for r in rows if r.position >= start and (end is None or r.position < end)]
        segments.append(check_range("acme", part, start))
    return segments


def tamper(rows: list[Row], data: st.DataObject) -> None:
    """One change a superuser could make to the rows of a log."""
    kinds = ["byte", "hash", "column", "delete", "delete_run", "swap", "truncate"]
    kind = data.draw(st.sampled_from(kinds), label="kind")
    target = data.draw(st.integers(min_value=0, max_value=len(rows) - 1), label="target")
    row = rows[target]
    if kind == "byte":
        canonical = bytearray(row.canonical)
        canonical[data.draw(st.integers(min_value=0, max_value=len(canonical) - 1))] ^= 1
        rows[target] = row._replace(canonical=bytes(canonical))
    elif kind == "hash":
        column = data.draw(st.sampled_from(["prev_hash", "hash"]))
        rows[target] = row._replace(**{column: bytes(32)})
    elif kind == "column":
        rows[target] = row._replace(actor=b"forged")
    elif kind == "delete":
        del rows[target]
    elif kind == "delete_run":
        del rows[target : target + data.draw(st.integers(min_value=2, max_value=6), label="run")]
    elif kind == "swap":
        other = data.draw(st.integers(min_value=0, max_value=len(rows) - 1), label="other")
        rows[target], rows[other] = (
            row._replace(position=rows[other].position),
            rows[other]._replace(position=row.position),
        )
    else:
        del rows[target:]
    rows.sort(key=lambda r: r.position)  # what ORDER BY position returns


@settings(max_examples=400, deadline=None)
@given(n=st.integers(min_value=1, max_value=14), data=st.data())
def test_checking_a_log_in_ranges_finds_the_same_first_break_as_one_pass(n: int, data: st.DataObject) -> None:
    rows = build_chain(n)
    head = head_of(rows)
    for _ in range(data.draw(st.integers(min_value=0, max_value=3), label="changes")):
        if rows:
            tamper(rows, data)
    cuts = data.draw(st.sets(st.integers(min_value=1, max_value=n + 1), max_size=5), label="cuts")
    borders = [0, *sorted(cuts)]

    whole = verify_rows("acme", rows, head)
    joined = join("acme", in_ranges(rows, borders), head)

    assert (joined.first_break, joined.checked) == (whole.first_break, whole.checked)


def test_a_border_whose_prev_hash_does_not_follow_the_range_before_is_named() -> None:
    rows = build_chain(9)
    rows[6] = rows[6]._replace(prev_hash=bytes(32))  # the first row of the range [6, 9)
    result = join("acme", in_ranges(rows, [0, 3, 6]), head_of(build_chain(9)))
    assert result.first_break is not None
    assert (result.first_break.position, result.checked) == (6, 6)
    assert "prev_hash" in result.first_break.reason


def test_a_range_left_empty_by_deletions_is_named_at_its_first_missing_position() -> None:
    rows = build_chain(9)
    head = head_of(rows)
    del rows[2:7]  # the whole range [3, 6) and its neighbours' edges
    result = join("acme", in_ranges(rows, [0, 3, 6]), head)
    assert result.first_break is not None
    assert result.first_break.position == 2
    assert "the next row is at position 7" in result.first_break.reason


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**60), max_value=2**60)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.sampled_from([1e21, 1e-7, 12.0, -0.0, 1e16, 0.000001, 123456789012345680000.0, 1.5e300, 2**53 + 1])
    | st.text(max_size=6)
    | st.sampled_from(["10:00:00.5Z", "a:1.50,", "\U0001f600", "\ufb01", "\x00\x1f\u2028"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


@settings(max_examples=500, deadline=None)
@given(value=JSON, style=st.sampled_from(["canonical", "sorted", "unsorted", "spaced", "ascii", "python"]))
def test_the_quick_canonical_form_check_agrees_with_the_exact_encoder(value: object, style: str) -> None:
    """Whatever the bytes (canonical, or another encoder's), the verifier's answer is ``canonicalize``'s."""
    import json

    import msgspec

    from ledger.domain.errors import ValidationFailed
    from ledger.domain.verification import _canonical_document

    def exactly(doc: object, data: bytes) -> bool:
        try:
            return canonicalize(doc) == data
        except ValidationFailed:  # e.g. an integer a double cannot carry
            return False

    encoders = {
        "canonical": canonicalize,
        "sorted": msgspec.json.Encoder(order="sorted").encode,
        "unsorted": msgspec.json.encode,
        "spaced": lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False).encode(),
        "ascii": lambda v: json.dumps(v, sort_keys=True, separators=(",", ":")).encode(),
        "python": lambda v: json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(),
    }
    try:
        data = encoders[style](value)
    except ValidationFailed:
        data = encoders["sorted"](value)  # what a forger with another encoder could store

    doc, canonical_form = _canonical_document(data)

    assert doc == msgspec.json.decode(data)
    assert canonical_form == exactly(doc, data)
