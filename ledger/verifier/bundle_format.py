"""The evidence bundle format ``ledger-evidence-bundle/v1``: reading it strictly, and the seal over its members.

``bundle.schema.json`` states the same rules as JSON Schema for producers and other implementations; this
module checks them by hand (the verifier imports nothing beyond the standard library and ``cryptography``),
and a little more (base64 in its one canonical spelling, vkeys that parse, notes that parse). A bundle that
breaks a rule is *unusable* (``BundleUnusable``, every problem listed, naming the member); one that reads but
does not verify is reported by ``ledger.verifier.bundle``.

The seal is a signed note by the ledger's Ed25519 checkpoint key over the SHA-256 of each member in
RFC 8785 form, so the members no proof covers (``created_at``, ``scope``, key windows, ``signed_at``) are
attested too, and a changed member is named.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

from ledger.verifier.checkpoint import MAX_TREE_SIZE, Checkpoint, parse_checkpoint
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import (
    COSIGNATURE_ED25519,
    COSIGNATURE_MLDSA44,
    ED25519,
    VerifierKey,
    decode_base64,
    encode_base64,
    parse_vkey,
)
from ledger.verifier.note import Note, parse_note

T = TypeVar("T")

FORMAT = "ledger-evidence-bundle/v1"
#: The members in the order the seal lists them (``format`` is the seal's first line).
SEALED_MEMBERS = ("created_at", "scope", "keys", "witness_keys", "checkpoints", "consistency", "events")
MEMBERS = frozenset({"format", *SEALED_MEMBERS, "seal"})
#: Whole seconds in UTC, one spelling only: what checkpoint timestamps can say, and nothing to normalise.
_TIMESTAMP = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z")
_NAME = re.compile(r"[^\s+]{1,255}")
_ITEM = re.compile(r"[^\s/]{1,255}/[^\s]{1,255}")
_RELEASE = re.compile(r"[^\s@]{1,255}@[^\s]{1,255}")
_MAX_STRING = 8 * 1024 * 1024  # a canonical event is at most a few hundred kB; a note at most 1 MiB


class BundleUnusable(VerifierError):
    """The input is not a bundle this verifier can read; ``problems`` names every member at fault."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


@dataclass(frozen=True)
class BundleKey:
    """A log verifier key and the window in which it signed."""

    key: VerifierKey
    created_at: datetime
    retired_at: datetime | None


@dataclass(frozen=True)
class BundleCheckpoint:
    """A cited checkpoint: its log, its signed note exactly as signed, and the time it was signed."""

    log: str
    note: Note
    checkpoint: Checkpoint
    signed_at: datetime

    @property
    def name(self) -> str:
        """``log@size``, how reports name a checkpoint."""
        return f"{self.log}@{self.checkpoint.size}"


@dataclass(frozen=True)
class BundleConsistency:
    """A consistency proof between two cited checkpoints of one log."""

    log: str
    old_size: int
    new_size: int
    hashes: tuple[bytes, ...]


@dataclass(frozen=True)
class BundleEvent:
    """An event's stored canonical bytes and its inclusion proof against the checkpoint of ``tree_size``."""

    log: str
    position: int
    canonical: bytes
    tree_size: int
    inclusion: tuple[bytes, ...]

    @property
    def name(self) -> str:
        """``log@position``, how reports name an event."""
        return f"{self.log}@{self.position}"


@dataclass(frozen=True)
class Bundle:
    """A bundle that passed every structural rule, its members decoded."""

    created_at: datetime
    scope: dict[str, Any]
    keys: tuple[BundleKey, ...]
    witness_keys: tuple[VerifierKey, ...]
    checkpoints: tuple[BundleCheckpoint, ...]
    consistency: tuple[BundleConsistency, ...]
    events: tuple[BundleEvent, ...]
    seal: Note
    digests: dict[str, bytes]


