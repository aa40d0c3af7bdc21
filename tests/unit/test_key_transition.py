"""Key transitions: after a rotation, each generation is vouched for by the one before, so a verifier that
pinned old keys follows the ledger to its new ones, and nobody else's note moves it anywhere."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from ledger.crypto.checkpoint_keys import LocalCheckpointKeyFile
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import ED25519, SeedSigner
from ledger.verifier.transition import endorsed_keys, follow_transitions, sign_transition

NAME = "ledger.example/checkpoints"


def _rotated(path: Path, times: int) -> LocalCheckpointKeyFile:
    keys = LocalCheckpointKeyFile(path, NAME, clock=lambda: datetime(2027, 1, 1, tzinfo=UTC))
    for i in range(times):
        keys.rotate(datetime(2027, 2 + i, 1, tzinfo=UTC))
    return keys


def _public(keys: LocalCheckpointKeyFile, generation: int) -> list:
    return [w.key for w in keys.verifier_keys()][2 * (generation - 1) : 2 * generation]


def test_each_generation_is_vouched_for_by_the_one_before(tmp_path: Path) -> None:
    keys = _rotated(tmp_path / "keys.json", 2)
    first, second = keys.transitions()
    assert endorsed_keys(first, _public(keys, 1)) == _public(keys, 2)
    assert endorsed_keys(second, _public(keys, 2)) == _public(keys, 3)
    with pytest.raises(VerifierError, match="no signature by a known key"):
        endorsed_keys(second, _public(keys, 1))  # generation 1 vouched only for 2
    assert keys.transitions() == (first, second)  # deterministic: the same notes from the same file


def test_a_verifier_that_pinned_the_first_keys_follows_every_rotation_in_any_order(tmp_path: Path) -> None:
    keys = _rotated(tmp_path / "keys.json", 3)
    pinned = _public(keys, 1)
    followed = follow_transitions(pinned, reversed(keys.transitions()))
    assert followed == [w.key for w in keys.verifier_keys()]


def test_a_transition_signed_by_any_other_key_adds_nothing(tmp_path: Path) -> None:
    keys = _rotated(tmp_path / "keys.json", 1)
    stranger = SeedSigner.generate(NAME, ED25519)  # even under the ledger's own key name
    forged = sign_transition(2, [stranger.verifier_key], stranger)
    assert follow_transitions(_public(keys, 1), [forged]) == _public(keys, 1)
    altered = keys.transitions()[0].replace(b"generation 2", b"generation 3")
    assert follow_transitions(_public(keys, 1), [altered, b"not a note"]) == _public(keys, 1)


def test_a_signed_note_that_is_not_a_transition_is_refused(tmp_path: Path) -> None:
    from ledger.verifier.note import format_note, sign_text

    signer = SeedSigner.generate(NAME, ED25519)
    note = format_note("something else\nentirely\n", [sign_text("something else\nentirely\n", signer)])
    with pytest.raises(VerifierError, match="not a ledger-key-transition/v1 statement"):
        endorsed_keys(note, [signer.verifier_key])
