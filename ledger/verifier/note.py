"""C2SP signed-note: a text, a blank line, then ``— <key name> <base64(key id ‖ signature)>`` lines.

Parsing is strict where the spec is (valid UTF-8, no control character but newline, a blank line before
the signatures, well-formed names and base64) and bounded (at most ``MAX_SIGNATURES`` lines, at most
``MAX_NOTE_BYTES``). Verification follows signed-note §"Signatures": a signature whose (name, key id) is
unknown is reported and ignored, one from a known key must verify or the whole note is refused, and a
note that no known key verifies is refused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import (
    ED25519,
    TIMESTAMPED,
    Signer,
    VerifierKey,
    check_key_name,
    decode_base64,
    encode_base64,
    find_key,
)

EM_DASH = "\u2014"
_SIGNATURE_PREFIX = EM_DASH + " "
#: signed-note: verifiers must accept at least 16; 100 is golang.org/x/mod/sumdb/note's bound.
MAX_SIGNATURES = 100
#: Text plus signatures; ML-DSA-44 lines are ~3.3 kB, so 100 of them fit with room for the text.
MAX_NOTE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Signature:
    """One signature line: the key name, the key id, and the signature bytes after the key id."""

    name: str
    key_id: int
    signature: bytes

    @property
    def label(self) -> str:
        """``name+hex(key id)``, how errors and reports name the signing key."""
        return f"{self.name}+{self.key_id:08x}"

    @property
    def line(self) -> str:
        """The signature line, without its newline."""
        payload = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_SIGNATURE_PREFIX}{self.name} {encode_base64(payload)}"

    @property
    def timestamp(self) -> int:
        """The POSIX timestamp leading a tlog-cosignature ``timestamped_signature`` (big-endian u64)."""
        return int.from_bytes(self.signature[:8], "big")


@dataclass(frozen=True)
class Note:
    """A note text (ending in a newline) and its signature lines, in order."""

    text: str
    signatures: tuple[Signature, ...] = ()

    def to_bytes(self) -> bytes:
        """The note as it is stored and served (``text``, blank line, one line per signature)."""
        return format_note(self.text, self.signatures)

    def with_signatures(self, *signatures: Signature) -> Note:
        """This note with ``signatures`` appended (a line already present is not repeated)."""
        kept = list(self.signatures)
        kept += [s for s in signatures if s not in kept]
        return Note(self.text, tuple(kept))


class NoteVerifier(Protocol):
    """Checks one key's signatures on a note; each signature type defines what its key signed."""

    @property
    def key(self) -> VerifierKey:
        """The public key, with its name and key id."""
        ...

    def verify(self, text: bytes, signature: bytes) -> bool:
        """True if ``signature`` (after the key id) is valid for the note text ``text``."""
        ...


