"""The row checker behind ``ledger verify``: pure, no I/O, so it checks rows from anywhere, memory too.

A log is checked in position ranges, each on its own (``check_range``), and the ranges are joined at their
borders (``join``): the ``prev_hash`` of a range's first row must equal the hash of the previous range's
last row. Checking a log as one range and as many gives the same first break, position and reason.

Each row is checked in a fixed order, which is what makes the join exact: its position, its ``prev_hash``,
its hash over the canonical bytes, that the bytes are a ledger document in RFC 8785 form, and that every
column a query filters on says what the hashed document says.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import msgspec

from ledger.domain.canonical import canonicalize, format_number
from ledger.domain.errors import ValidationFailed, VerificationBreak
from ledger.domain.fields import parse_rfc3339
from ledger.domain.hashing import GENESIS_HASH, chain_hash, leaf_hash
from ledger.domain.stored import format_time
from ledger.domain.tree_verification import (
    RangeTiles,
    StoredTree,
    TreeFold,
    TreePiece,
    check_leaves,
    compare_tree,
)


class StoredRow(NamedTuple):
    """One row of ``ledger_events`` as verification reads it: binary COPY, converting nothing that could fail.

    Text columns are their UTF-8 bytes; ``event_time`` and ``recorded_at`` are what PostgreSQL stores for a
    timestamptz, microseconds since 2000-01-01 UTC (any value PostgreSQL holds, even one no Python
    ``datetime`` can: 0001-01-01T00:00:00+14:00 is in year 0 in UTC).
    """

    log: bytes
    position: int
    event_id: bytes
    type: bytes
    tenant: bytes
    source: bytes
    subject: bytes | None
    actor: bytes
    event_time: int
    recorded_at: int
    prev_hash: bytes
    hash: bytes
    canonical: bytes


_CLAIMED = StoredRow._fields[:10]  # the columns derived from the hashed document
_INSTANTS = ("event_time", "recorded_at")
_PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def pg_microseconds(value: datetime) -> int:
    """An aware ``value`` as PostgreSQL stores a timestamptz: microseconds since 2000-01-01 UTC.

    Subtracting aware datetimes is arithmetic on their fields and offsets, so it cannot overflow where a
    conversion to UTC would (0001-01-01T00:00:00+14:00).
    """
    if value.utcoffset() is None:
        msg = "a time without an offset names no instant"
        raise ValueError(msg)
    return (value - _PG_EPOCH) // _MICROSECOND


@functools.lru_cache(maxsize=1 << 16)
def _instant(text: str) -> int:
    """``pg_microseconds`` of an RFC 3339 text, remembered: a batch shares one ``recorded_at``."""
    return pg_microseconds(parse_rfc3339(text))


def describe_instant(microseconds: int) -> str:
    """A stored instant for a person: RFC 3339 in UTC when a ``datetime`` can hold it, else the raw count."""
    try:
        return format_time(_PG_EPOCH + microseconds * _MICROSECOND)
    except OverflowError:
        return f"{microseconds} µs from 2000-01-01T00:00:00Z"


@dataclass
class LogResult:
    """The outcome for one log."""

    log: str
    checked: int = 0
    head_size: int | None = None
    head_hash: bytes | None = None
    first_break: VerificationBreak | None = None
    tree_size: int | None = None
    """Leaves of the recomputed Merkle tree: the rows that verified (None: no tree was checked)."""
    roots: dict[int, bytes] = field(default_factory=dict)
    """Recomputed roots, by tree size: at ``tree_size`` and at every checkpoint size it reaches."""

    @property
    def intact(self) -> bool:
        """True when no break was found."""
        return self.first_break is None


@dataclass(frozen=True)
class CheckpointClaim:
    """What a signed checkpoint (already opened: its signature verified) says: ``log`` had ``root`` at
    ``size``; ``source`` names where it was found (a stored checkpoint, a file)."""

    log: str
    size: int
    root: bytes
    source: str


@dataclass(frozen=True)
class CheckpointProblem:
    """A checkpoint the ledger does not agree with, or one that does not open (``log`` None when its
    log is not known)."""

    log: str | None
    size: int | None
    source: str
    reason: str


@dataclass
class VerificationReport:
    """Every log checked, and the first break in each; the checkpoints checked, and their problems."""

    logs: list[LogResult] = field(default_factory=list)
    checkpoints_checked: int = 0
    checkpoint_problems: list[CheckpointProblem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when every log verifies and every checkpoint agrees with it."""
        return all(r.intact for r in self.logs) and not self.checkpoint_problems

    @property
    def breaks(self) -> list[VerificationBreak]:
        """The first break of each broken log."""
        return [r.first_break for r in self.logs if r.first_break is not None]

    @property
    def checked(self) -> int:
        """How many events were re-hashed."""
        return sum(r.checked for r in self.logs)


