"""C2SP tlog-checkpoint: origin line, decimal tree size, base64 root hash, optional extension lines.

A checkpoint is the text of a signed note. The ledger signs each one twice, under one key name:
Ed25519 (signed-note type 0x01, over the text) and ML-DSA-44 (tlog-cosignature type 0x06, over the
origin, size and root, with the signing time), so it still verifies once classical signatures no longer
can; a verifier holding either key verifies it. Witnesses add Ed25519 ``cosignature/v1`` lines (0x04).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.verifier.cosignature import (
    MAX_TIMESTAMP,
    Ed25519CosignatureVerifier,
    check_timestamp,
    cosign,
    subtree_message,
)
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import (
    COSIGNATURE_ED25519,
    COSIGNATURE_MLDSA44,
    ED25519,
    KeyWindow,
    Signer,
    VerifierKey,
    check_key_name,
    decode_base64,
    encode_base64,
    key_valid_at,
)
from ledger.verifier.note import (
    Ed25519NoteVerifier,
    Note,
    NoteVerifier,
    Signature,
    VerifiedSignature,
    parse_note,
    sign_text,
    verify_note,
)

HASH_BYTES = 32  # SHA-256, RFC 9162 §2.1
MAX_TREE_SIZE = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
#: The signature types a log signs its own checkpoints with; 0x04 is a witness's cosignature.
LOG_SIGNATURE_TYPES = frozenset({ED25519, COSIGNATURE_MLDSA44})


def checkpoint_key_name(deployment: str) -> str:
    """The key name a deployment signs all its logs' checkpoints under: ``<deployment>/checkpoints``."""
    return check_key_name(f"{check_key_name(deployment, 'deployment name')}/checkpoints")


def origin_for(deployment: str, log: str) -> str:
    """The origin line naming the deployment and the log: ``<deployment>/logs/<log>``."""
    check_key_name(deployment, "deployment name")
    return check_key_name(f"{deployment}/logs/{check_key_name(log, 'log name')}", "origin")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log's origin, its size (leaf count) and its RFC 9162 root hash."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.origin or _has_control(self.origin):
            msg = f"checkpoint origin {self.origin!r} must be non-empty, on one line, without control characters"
            raise VerifierError(msg)
        if not 0 <= self.size <= MAX_TREE_SIZE:
            msg = f"checkpoint tree size {self.size} is outside 0..2^64-1"
            raise VerifierError(msg)
        if len(self.root) != HASH_BYTES:
            msg = f"checkpoint root hash has {len(self.root)} bytes, a SHA-256 hash has {HASH_BYTES}"
            raise VerifierError(msg)
        for i, ext in enumerate(self.extensions, start=4):
            if not ext or _has_control(ext):
                msg = f"checkpoint line {i} (extension) must be non-empty, without control characters"
                raise VerifierError(msg)

    @property
    def text(self) -> str:
        """The note text: origin, size, base64 root and extension lines, each ending in a newline."""
        lines = [self.origin, str(self.size), encode_base64(self.root), *self.extensions]
        return "".join(line + "\n" for line in lines)


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text strictly (tlog-checkpoint §"Note text")."""
    if not text.endswith("\n"):
        msg = "checkpoint text must end with a newline"
        raise VerifierError(msg)
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        msg = f"checkpoint has {len(lines)} lines; it needs origin, tree size and root hash"
        raise VerifierError(msg)
    origin, size, root, *extensions = lines
    if not origin:
        msg = "checkpoint line 1 (origin) is empty"
        raise VerifierError(msg)
    if not _DECIMAL.fullmatch(size):
        msg = f"checkpoint line 2 (tree size) {size[:40]!r} is not a decimal number without leading zeros"
        raise VerifierError(msg)
    root_hash = decode_base64(root, "checkpoint line 3 (root hash)")
    if len(root_hash) != HASH_BYTES:
        msg = f"checkpoint line 3 (root hash) decodes to {len(root_hash)} bytes, not {HASH_BYTES}"
        raise VerifierError(msg)
    for i, ext in enumerate(extensions, start=4):
        if not ext:
            msg = f"checkpoint line {i} (extension) is empty"
            raise VerifierError(msg)
    return Checkpoint(origin, int(size), root_hash, tuple(extensions))


@dataclass(frozen=True)
class MLDSA44CheckpointVerifier:
    """Verifies a type 0x06 ML-DSA-44 signature on a checkpoint (the log's own or a witness's)."""

    key: VerifierKey

    def __post_init__(self) -> None:
        if self.key.signature_type != COSIGNATURE_MLDSA44:
            msg = f"key {self.key.label} is not an ML-DSA-44 key (type 0x{self.key.signature_type:02x})"
            raise VerifierError(msg)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """ML-DSA-44 over the ``subtree/v1`` message of this checkpoint's origin, size and root."""
        checkpoint = parse_checkpoint(text.decode())
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        message = subtree_message(
            self.key.name, timestamp, checkpoint.origin, 0, checkpoint.size, checkpoint.root
        )
        return self.key.verify(message, signature[8:])


