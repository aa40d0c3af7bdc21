"""C2SP tlog-cosignature: the cosignature/v1 (Ed25519) and subtree/v1 (ML-DSA-44) messages, sign and verify."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from ledger.verifier.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint, sign_checkpoint
from ledger.verifier.cosignature import (
    MAX_TIMESTAMP,
    Ed25519CosignatureVerifier,
    cosign,
    cosignature_message,
    subtree_message,
    verify_cosignatures,
)
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import COSIGNATURE_ED25519, COSIGNATURE_MLDSA44, ED25519, SeedSigner, parse_vkey
from ledger.verifier.note import Note, Signature, parse_note

VECTORS = json.loads(
    (Path(__file__).resolve().parents[2] / "tests/assets/signed-note/vectors.json").read_text()
)
SPEC = VECTORS["c2sp_cosignature"]
CHECKPOINT = parse_checkpoint(VECTORS["c2sp_checkpoint"]["text"])

LOG = SeedSigner("ledger.example/checkpoints", ED25519, b"\x01" * 32)
WITNESS = SeedSigner("auditor.example/witness", COSIGNATURE_ED25519, b"\x02" * 32)
T = 1_800_000_000


def test_the_cosignature_message_is_the_one_the_spec_spells_out() -> None:
    assert cosignature_message(CHECKPOINT.text, SPEC["timestamp"]).decode() == SPEC["message"]


def test_the_spec_witness_line_carries_an_8_byte_timestamp_and_a_64_byte_signature() -> None:
    note = parse_note((CHECKPOINT.text + "\n" + SPEC["witness_line"] + "\n").encode())
    (sig,) = note.signatures
    assert sig.name == "witness.example.com/w1"
    assert len(sig.signature) == 8 + 64
    assert sig.timestamp == SPEC["timestamp"]


def test_the_witness_key_id_uses_type_0x04() -> None:
    key = WITNESS.verifier_key
    digest = hashlib.sha256(WITNESS.name.encode() + b"\n\x04" + key.public_key).digest()
    assert key.key_id == int.from_bytes(digest[:4], "big")
    assert parse_vkey(key.vkey) == key
    assert key.vkey.split("+")[2].startswith("B")  # base64 of 0x04 ...


def test_the_mldsa44_message_layout_is_pinned() -> None:
    root = bytes(range(32))
    want = (
        b"subtree/v1\n\x00"
        + bytes([14])
        + b"mirror.test/m1"
        + (1679315147).to_bytes(8, "big")
        + bytes([15])
        + b"example.com/log"
        + (0).to_bytes(8, "big")
        + (20852163).to_bytes(8, "big")
        + root
    )
    assert subtree_message("mirror.test/m1", 1679315147, "example.com/log", 0, 20852163, root) == want


@pytest.mark.parametrize(
    ("args", "part"),
    [
        (("", 0, "o", 0, 1, b"\x00" * 32), "cosigner name must be 1 to 255 bytes"),
        (("n", 0, "o" * 256, 0, 1, b"\x00" * 32), "log origin must be 1 to 255 bytes"),
        (("n", 5, "o", 1, 2, b"\x00" * 32), "must have timestamp 0"),
        (("n", 0, "o", 3, 2, b"\x00" * 32), "bad subtree bounds"),
        (("n", 0, "o", 0, 1, b"\x00" * 31), "32 bytes"),
        (("n", MAX_TIMESTAMP + 1, "o", 0, 1, b"\x00" * 32), "outside 0..2\\^63-1"),
    ],
)
def test_the_mldsa44_message_refuses_what_the_spec_forbids(args: tuple, part: str) -> None:
    with pytest.raises(VerifierError, match=part):
        subtree_message(*args)


@pytest.fixture(scope="module")
def cosigned() -> bytes:
    note = sign_checkpoint(CHECKPOINT, [LOG], T)
    return note.with_signatures(cosign(CHECKPOINT, WITNESS, T + 5)).to_bytes()


def test_a_witness_cosignature_verifies_with_its_timestamp(cosigned: bytes) -> None:
    (verified,) = verify_cosignatures(parse_note(cosigned), [WITNESS.verifier_key])
    assert verified.key == WITNESS.verifier_key
    assert verified.timestamp == T + 5


def test_open_checkpoint_reports_log_signatures_and_cosignatures_apart(cosigned: bytes) -> None:
    signed = open_checkpoint(cosigned, [LOG.verifier_key, WITNESS.verifier_key])
    assert [v.key for v in signed.log_signatures] == [LOG.verifier_key]
    assert [v.key for v in signed.cosignatures] == [WITNESS.verifier_key]


def test_a_cosignature_alone_is_not_a_log_signature(cosigned: bytes) -> None:
    with pytest.raises(VerifierError, match="no verified log signature"):
        open_checkpoint(cosigned, [WITNESS.verifier_key])


def test_an_unknown_witness_is_reported_not_failed(cosigned: bytes) -> None:
    signed = open_checkpoint(cosigned, [LOG.verifier_key])
    assert [s.label for s in signed.unknown] == [WITNESS.verifier_key.label]


def test_every_altered_byte_of_the_cosigned_checkpoint_fails_under_the_witness_key(cosigned: bytes) -> None:
    """Body, timestamp, key id and signature: each byte changed is caught, naming the part."""
    witness_line = cosigned.rindex("\u2014".encode())
    log_line = cosigned.index("\u2014".encode())
    for i in [*range(log_line - 1), *range(witness_line, len(cosigned))]:
        altered = bytearray(cosigned)
        altered[i] ^= 0x01
        with pytest.raises(VerifierError) as info:
            verify_cosignatures(parse_note(bytes(altered)), [WITNESS.verifier_key])
        assert str(info.value)


def test_a_cosignature_made_at_another_time_does_not_verify(cosigned: bytes) -> None:
    note = parse_note(cosigned)
    sig = note.signatures[-1]
    other = Signature(sig.name, sig.key_id, (T + 6).to_bytes(8, "big") + sig.signature[8:])
    moved = Note(note.text, (*note.signatures[:-1], other))
    with pytest.raises(
        VerifierError, match=r"signature 2 \(auditor\.example/witness\+[0-9a-f]{8}\) does not verify"
    ):
        verify_cosignatures(moved, [WITNESS.verifier_key])


def test_a_timestamp_beyond_2_63_is_refused() -> None:
    with pytest.raises(VerifierError, match="outside"):
        cosign(CHECKPOINT, WITNESS, MAX_TIMESTAMP + 1)
    sig = cosign(CHECKPOINT, WITNESS, MAX_TIMESTAMP)
    assert Ed25519CosignatureVerifier(WITNESS.verifier_key).verify(CHECKPOINT.text.encode(), sig.signature)


def test_signers_of_the_wrong_type_are_refused() -> None:
    with pytest.raises(VerifierError, match="not cosignature/v1"):
        cosign(CHECKPOINT, LOG, T)
    with pytest.raises(VerifierError, match="not an Ed25519 cosignature key"):
        Ed25519CosignatureVerifier(LOG.verifier_key)


def test_a_witness_can_cosign_with_mldsa44_too() -> None:
    """A type 0x06 cosigner: the subtree/v1 message names the cosigner, so its signature is bound to it."""
    pq_witness = SeedSigner("auditor.example/pq-witness", COSIGNATURE_MLDSA44, b"\x03" * 32)
    checkpoint = Checkpoint("ledger.example/logs/acme", 7, b"\x05" * 32)
    note = sign_checkpoint(checkpoint, [LOG, pq_witness], T).to_bytes()
    signed = open_checkpoint(note, [LOG.verifier_key, pq_witness.verifier_key])
    assert {v.key for v in signed.verified} == {LOG.verifier_key, pq_witness.verifier_key}
    # the same key material under another name: the subtree/v1 message commits to the cosigner name
    renamed = SeedSigner("auditor.example/other", COSIGNATURE_MLDSA44, b"\x03" * 32)
    original = next(v.signature for v in signed.verified if v.key == pq_witness.verifier_key)
    moved = Note(checkpoint.text, (Signature(renamed.name, renamed.key_id, original.signature),))
    with pytest.raises(VerifierError, match=r"auditor\.example/other\+[0-9a-f]{8}\) does not verify"):
        open_checkpoint(moved.to_bytes(), [renamed.verifier_key])