@dataclass(frozen=True)
class Segment:
    """What checking the rows of one position range, beginning at ``start``, found.

    ``first_prev`` is the ``prev_hash`` of the row at ``start`` (None when that row is missing), which
    ``join`` compares with the hash the previous range ended on; ``next_expected`` is the position after
    the last row that verified.
    """

    start: int
    checked: int
    first_position: int | None
    first_prev: bytes | None
    last_hash: bytes | None
    next_expected: int
    first_break: VerificationBreak | None = None
    tree: TreePiece | None = None


def check_range(
    log: str, rows: Iterable[Sequence[Any]], start: int, tiles: RangeTiles | None = None
) -> Segment:
    """Check ``rows`` (``StoredRow`` fields, in position order) of one range of ``log``, from ``start``;
    with ``tiles``, also the verified leaves against the stored level-0 tiles (``check_leaves``).

    Stops at the first break. The first row's ``prev_hash`` is taken as given here and checked by ``join``.
    """
    expected, prev, checked = start, b"", 0
    first_position: int | None = None
    first_prev: bytes | None = None
    leaves: list[bytes] | None = None if tiles is None else []

    def segment(problem: VerificationBreak | None = None) -> Segment:
        piece, verified = None, checked
        if tiles is not None and leaves is not None:
            piece, tile_problem = check_leaves(log, start, leaves, tiles)
            if tile_problem is not None:  # it lies before every row that did not verify
                problem, verified = tile_problem, len(leaves)
        return Segment(start, verified, first_position, first_prev, prev or None, expected, problem, piece)

    for row in rows:
        position = row[1]
        if first_position is None:
            first_position = position
        if position != expected:
            return segment(_missing(log, expected, position))
        if expected == start:
            first_prev = prev = row[10]
        elif row[10] != prev:
            return segment(
                VerificationBreak(log, expected, "prev_hash does not equal the hash of the previous event")
            )
        canonical = row[12]
        leaf = leaf_hash(canonical)
        digest = chain_hash(prev, leaf)
        if digest != row[11]:
            reason = "the hash does not match the canonical bytes: the event or its hash was changed"
            return segment(VerificationBreak(log, expected, reason))
        problem = _document_problem(log, expected, row, canonical)
        if problem is not None:
            return segment(problem)
        prev, expected, checked = digest, expected + 1, checked + 1
        if leaves is not None:
            leaves.append(leaf)
    return segment()


def join(
    log: str,
    segments: Iterable[Segment],
    head: tuple[int, bytes] | None,
    tree: StoredTree | None = None,
    sizes: Sequence[int] = (),
) -> LogResult:
    """The verdict on ``log`` from its ranges' segments (any order) and its head ``(size, head_hash)``;
    with ``tree`` (the stored Merkle tree), also the tree rebuilt from the verified leaves, and its roots
    at ``sizes``.

    Equal to checking every row in one pass: the first break by position wins, with the same reason.
    """
    result = LogResult(log, head_size=head[0] if head else None, head_hash=head[1] if head else None)
    fold = None if tree is None else TreeFold(sizes)
    problem = _join_chain(log, segments, head, result, fold)
    if fold is not None and tree is not None:
        tree_problem = compare_tree(log, fold, tree, to_head=problem is None)
        if tree_problem is not None and (problem is None or tree_problem.position < problem.position):
            problem = tree_problem
        result.tree_size = fold.size
        result.roots = fold.roots(fold.levels())
    result.first_break = problem
    return result