def verifier_for(key: VerifierKey) -> NoteVerifier:
    """The verifier of a key's signature type: Ed25519 note, Ed25519 cosignature, or ML-DSA-44."""
    if key.signature_type == ED25519:
        return Ed25519NoteVerifier(key)
    if key.signature_type == COSIGNATURE_ED25519:
        return Ed25519CosignatureVerifier(key)
    return MLDSA44CheckpointVerifier(key)


@dataclass(frozen=True)
class SignedCheckpoint:
    """A parsed checkpoint, its note, the signatures that verified and those from unknown keys."""

    checkpoint: Checkpoint
    note: Note
    verified: tuple[VerifiedSignature, ...]
    unknown: tuple[Signature, ...]

    @property
    def log_signatures(self) -> tuple[VerifiedSignature, ...]:
        """The verified signatures of the log itself (Ed25519 note and ML-DSA-44), not witnesses'."""
        return tuple(v for v in self.verified if v.key.signature_type in LOG_SIGNATURE_TYPES)

    @property
    def cosignatures(self) -> tuple[VerifiedSignature, ...]:
        """The verified Ed25519 ``cosignature/v1`` lines of witnesses."""
        return tuple(v for v in self.verified if v.key.signature_type == COSIGNATURE_ED25519)

    @property
    def signed_at(self) -> datetime | None:
        """The signing time a verified ML-DSA-44 log signature states, if any (0 states none)."""
        times = [
            v.timestamp for v in self.verified if v.key.signature_type == COSIGNATURE_MLDSA44 and v.timestamp
        ]
        return datetime.fromtimestamp(min(times), UTC) if times else None


def open_checkpoint(data: bytes, keys: Sequence[VerifierKey]) -> SignedCheckpoint:
    """Parse and verify a signed checkpoint; at least one log signature (type 0x01 or 0x06) must verify.

    Witness keys (type 0x04) may be passed too: their cosignatures are verified and reported. Extension
    lines are refused unless a verified signature covers them (ML-DSA-44 signs only origin, size, root).
    """
    note = parse_note(data)
    checkpoint = parse_checkpoint(note.text)
    result = verify_note(note, [verifier_for(k) for k in keys])
    signed = SignedCheckpoint(checkpoint, note, result.verified, result.unknown)
    if not signed.log_signatures:
        found = ", ".join(v.signature.label for v in signed.verified)
        msg = f"checkpoint {checkpoint.origin} at size {checkpoint.size} has no verified log signature (only {found})"
        raise VerifierError(msg)
    if checkpoint.extensions and all(
        v.key.signature_type == COSIGNATURE_MLDSA44 for v in signed.log_signatures
    ):
        msg = f"checkpoint {checkpoint.origin}: its extension lines are not covered by any verified signature"
        raise VerifierError(msg)
    return signed


def sign_checkpoint(checkpoint: Checkpoint, signers: Sequence[Signer], timestamp: int) -> Note:
    """The signed note of ``checkpoint``: one line per signer, timestamped types stamped ``timestamp``."""
    if not signers:
        msg = "a checkpoint needs at least one signer"
        raise VerifierError(msg)
    return Note(checkpoint.text, tuple(checkpoint_signature(checkpoint, s, timestamp) for s in signers))


def checkpoint_signature(checkpoint: Checkpoint, signer: Signer, timestamp: int) -> Signature:
    """One signature line on ``checkpoint`` in the form of the signer's signature type."""
    if signer.signature_type == ED25519:
        return sign_text(checkpoint.text, signer)
    if signer.signature_type == COSIGNATURE_ED25519:
        return cosign(checkpoint, signer, timestamp)
    if signer.signature_type == COSIGNATURE_MLDSA44:
        check_timestamp(timestamp, f"signer {signer.name}")
        message = subtree_message(
            signer.name, timestamp, checkpoint.origin, 0, checkpoint.size, checkpoint.root
        )
        return Signature(signer.name, signer.key_id, timestamp.to_bytes(8, "big") + signer.sign(message))
    msg = f"signer {signer.name}: signature type 0x{signer.signature_type:02x} is not supported"
    raise VerifierError(msg)


def check_key_windows(
    signed: SignedCheckpoint, windows: Sequence[KeyWindow], signed_at: datetime | None = None
) -> None:
    """Refuse a checkpoint whose log signature was made outside its key's validity window.

    ``signed_at`` defaults to the time the verified ML-DSA-44 signature states; a verifier holding only
    the Ed25519 key passes the time recorded elsewhere (e.g. the ``ledger.checkpoint_signed`` event).
    Signatures by a key with no window given are not judged here.
    """
    when = signed_at or signed.signed_at
    if when is None:
        msg = f"checkpoint {signed.checkpoint.origin} at size {signed.checkpoint.size}: no signing time is known"
        raise VerifierError(msg)
    by_key = {w.key: w for w in windows}
    for v in signed.log_signatures:
        window = by_key.get(v.key)
        if window is not None and not key_valid_at(window, when):
            retired = window.retired_at.isoformat() if window.retired_at else "never"
            msg = (
                f"checkpoint {signed.checkpoint.origin} at size {signed.checkpoint.size} was signed at"
                f" {when.isoformat()} by {v.key.label}, valid only from {window.created_at.isoformat()}"
                f" until {retired}"
            )
            raise VerifierError(msg)


def _has_control(value: str) -> bool:
    return any(ord(ch) < 0x20 for ch in value)
