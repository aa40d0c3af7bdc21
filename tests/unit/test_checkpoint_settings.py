"""The checkpoint settings: defaults under LEDGER_HOME, and values refused at start naming the variable."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.domain.errors import ConfigurationError
from ledger.settings import Settings
from ledger.verifier.keys import COSIGNATURE_ED25519, ED25519, SeedSigner


def test_the_defaults_live_under_ledger_home(tmp_path: Path) -> None:
    settings = Settings.from_env({"LEDGER_HOME": str(tmp_path)})
    assert settings.checkpoints.deployment == "ledger.local"
    assert (settings.checkpoints.every, settings.checkpoints.seconds) == (1000, 60.0)
    assert settings.checkpoint_dir == tmp_path / "checkpoints"
    assert settings.checkpoint_key_file == tmp_path / "keys" / "checkpoint-keys.json"
    assert settings.checkpoints.witness_keys == ()


def test_witness_keys_are_read_comma_separated() -> None:
    a, b = (SeedSigner.generate(f"w{i}.example", COSIGNATURE_ED25519) for i in (1, 2))
    settings = Settings.from_env({"LEDGER_WITNESS_KEYS": f" {a.vkey} ,{b.vkey}"})
    assert settings.checkpoints.witness_keys == (a.vkey, b.vkey)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"LEDGER_DEPLOYMENT": "my ledger"}, "LEDGER_DEPLOYMENT"),
        ({"LEDGER_DEPLOYMENT": "a+b"}, "LEDGER_DEPLOYMENT"),
        ({"LEDGER_DEPLOYMENT": "x" * 65}, "LEDGER_DEPLOYMENT"),  # key ids would outgrow ledger.key_rotated
        ({"LEDGER_DEPLOYMENT": "mrn-ledger1"}, "LEDGER_DEPLOYMENT"),  # the screen would refuse its records
        ({"LEDGER_CHECKPOINT_EVERY": "0"}, "LEDGER_CHECKPOINT_EVERY"),
        ({"LEDGER_CHECKPOINT_SECONDS": "0"}, "LEDGER_CHECKPOINT_SECONDS"),
        ({"LEDGER_CHECKPOINT_SECONDS": "soon"}, "LEDGER_CHECKPOINT_SECONDS"),
        ({"LEDGER_WITNESS_KEYS": "not-a-key"}, "LEDGER_WITNESS_KEYS"),
        ({"LEDGER_WITNESS_KEYS": SeedSigner.generate("log.example", ED25519).vkey}, "LEDGER_WITNESS_KEYS"),
    ],
)
def test_unusable_values_are_refused_naming_the_variable(env: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        Settings.from_env(env)