def _join_chain(
    log: str,
    segments: Iterable[Segment],
    head: tuple[int, bytes] | None,
    result: LogResult,
    fold: TreeFold | None,
) -> VerificationBreak | None:
    expected, prev = 0, GENESIS_HASH
    for seg in sorted(segments, key=lambda s: s.start):
        if seg.first_position is None:
            continue  # an empty range: a later range, or the head, tells what is missing
        if expected != seg.start:  # the ranges before ended short of this one
            return _missing(log, expected, seg.first_position)
        if seg.first_prev is not None and seg.first_prev != prev:
            return VerificationBreak(
                log, seg.start, "prev_hash does not equal the hash of the previous event"
            )
        result.checked += seg.checked
        if fold is not None and seg.tree is not None:
            fold.add(seg.tree)
        if seg.first_break is not None:
            return seg.first_break
        expected, prev = seg.next_expected, seg.last_hash or prev
    return _head_problem(log, expected, prev, head)


def judge_checkpoints(
    report: VerificationReport, claims: Iterable[CheckpointClaim]
) -> list[CheckpointProblem]:
    """Compare each claim with the root ``report`` recomputed at its size.

    Checkpoints need no consistency proofs between them here: every root compared comes from the one tree
    recomputed from the log's events, so two checkpoints that each equal it at their sizes are consistent
    with each other (RFC 9162 §2.1.4), and one that does not is inconsistent with every one that does.
    """
    by_log = {r.log: r for r in report.logs}
    problems = []
    for claim in sorted(claims, key=lambda c: (c.log, c.size, c.source)):
        result = by_log.get(claim.log)
        reason = _claim_problem(claim, result)
        if reason is not None:
            problems.append(CheckpointProblem(claim.log, claim.size, claim.source, reason))
    return problems


def _claim_problem(claim: CheckpointClaim, result: LogResult | None) -> str | None:
    if result is None or (result.head_size is None and not result.tree_size):
        return (
            f"the log does not exist, but a checkpoint was signed when it held {claim.size} events:"
            " it was deleted or rolled back"
        )
    size = result.head_size if result.head_size is not None else result.tree_size or 0
    if claim.size > size:
        return (
            f"the log holds {size} events, fewer than the {claim.size} this checkpoint was signed at:"
            " it was truncated or rolled back"
        )
    root = result.roots.get(claim.size)
    if root is None:
        at = result.first_break.position if result.first_break else result.tree_size
        return f"not confirmed: the log breaks at position {at}, before the checkpoint's size {claim.size}"
    if root != claim.root:
        return (
            f"the root recomputed from the events at size {claim.size} ({root.hex()}) differs from the"
            f" checkpoint's ({claim.root.hex()}): the log is inconsistent with it, events were rewritten"
        )
    return None


def verify_rows(name: str, rows: Iterable[Sequence[Any]], head: tuple[int, bytes] | None) -> LogResult:
    """Verify all of one log's rows (``StoredRow`` fields, in position order) in one range."""
    return join(name, [check_range(name, rows, 0)], head)


def _missing(log: str, position: int, next_position: int) -> VerificationBreak:
    reason = (
        f"position {position} is missing (the next row is at position {next_position}): a row was deleted"
    )
    return VerificationBreak(log, position, reason)


def _head_problem(
    log: str, rows: int, last: bytes, head: tuple[int, bytes] | None
) -> VerificationBreak | None:
    if head is None:
        return VerificationBreak(log, 0, "the log has events but no head row") if rows else None
    size, head_hash = head
    if size > rows:
        reason = (
            f"the log ends after position {rows - 1} but its head says {size} events: "
            f"{size - rows} row(s) were removed from the tail"
        )
        return VerificationBreak(log, rows, reason, {"head_size": size, "rows": rows})
    if size < rows:
        reason = f"the head says {size} events but the log holds {rows}"
        return VerificationBreak(log, rows, reason, {"head_size": size, "rows": rows})
    if head_hash != last:
        return VerificationBreak(log, max(rows - 1, 0), "the head hash differs from the last event's")
    return None


