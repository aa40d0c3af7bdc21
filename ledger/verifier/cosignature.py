"""C2SP tlog-cosignature: the timestamped messages witnesses (and the ledger's ML-DSA-44 key) sign.

Two signature types (signed-note types 0x04 and 0x06):

* ``cosignature/v1`` Ed25519 (0x04): Ed25519 over ``"cosignature/v1\\ntime <t>\\n"`` followed by the whole
  checkpoint text; the signature is the 8-byte big-endian timestamp then the 64-byte signature.
* ``subtree/v1`` ML-DSA-44 (0x06): ML-DSA-44 (FIPS 204, empty context) over the ``cosigned_message``
  structure (label, cosigner name, timestamp, origin, start, end, root); the signature is the 8-byte
  timestamp then the 2420-byte signature. It does not cover checkpoint extension lines.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import COSIGNATURE_ED25519, Signer, VerifierKey
from ledger.verifier.note import Note, Signature, VerifiedSignature, verify_note

if TYPE_CHECKING:  # checkpoint.py imports this module; only the type is needed here
    from ledger.verifier.checkpoint import Checkpoint

MAX_TIMESTAMP = 2**63 - 1  # tlog-cosignature: the timestamp MUST NOT exceed 2^63 - 1
_SUBTREE_LABEL = b"subtree/v1\n\x00"


def check_timestamp(timestamp: int, who: str) -> int:
    """``timestamp`` if it is a POSIX time tlog-cosignature allows (0 ≤ t ≤ 2^63 − 1)."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        msg = f"{who}: timestamp {timestamp} is outside 0..2^63-1"
        raise VerifierError(msg)
    return timestamp


def cosignature_message(text: str, timestamp: int) -> bytes:
    """The ``cosignature/v1`` message: header line, ``time <t>`` line, then the checkpoint text."""
    check_timestamp(timestamp, "cosignature")
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode()


def subtree_message(cosigner: str, timestamp: int, origin: str, start: int, end: int, root: bytes) -> bytes:
    """The ML-DSA-44 ``cosigned_message`` (RFC 8446 §3 presentation: u8-length strings, big-endian u64s)."""
    name, log = cosigner.encode(), origin.encode()
    for what, value in (("cosigner name", name), ("log origin", log)):
        if not 1 <= len(value) <= 255:
            msg = f"ML-DSA-44 cosignature: the {what} must be 1 to 255 bytes, it is {len(value)}"
            raise VerifierError(msg)
    check_timestamp(timestamp, f"ML-DSA-44 cosignature by {cosigner}")
    if start and timestamp:
        msg = f"ML-DSA-44 cosignature by {cosigner}: a subtree with start {start} must have timestamp 0"
        raise VerifierError(msg)
    if not 0 <= start < end < 2**64 and not start == end == 0:
        msg = f"ML-DSA-44 cosignature by {cosigner}: bad subtree bounds [{start}, {end})"
        raise VerifierError(msg)
    if len(root) != 32:
        msg = f"ML-DSA-44 cosignature by {cosigner}: the hash must be 32 bytes"
        raise VerifierError(msg)
    return (
        _SUBTREE_LABEL
        + bytes([len(name)])
        + name
        + timestamp.to_bytes(8, "big")
        + bytes([len(log)])
        + log
        + start.to_bytes(8, "big")
        + end.to_bytes(8, "big")
        + root
    )


@dataclass(frozen=True)
class Ed25519CosignatureVerifier:
    """Verifies a witness's ``cosignature/v1`` (type 0x04) line on a checkpoint note."""

    key: VerifierKey

    def __post_init__(self) -> None:
        if self.key.signature_type != COSIGNATURE_ED25519:
            msg = f"key {self.key.label} is not an Ed25519 cosignature key (type 0x{self.key.signature_type:02x})"
            raise VerifierError(msg)

    def verify(self, text: bytes, signature: bytes) -> bool:
        """Ed25519 over the cosignature/v1 header, the signature's timestamp line and the checkpoint text."""
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp > MAX_TIMESTAMP:
            return False
        return self.key.verify(cosignature_message(text.decode(), timestamp), signature[8:])


def cosign(checkpoint: Checkpoint, signer: Signer, timestamp: int) -> Signature:
    """A witness's ``cosignature/v1`` line on ``checkpoint``, made at POSIX time ``timestamp``."""
    if signer.signature_type != COSIGNATURE_ED25519:
        msg = f"signer {signer.name} signs type 0x{signer.signature_type:02x}, not cosignature/v1 (0x04)"
        raise VerifierError(msg)
    raw = signer.sign(cosignature_message(checkpoint.text, timestamp))
    return Signature(signer.name, signer.key_id, timestamp.to_bytes(8, "big") + raw)


def verify_cosignatures(note: Note, witness_keys: Sequence[VerifierKey]) -> tuple[VerifiedSignature, ...]:
    """The witness cosignatures on ``note`` that verify under ``witness_keys`` (at least one must).

    Like every signed-note verification, a cosignature from a configured witness that fails refuses
    the whole note, naming the witness key.
    """
    result = verify_note(note, [Ed25519CosignatureVerifier(k) for k in witness_keys])
    return result.verified
