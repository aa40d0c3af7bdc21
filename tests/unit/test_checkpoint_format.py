"""C2SP tlog-checkpoint bodies, the ledger's dual Ed25519 + ML-DSA-44 signature, and key windows."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.verifier.checkpoint import (
    Checkpoint,
    check_key_windows,
    checkpoint_key_name,
    open_checkpoint,
    origin_for,
    parse_checkpoint,
    sign_checkpoint,
)
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import COSIGNATURE_MLDSA44, ED25519, KeyWindow, SeedSigner, key_valid_at, parse_vkey
from ledger.verifier.note import Note, parse_note

ASSETS = Path(__file__).resolve().parents[2] / "tests/assets/signed-note"
C2SP = json.loads((ASSETS / "vectors.json").read_text())["c2sp_checkpoint"]
TORCHWOOD_KEY = parse_vkey((ASSETS / "torchwood-mldsa44.vkey").read_text())
TORCHWOOD_NOTE = (ASSETS / "torchwood-mldsa44-checkpoint.txt").read_bytes()

NAME = checkpoint_key_name("ledger.example")
ED = SeedSigner(NAME, ED25519, bytes(range(32)))
PQ = SeedSigner(NAME, COSIGNATURE_MLDSA44, bytes(range(32, 64)))
SIGNED_AT = 1_800_000_000  # 2027-01-15T08:00:00Z


@pytest.fixture(scope="module")
def signed() -> bytes:
    checkpoint = Checkpoint(origin_for("ledger.example", "acme"), 42, bytes(range(32)))
    return sign_checkpoint(checkpoint, [ED, PQ], SIGNED_AT).to_bytes()


# ---- the body ----------------------------------------------------------------------------------------


def test_the_spec_checkpoint_parses_and_formats_back() -> None:
    checkpoint = parse_checkpoint(C2SP["text"])
    assert checkpoint.origin == C2SP["origin"]
    assert checkpoint.size == C2SP["size"]
    assert checkpoint.root == base64.b64decode(C2SP["root_base64"])
    assert checkpoint.extensions == ()
    assert checkpoint.text == C2SP["text"]


def test_extension_lines_round_trip() -> None:
    text = C2SP["text"] + "ext one\next two\n"
    checkpoint = parse_checkpoint(text)
    assert checkpoint.extensions == ("ext one", "ext two")
    assert checkpoint.text == text


def test_the_empty_tree() -> None:
    empty = Checkpoint(
        "o", 0, bytes.fromhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
    )
    assert parse_checkpoint(empty.text) == empty
    assert empty.text.split("\n")[1] == "0"


ROOT64 = C2SP["root_base64"]


@pytest.mark.parametrize(
    ("text", "part"),
    [
        (f"origin\n1\n{ROOT64}", "end with a newline"),
        ("origin\n1\n", "needs origin, tree size and root"),
        (f"\n1\n{ROOT64}\n", "line 1 .origin. is empty"),
        (f"origin\n01\n{ROOT64}\n", "line 2 .tree size."),
        (f"origin\n+1\n{ROOT64}\n", "line 2 .tree size."),
        (f"origin\n 1\n{ROOT64}\n", "line 2 .tree size."),
        (f"origin\n1_0\n{ROOT64}\n", "line 2 .tree size."),
        (f"origin\n\u0661\n{ROOT64}\n", "line 2 .tree size."),  # ARABIC-INDIC DIGIT ONE: int() would take it
        (f"origin\n-1\n{ROOT64}\n", "line 2 .tree size."),
        (f"origin\n{2**64}\n{ROOT64}\n", "outside 0..2\\^64-1"),
        ("origin\n1\nAAAA\n", "line 3 .root hash. decodes to 3 bytes"),
        ("origin\n1\nnot base64!\n", "line 3 .root hash. is not valid base64"),
        (f"origin\n1\n{ROOT64}\n\n", "line 4 .extension. is empty"),
    ],
)
def test_malformed_bodies_are_refused_naming_the_line(text: str, part: str) -> None:
    with pytest.raises(VerifierError, match=part):
        parse_checkpoint(text)


def test_a_checkpoint_refuses_values_it_could_not_write() -> None:
    with pytest.raises(VerifierError, match="root hash has 31 bytes"):
        Checkpoint("o", 1, b"\x00" * 31)
    with pytest.raises(VerifierError, match="origin"):
        Checkpoint("two\nlines", 1, b"\x00" * 32)
    with pytest.raises(VerifierError, match="line 4"):
        Checkpoint("o", 1, b"\x00" * 32, ("",))


def test_origin_and_key_name_name_the_deployment_and_the_log() -> None:
    assert origin_for("ledger.example", "acme/3") == "ledger.example/logs/acme/3"
    assert checkpoint_key_name("ledger.example") == "ledger.example/checkpoints"
    with pytest.raises(VerifierError, match="log name"):
        origin_for("ledger.example", "a b")
    with pytest.raises(VerifierError, match="deployment name"):
        checkpoint_key_name("a+b")


# ---- the published ML-DSA-44 checkpoint --------------------------------------------------------------


def test_the_torchwood_mldsa44_checkpoint_verifies() -> None:
    signed = open_checkpoint(TORCHWOOD_NOTE, [TORCHWOOD_KEY])
    assert signed.checkpoint.origin == "example.com/mldsa-log"
    assert signed.checkpoint.size == 1
    assert [(v.key, v.timestamp) for v in signed.verified] == [(TORCHWOOD_KEY, 0)]
    assert signed.signed_at is None  # timestamp 0 states no time


def test_any_altered_byte_of_the_torchwood_checkpoint_body_fails() -> None:
    text_end = TORCHWOOD_NOTE.index(b"\n\n")
    for i in range(text_end):
        altered = bytearray(TORCHWOOD_NOTE)
        altered[i] ^= 0x01
        with pytest.raises(VerifierError):
            open_checkpoint(bytes(altered), [TORCHWOOD_KEY])


# ---- the ledger's dual signature ---------------------------------------------------------------------


def test_a_dual_signed_checkpoint_verifies_with_each_key_alone_and_both(signed: bytes) -> None:
    for keys in ([ED.verifier_key], [PQ.verifier_key], [ED.verifier_key, PQ.verifier_key]):
        result = open_checkpoint(signed, keys)
        assert result.checkpoint.size == 42
        assert {v.key for v in result.log_signatures} == set(keys)


def test_the_mldsa44_signature_states_the_signing_time(signed: bytes) -> None:
    assert open_checkpoint(signed, [PQ.verifier_key]).signed_at == datetime.fromtimestamp(SIGNED_AT, UTC)
    assert open_checkpoint(signed, [ED.verifier_key]).signed_at is None  # an unverified time is no time


def test_a_checkpoint_signed_by_an_unknown_key_is_refused_naming_the_signers(signed: bytes) -> None:
    stranger = SeedSigner(NAME, ED25519, b"\x09" * 32).verifier_key
    with pytest.raises(
        VerifierError,
        match=rf"known: {re.escape(stranger.label)}; signed by: {re.escape(ED.verifier_key.label)}",
    ):
        open_checkpoint(signed, [stranger])


def test_every_altered_byte_of_a_dual_signed_checkpoint_fails_naming_the_part(signed: bytes) -> None:
    """A changed body fails under both keys; a changed signature line fails under the key that made it.

    (Under both keys, a line whose name or key id was changed is a signature of an unknown key: signed-note
    ignores it and reports it, and the other log signature still verifies the checkpoint.)
    """
    named = re.compile(r"line \d+|checkpoints\+[0-9a-f]{8}|UTF-8|blank line|signature|checkpoint")
    ed_line = signed.index("\u2014".encode())
    pq_line = signed.index("\u2014".encode(), ed_line + 1)
    for i in range(0, len(signed), 7):  # every 7th byte: the ML-DSA line alone is 3.3 kB
        altered = bytearray(signed)
        altered[i] ^= 0x01
        keys = [ED.verifier_key, PQ.verifier_key]
        if i >= pq_line:
            keys = [PQ.verifier_key]
        elif i >= ed_line:
            keys = [ED.verifier_key]
        with pytest.raises(VerifierError) as info:
            open_checkpoint(bytes(altered), keys)
        assert named.search(str(info.value)), (i, str(info.value))
        if i >= ed_line:  # under both keys it is refused or reported, never silently taken
            try:
                result = open_checkpoint(bytes(altered), [ED.verifier_key, PQ.verifier_key])
            except VerifierError:
                continue
            assert len(result.verified) == 1
            assert len(result.unknown) == 1


def test_every_altered_byte_of_the_body_fails_under_the_mldsa44_key_alone(signed: bytes) -> None:
    text_end = signed.index(b"\n\n")
    for i in range(text_end):
        altered = bytearray(signed)
        altered[i] ^= 0x01
        with pytest.raises(VerifierError):
            open_checkpoint(bytes(altered), [PQ.verifier_key])


def test_extension_lines_only_an_mldsa44_signature_covers_are_refused() -> None:
    checkpoint = Checkpoint("ledger.example/logs/acme", 1, b"\x01" * 32, ("unsigned claim",))
    note = sign_checkpoint(checkpoint, [ED, PQ], SIGNED_AT).to_bytes()
    assert open_checkpoint(note, [ED.verifier_key]).checkpoint.extensions == ("unsigned claim",)
    with pytest.raises(VerifierError, match="extension lines are not covered"):
        open_checkpoint(note, [PQ.verifier_key])


def test_a_note_that_is_not_a_checkpoint_is_refused() -> None:
    note = Note("hello\n", sign_checkpoint(parse_checkpoint(C2SP["text"]), [ED], 0).signatures)
    with pytest.raises(VerifierError, match="checkpoint has 1 lines"):
        open_checkpoint(note.to_bytes(), [ED.verifier_key])


def test_the_signed_note_text_is_the_checkpoint_text(signed: bytes) -> None:
    assert parse_note(signed).text == open_checkpoint(signed, [ED.verifier_key]).checkpoint.text


# ---- key validity windows ----------------------------------------------------------------------------


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def test_key_valid_at_is_the_half_open_window() -> None:
    window = KeyWindow(ED.verifier_key, _at(100), _at(200))
    assert not key_valid_at(window, _at(99))
    assert key_valid_at(window, _at(100))
    assert key_valid_at(window, _at(199))
    assert not key_valid_at(window, _at(200))
    assert key_valid_at(KeyWindow(ED.verifier_key, _at(100)), _at(10**10))


def test_a_checkpoint_signed_by_a_retired_key_after_its_retirement_is_refused(signed: bytes) -> None:
    opened = open_checkpoint(signed, [ED.verifier_key, PQ.verifier_key])
    current = [KeyWindow(k, _at(SIGNED_AT - 10)) for k in (ED.verifier_key, PQ.verifier_key)]
    check_key_windows(opened, current)  # the ML-DSA-44 time is inside the window
    retired = [
        KeyWindow(k, _at(SIGNED_AT - 10), _at(SIGNED_AT - 1)) for k in (ED.verifier_key, PQ.verifier_key)
    ]
    with pytest.raises(
        VerifierError, match=r"signed at 2027-01-15T08:00:00\+00:00 by ledger\.example/checkpoints\+"
    ):
        check_key_windows(opened, retired)


def test_a_verifier_with_only_the_ed25519_key_passes_the_signing_time(signed: bytes) -> None:
    opened = open_checkpoint(signed, [ED.verifier_key])
    window = [KeyWindow(ED.verifier_key, _at(SIGNED_AT - 10), _at(SIGNED_AT + 10))]
    with pytest.raises(VerifierError, match="no signing time is known"):
        check_key_windows(opened, window)
    check_key_windows(opened, window, signed_at=_at(SIGNED_AT))
    with pytest.raises(VerifierError, match="valid only from"):
        check_key_windows(opened, window, signed_at=_at(SIGNED_AT + 10))