_decode = msgspec.json.Decoder().decode
_encode_sorted = msgspec.json.Encoder(order="sorted").encode
_NOT_A_DOCUMENT = (
    msgspec.DecodeError, ValueError, KeyError, TypeError, AttributeError, RecursionError, ValidationFailed,
)  # fmt: skip


def _document_problem(
    log: str, position: int, row: Sequence[Any], canonical: bytes
) -> VerificationBreak | None:
    """Whether the bytes are a canonical ledger document whose derived columns match ``row``."""
    try:
        doc, canonical_form = _canonical_document(canonical)
        if not canonical_form:
            return VerificationBreak(log, position, "the stored bytes are not in RFC 8785 canonical form")
        event = doc["event"]
        subject = event.get("subject")
        stored_position = doc["position"]
        if type(stored_position) is not int:
            raise TypeError(stored_position)
        claimed = (
            doc["log"].encode(), stored_position, event["id"].encode(), event["type"].encode(),
            event["tenant"].encode(), event["source"].encode(), None if subject is None else subject.encode(),
            event["actor"].encode(), _instant(event["time"]), _instant(doc["recorded_at"]),
        )  # fmt: skip
    except _NOT_A_DOCUMENT:
        return VerificationBreak(log, position, "the stored bytes are not a ledger document")
    # Every column a query can filter on must say what the hashed document says.
    if claimed == tuple(row[:10]):
        return None
    diffs = {
        name: {"hashed": _shown(name, hashed), "column": _shown(name, column)}
        for name, hashed, column in zip(_CLAIMED, claimed, row, strict=False)
        if hashed != column
    }
    return VerificationBreak(
        log, position, f"columns disagree with the hashed document: {', '.join(diffs)}", diffs
    )


def _shown(column: str, value: object) -> str:
    """A value of a break's details as a person reads it."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if column in _INSTANTS and isinstance(value, int):
        return describe_instant(value)
    return str(value)


# msgspec's sorted encoding is RFC 8785 (see ledger.domain.canonical) except for some floats (100.0, 1e21),
# integers beyond 2^53 that a double cannot carry, and key order outside the BMP. The decoder hands every
# float's text to _jcs_float, so a document whose floats are all written as RFC 8785 writes them is settled
# by one sorted re-encoding; one with a float written otherwise, a run of 16 digits or a key outside the
# BMP goes to the exact encoder.
_OUTSIDE_BMP = re.compile(rb"[\xf0-\xf4]")
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0" * 10)
_SIXTEEN_DIGITS = b"0" * 16


class _FloatNotAsJcs(Exception):
    """A float written otherwise than RFC 8785 writes it."""


def _jcs_float(text: str) -> float:
    value = float(text)
    # Python's repr has the same shortest digits as ECMAScript's where neither uses an exponent; RFC 8785
    # writes an integral double without ".0".
    shortest = repr(value)
    if "e" not in shortest and not shortest.endswith(".0"):
        if shortest == text:
            return value
    else:
        try:
            if format_number(value) == text:
                return value
        except ValidationFailed:  # a literal beyond the double range reads as infinity
            pass
    raise _FloatNotAsJcs(text)


_decode_jcs_floats = msgspec.json.Decoder(float_hook=_jcs_float).decode


def _canonical_document(data: bytes) -> tuple[Any, bool]:
    """The JSON value ``data`` holds, and whether ``data`` are its RFC 8785 bytes (``canonicalize`` exactly).

    Raises ``msgspec.DecodeError`` when ``data`` is not JSON.
    """
    try:
        doc = _decode_jcs_floats(data)
    except _FloatNotAsJcs:
        doc = _decode(data)
    else:
        quick = (
            isinstance(doc, dict | list)  # a bare scalar takes the exact way
            and (data.isascii() or not _OUTSIDE_BMP.search(data))
            and data.translate(_DIGITS_AS_ZERO).find(_SIXTEEN_DIGITS) < 0
        )
        if quick and _encode_sorted(doc) == data:
            return doc, True
    try:
        return doc, canonicalize(doc) == data
    except ValidationFailed:
        return doc, False