@dataclass(frozen=True)
class Ed25519NoteVerifier:
    """Signature type 0x01: an Ed25519 signature of the note text itself (signed-note §Ed25519)."""

    key: VerifierKey

    def __post_init__(self) -> None:
        if self.key.signature_type != ED25519:
            msg = f"key {self.key.label} is not an Ed25519 note key (type 0x{self.key.signature_type:02x})"
            raise VerifierError(msg)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Ed25519 over the whole note text, final newline included."""
        return self.key.verify(text, signature)


@dataclass(frozen=True)
class VerifiedSignature:
    """A signature that verified, the key that verified it, and its timestamp if the type carries one."""

    signature: Signature
    key: VerifierKey
    timestamp: int | None


@dataclass(frozen=True)
class NoteVerification:
    """What ``verify_note`` found: the signatures that verified, and those from keys it does not know."""

    note: Note
    verified: tuple[VerifiedSignature, ...]
    unknown: tuple[Signature, ...]


def format_note(text: str, signatures: Sequence[Signature]) -> bytes:
    """Encode a note; refuses a text or signature the parser would refuse."""
    if not signatures:
        msg = "a signed note needs at least one signature"
        raise VerifierError(msg)
    data = (text + "\n" + "".join(s.line + "\n" for s in signatures)).encode()
    parsed = parse_note(data)  # one definition of well-formed: what we write is what we accept
    if parsed.text != text or parsed.signatures != tuple(signatures):
        msg = "note text must end with a newline and must not be confused with its signature block"
        raise VerifierError(msg)
    return data


def parse_note(data: bytes) -> Note:
    """Split a signed note into its text and signature lines, refusing anything the spec refuses."""
    if len(data) > MAX_NOTE_BYTES:
        msg = f"note has {len(data)} bytes, more than the {MAX_NOTE_BYTES} accepted"
        raise VerifierError(msg)
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        msg = f"note is not valid UTF-8 (byte {exc.start})"
        raise VerifierError(msg) from None
    for lineno, line in enumerate(decoded.split("\n"), start=1):
        bad = next((ch for ch in line if ord(ch) < 0x20), None)
        if bad is not None:
            msg = f"note line {lineno} contains the control character 0x{ord(bad):02x}"
            raise VerifierError(msg)
    split = decoded.rfind("\n\n")
    if split < 0:
        msg = "note has no blank line before its signatures"
        raise VerifierError(msg)
    text, block = decoded[: split + 1], decoded[split + 2 :]
    if not block:
        msg = "note has no signature lines after its blank line"
        raise VerifierError(msg)
    if not block.endswith("\n"):
        msg = "note's last signature line does not end with a newline"
        raise VerifierError(msg)
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        msg = f"note has {len(lines)} signature lines, more than the {MAX_SIGNATURES} accepted"
        raise VerifierError(msg)
    first = text.count("\n") + 2  # line number of the first signature line
    return Note(text, tuple(_parse_signature(line, first + i) for i, line in enumerate(lines)))


def _parse_signature(line: str, lineno: int) -> Signature:
    if not line.startswith(_SIGNATURE_PREFIX):
        msg = f"note line {lineno} is not a signature line ('— <name> <signature>')"
        raise VerifierError(msg)
    name, space, b64 = line[len(_SIGNATURE_PREFIX) :].partition(" ")
    if not space:
        msg = f"signature line {lineno} has no space between key name and signature"
        raise VerifierError(msg)
    check_key_name(name, f"signature line {lineno}: key name")
    raw = decode_base64(b64, f"signature line {lineno} ({name})")
    if len(raw) < 5:
        msg = f"signature line {lineno} ({name}) is shorter than a key id and a signature"
        raise VerifierError(msg)
    return Signature(name, int.from_bytes(raw[:4], "big"), raw[4:])


def verify_note(note: Note, verifiers: Sequence[NoteVerifier]) -> NoteVerification:
    """Verify every signature from a known key; raise if one fails or if none verifies."""
    keys = [v.key for v in verifiers]
    by_key = {v.key: v for v in verifiers}
    text = note.text.encode()
    verified: list[VerifiedSignature] = []
    unknown: list[Signature] = []
    for index, sig in enumerate(note.signatures, start=1):
        key = find_key(keys, sig.name, sig.key_id)
        if key is None:
            if sig not in unknown:
                unknown.append(sig)
            continue
        key.check_signature_length(sig.signature)
        if not by_key[key].verify(text, sig.signature):
            msg = f"signature {index} ({sig.label}) does not verify: the note or the signature was altered"
            raise VerifierError(msg)
        timestamp = sig.timestamp if key.signature_type in TIMESTAMPED else None
        if all(v.signature != sig for v in verified):
            verified.append(VerifiedSignature(sig, key, timestamp))
    if not verified:
        known = ", ".join(k.label for k in keys) or "none"
        found = ", ".join(s.label for s in unknown) or "none"
        msg = f"no signature by a known key (known: {known}; signed by: {found})"
        raise VerifierError(msg)
    return NoteVerification(note, tuple(verified), tuple(unknown))


def sign_text(text: str, signer: Signer) -> Signature:
    """An Ed25519 (type 0x01) signature line over ``text``, the plain signed-note signature."""
    if signer.signature_type != ED25519:
        msg = f"signer {signer.name} signs type 0x{signer.signature_type:02x}, not a plain Ed25519 note"
        raise VerifierError(msg)
    return Signature(signer.name, signer.key_id, signer.sign(text.encode()))
