"""The local checkpoint key file: created 0600, two keys per generation, rotation keeps old checkpoints verifiable."""

from __future__ import annotations

import json
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.crypto.checkpoint_keys import LocalCheckpointKeyFile, default_key_file
from ledger.domain.errors import ConfigurationError, KeyUnavailable
from ledger.verifier.checkpoint import Checkpoint, check_key_windows, open_checkpoint, sign_checkpoint
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import COSIGNATURE_MLDSA44, ED25519, parse_vkey

NAME = "ledger.example/checkpoints"
T0 = datetime(2027, 1, 1, 12, 0, 0, 400_000, tzinfo=UTC)
T1 = datetime(2027, 6, 1, 12, 0, 0, 700_000, tzinfo=UTC)


def _keys(path: Path, now: datetime = T0) -> LocalCheckpointKeyFile:
    return LocalCheckpointKeyFile(path, NAME, clock=lambda: now)


def _sign(keys: LocalCheckpointKeyFile, at: datetime, size: int = 5) -> bytes:
    checkpoint = Checkpoint("ledger.example/logs/acme", size, bytes([size]) * 32)
    return sign_checkpoint(checkpoint, keys.signers(), int(at.timestamp())).to_bytes()


def test_the_key_file_is_created_0600_under_ledger_home(tmp_path: Path) -> None:
    path = default_key_file(tmp_path)
    assert path == tmp_path / "keys" / "checkpoint-keys.json"
    keys = _keys(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [s.signature_type for s in keys.signers()] == [ED25519, COSIGNATURE_MLDSA44]
    assert {s.name for s in keys.signers()} == {NAME}
    assert keys.current.number == 1
    assert keys.current.created_at == datetime(2027, 1, 1, 12, 0, 0, tzinfo=UTC)  # whole seconds


def test_reopening_reads_the_same_keys(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    first = _keys(path)
    again = _keys(path)
    assert [s.vkey for s in first.signers()] == [s.vkey for s in again.signers()]


def test_the_vkeys_parse_back_to_the_signers_keys(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "k.json")
    for signer in keys.signers():
        assert parse_vkey(signer.vkey) == signer.verifier_key


def test_another_key_name_is_refused_for_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    _keys(path)
    with pytest.raises(ConfigurationError, match=r"holds keys named 'ledger\.example/checkpoints'"):
        LocalCheckpointKeyFile(path, "other.example/checkpoints")
    with pytest.raises(ConfigurationError, match="not valid"):
        LocalCheckpointKeyFile(tmp_path / "x.json", "has space")


def test_a_damaged_key_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(KeyUnavailable, match="format"):
        _keys(path)
    path.write_text("not json")
    with pytest.raises(KeyUnavailable, match="unreadable"):
        _keys(path)


def test_rotation_retires_the_old_generation_and_lists_both(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "k.json")
    old = keys.current
    new = keys.rotate(T1)
    assert new.number == 2
    assert stat.S_IMODE((tmp_path / "k.json").stat().st_mode) == 0o600
    assert new.created_at == datetime(2027, 6, 1, 12, 0, 0, tzinfo=UTC)
    windows = keys.verifier_keys()
    assert [(w.key.signature_type, w.created_at, w.retired_at) for w in windows] == [
        (ED25519, old.created_at, datetime(2027, 6, 1, 12, 0, 1, tzinfo=UTC)),
        (COSIGNATURE_MLDSA44, old.created_at, datetime(2027, 6, 1, 12, 0, 1, tzinfo=UTC)),
        (ED25519, new.created_at, None),
        (COSIGNATURE_MLDSA44, new.created_at, None),
    ]
    assert {s.vkey for s in old.signers}.isdisjoint({s.vkey for s in new.signers})


def test_checkpoints_before_and_after_rotation_all_verify(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "k.json")
    before = _sign(keys, datetime(2027, 3, 1, tzinfo=UTC), size=5)
    keys.rotate(T1)
    after = _sign(keys, datetime(2027, 7, 1, tzinfo=UTC), size=9)
    windows = keys.verifier_keys()
    published = [w.key for w in windows]
    for note in (before, after):
        signed = open_checkpoint(note, published)
        assert len(signed.log_signatures) == 2
        check_key_windows(signed, windows)


def test_a_retired_key_signing_after_its_retirement_is_refused(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "k.json")
    stolen = keys.signers()
    keys.rotate(T1)
    late = Checkpoint("ledger.example/logs/acme", 11, b"\x0b" * 32)
    note = sign_checkpoint(late, stolen, int(datetime(2027, 8, 1, tzinfo=UTC).timestamp())).to_bytes()
    signed = open_checkpoint(note, [w.key for w in keys.verifier_keys()])  # the signatures themselves verify
    with pytest.raises(
        VerifierError, match=r"signed at 2027-08-01T00:00:00\+00:00 .* until 2027-06-01T12:00:01"
    ):
        check_key_windows(signed, keys.verifier_keys())


def test_a_signature_in_the_rotation_second_is_accepted_under_either_generation(tmp_path: Path) -> None:
    keys = _keys(tmp_path / "k.json")
    old = keys.signers()
    keys.rotate(T1)
    same_second = int(T1.timestamp())
    checkpoint = Checkpoint("ledger.example/logs/acme", 3, b"\x03" * 32)
    for signers in (old, keys.signers()):
        signed = open_checkpoint(
            sign_checkpoint(checkpoint, signers, same_second).to_bytes(),
            [w.key for w in keys.verifier_keys()],
        )
        check_key_windows(signed, keys.verifier_keys())


def test_another_process_rotating_is_seen_at_the_next_signing(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    server = _keys(path)
    first = [s.vkey for s in server.signers()]
    _keys(path).rotate(T1)  # `ledger keys rotate` in another process
    assert [s.vkey for s in server.signers()] != first
    assert server.current.number == 2


def test_the_file_holds_private_seeds_only_for_what_it_lists(tmp_path: Path) -> None:
    path = tmp_path / "k.json"
    keys = _keys(path)
    keys.rotate(T1)
    doc = json.loads(path.read_text())
    assert doc["format"] == "ledger-checkpoint-keys/1"
    assert [g["generation"] for g in doc["generations"]] == [1, 2]
    assert doc["generations"][0]["retired_at"] == "2027-06-01T12:00:01+00:00"
    assert not list(tmp_path.glob(".k.json.*"))  # no temporary file left behind