def format_timestamp(moment: datetime) -> str:
    """A bundle timestamp: UTC, whole seconds (fractions dropped), ``Z``."""
    return datetime.fromtimestamp(int(moment.timestamp()), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def canonical_json(value: object) -> bytes:
    """RFC 8785 bytes of a bundle member: its values are strings, integers, null and nesting, no floats,
    so sorted keys, no whitespace and UTF-8 (``json.dumps`` with these options) are exactly JCS."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def member_digests(doc: dict[str, Any]) -> dict[str, bytes]:
    """SHA-256 of each sealed member's RFC 8785 bytes."""
    return {m: hashlib.sha256(canonical_json(doc[m])).digest() for m in SEALED_MEMBERS}


def seal_text(digests: dict[str, bytes]) -> str:
    """The sealed note text: the format line, then ``<member> <base64 SHA-256>`` per member.

    Its second line is not a decimal number, so a seal can never be read as a checkpoint signed by the
    same key, nor a checkpoint as a seal.
    """
    return FORMAT + "\n" + "".join(f"{m} {encode_base64(digests[m])}\n" for m in SEALED_MEMBERS)


def read_bundle(data: bytes) -> Bundle:
    """Parse ``data`` as a bundle; raise ``BundleUnusable`` listing every rule it breaks."""
    try:
        doc = json.loads(data.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError as exc:
        raise BundleUnusable([f"the bundle is not UTF-8 (byte {exc.start})"]) from None
    except ValueError as exc:
        raise BundleUnusable([f"the bundle is not JSON: {exc}"]) from None
    try:  # JSON may escape a lone surrogate, which no UTF-8 (and so no digest of a member) can hold
        canonical_json(doc)
    except UnicodeEncodeError as exc:
        raise BundleUnusable([f"the bundle holds a lone surrogate ({exc.object[exc.start]!r})"]) from None
    problems: list[str] = []
    if not isinstance(doc, dict):
        raise BundleUnusable(["the bundle is not a JSON object"])
    if doc.get("format") != FORMAT:
        raise BundleUnusable([f"format {doc.get('format')!r} is not {FORMAT!r}, the one this verifier reads"])
    _members(doc, MEMBERS, "the bundle", problems)
    if problems:
        raise BundleUnusable(problems)
    reader = _Reader(problems)
    bundle = Bundle(
        created_at=reader.timestamp(doc["created_at"], "created_at"),
        scope=reader.scope(doc["scope"]),
        keys=reader.items(doc["keys"], "keys", reader.key, min_items=1),
        witness_keys=reader.items(doc["witness_keys"], "witness_keys", reader.witness_key),
        checkpoints=reader.items(doc["checkpoints"], "checkpoints", reader.checkpoint, min_items=1),
        consistency=reader.items(doc["consistency"], "consistency", reader.consistency),
        events=reader.items(doc["events"], "events", reader.event),
        seal=reader.note(doc["seal"], "seal"),
        digests=member_digests(doc),
    )
    if bundle.seal.text and not bundle.seal.text.startswith(FORMAT + "\n"):
        problems.append(f"seal: its text does not start with the line {FORMAT}")
    if problems:
        raise BundleUnusable(problems)
    return bundle


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            msg = f"member {key!r} appears twice in one object"
            raise ValueError(msg)
        out[key] = value
    return out


def _members(value: dict[str, Any], expected: frozenset[str], where: str, problems: list[str]) -> bool:
    missing, extra = sorted(expected - value.keys()), sorted(value.keys() - expected)
    if missing:
        problems.append(f"{where}: missing member(s) {', '.join(missing)}")
    if extra:
        problems.append(f"{where}: unknown member(s) {', '.join(extra)}")
    return not missing and not extra


class _Reader:
    """Reads members, appending a problem (and returning a placeholder) instead of stopping at the first."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def fail(self, message: str) -> None:
        self.problems.append(message)

    def obj(self, value: object, members: frozenset[str], where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(f"{where}: must be an object")
            return None
        return value if _members(value, members, where, self.problems) else None

    def items(
        self, value: object, where: str, read: Callable[[object, str], T | None], min_items: int = 0
    ) -> tuple[T, ...]:
        if not isinstance(value, list):
            self.fail(f"{where}: must be an array")
            return ()
        if len(value) < min_items:
            self.fail(f"{where}: must hold at least {min_items} entry")
        read_items = [read(item, f"{where}[{i}]") for i, item in enumerate(value)]
        return tuple(item for item in read_items if item is not None)

    def string(self, value: object, where: str, pattern: re.Pattern[str] | None = None) -> str:
        if not isinstance(value, str) or len(value) > _MAX_STRING:
            self.fail(f"{where}: must be a string (of at most {_MAX_STRING} characters)")
            return ""
        if pattern is not None and not pattern.fullmatch(value):
            self.fail(f"{where}: {value[:80]!r} does not match {pattern.pattern}")
        return value

    def integer(self, value: object, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TREE_SIZE:
            self.fail(f"{where}: must be an integer in 0..2^64-1")
            return 0
        return value

    def timestamp(self, value: object, where: str) -> datetime:
        text = self.string(value, where, _TIMESTAMP)
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            if _TIMESTAMP.fullmatch(text):
                self.fail(f"{where}: {text!r} is not a date and time")
            return datetime.min.replace(tzinfo=UTC)

    def base64(self, value: object, where: str) -> bytes:
        try:
            return decode_base64(self.string(value, where), where)
        except VerifierError as exc:
            self.fail(exc.message)
            return b""

    def hashes(self, value: object, where: str) -> tuple[bytes, ...]:
        def one(item: object, at: str) -> bytes:
            raw = self.base64(item, at)
            if len(raw) != 32:
                self.fail(f"{at}: a SHA-256 hash has 32 bytes, this has {len(raw)}")
            return raw

        return self.items(value, where, one)

    def vkey(self, value: object, where: str, types: frozenset[int]) -> VerifierKey | None:
        try:
            key = parse_vkey(self.string(value, where))
        except VerifierError as exc:
            self.fail(f"{where}: {exc.message}")
            return None
        if key.signature_type not in types:
            self.fail(f"{where}: key {key.label} has signature type 0x{key.signature_type:02x}, not one of"
                      f" {', '.join(f'0x{t:02x}' for t in sorted(types))}")  # fmt: skip
            return None
        return key

    def note(self, value: object, where: str) -> Note:
        try:
            return parse_note(self.string(value, where).encode())
        except VerifierError as exc:
            self.fail(f"{where}: {exc.message}")
            return Note("")

    def scope(self, value: object) -> dict[str, Any]:
        shapes = {
            "item": frozenset({"item"}),
            "release": frozenset({"release"}),
            "events": frozenset({"events"}),
            "log": frozenset({"log", "from", "to"}),
        }
        if not isinstance(value, dict) or not any(value.keys() == s for s in shapes.values()):
            self.fail("scope: must be {item}, {release}, {events} or {log, from, to}")
            return {}
        if "item" in value:
            self.string(value["item"], "scope.item", _ITEM)
        elif "release" in value:
            self.string(value["release"], "scope.release", _RELEASE)
        elif "events" in value:
            self.items(value["events"], "scope.events", lambda v, at: self.string(v, at, _NAME), min_items=1)
        else:
            self.string(value["log"], "scope.log", _NAME)
            if self.integer(value["from"], "scope.from") > self.integer(value["to"], "scope.to"):
                self.fail("scope: from is after to")
        return value

    def key(self, value: object, where: str) -> BundleKey | None:
        doc = self.obj(value, frozenset({"vkey", "created_at", "retired_at"}), where)
        if doc is None:
            return None
        key = self.vkey(doc["vkey"], f"{where}.vkey", frozenset({ED25519, COSIGNATURE_MLDSA44}))
        created = self.timestamp(doc["created_at"], f"{where}.created_at")
        retired = None
        if doc["retired_at"] is not None:
            retired = self.timestamp(doc["retired_at"], f"{where}.retired_at")
            if retired <= created:
                self.fail(f"{where}: retired_at is not after created_at")
        return None if key is None else BundleKey(key, created, retired)

    def witness_key(self, value: object, where: str) -> VerifierKey | None:
        return self.vkey(value, where, frozenset({COSIGNATURE_ED25519}))

    def checkpoint(self, value: object, where: str) -> BundleCheckpoint | None:
        doc = self.obj(value, frozenset({"log", "note", "signed_at"}), where)
        if doc is None:
            return None
        log = self.string(doc["log"], f"{where}.log", _NAME)
        note = self.note(doc["note"], f"{where}.note")
        signed_at = self.timestamp(doc["signed_at"], f"{where}.signed_at")
        try:
            checkpoint = parse_checkpoint(note.text)
        except VerifierError as exc:
            if note.text:  # an unreadable note is reported once, above
                self.fail(f"{where}.note: {exc.message}")
            return None
        return BundleCheckpoint(log, note, checkpoint, signed_at)

    def consistency(self, value: object, where: str) -> BundleConsistency | None:
        doc = self.obj(value, frozenset({"log", "from", "to", "hashes"}), where)
        if doc is None:
            return None
        return BundleConsistency(
            self.string(doc["log"], f"{where}.log", _NAME),
            self.integer(doc["from"], f"{where}.from"),
            self.integer(doc["to"], f"{where}.to"),
            self.hashes(doc["hashes"], f"{where}.hashes"),
        )

    def event(self, value: object, where: str) -> BundleEvent | None:
        doc = self.obj(value, frozenset({"log", "position", "canonical", "tree_size", "inclusion"}), where)
        if doc is None:
            return None
        return BundleEvent(
            self.string(doc["log"], f"{where}.log", _NAME),
            self.integer(doc["position"], f"{where}.position"),
            self.base64(doc["canonical"], f"{where}.canonical"),
            self.integer(doc["tree_size"], f"{where}.tree_size"),
            self.hashes(doc["inclusion"], f"{where}.inclusion"),
        )
