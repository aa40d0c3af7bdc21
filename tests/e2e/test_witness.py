"""``ledger witness`` against a real ``ledger serve`` over real HTTP, as an auditor runs it."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.e2e.test_cli import env_for, home, run, serve_process

__all__ = ["home"]  # the fixture


def test_the_witness_pins_the_keys_cosigns_each_extension_and_its_cosignature_is_recorded(
    home: Path, tmp_path: Path
) -> None:
    key_file, state = tmp_path / "witness.key", tmp_path / "witness-state"
    keygen = run(home, "witness", "keygen", str(key_file), "--name", "witness.example")
    assert keygen.returncode == 0, keygen.stderr
    vkey = keygen.stdout.strip()
    assert vkey.startswith("witness.example+")
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"
    assert run(home, "witness", "keygen", str(key_file), "--name", "x").returncode == 2  # never overwritten

    assert run(home, "demo", "--events", "300").returncode == 0
    assert run(home, "checkpoint", "--log", "acme").returncode == 0
    env = {**env_for(home), "LEDGER_WITNESS_KEYS": vkey, "LEDGER_CHECKPOINT_SECONDS": "3600"}
    with serve_process(home, env) as (_, base):
        token = run(home, "token", "--role", "witness", "--tenant", "acme").stdout.strip()
        witness = [
            "witness",
            base,
            "--state",
            str(state),
            "--log",
            "acme",
            "--key",
            str(key_file),
            "--token",
            token,
        ]

        first = run(home, *witness)
        assert first.returncode == 0, first.stderr
        assert "cosigned size 300 (first checkpoint seen)" in first.stdout
        assert (state / "ledger.vkeys").read_text().count("\n") == 2  # Ed25519 and ML-DSA-44, pinned
        served = httpx.get(f"{base}/v1/logs/acme/checkpoint", headers={"authorization": f"Bearer {token}"})
        assert "\u2014 witness.example " in served.text, "the cosignature is served with the checkpoint"

        assert run(home, "demo", "--events", "200", "--seed", "9").returncode == 0
        assert run(home, "checkpoint", "--log", "acme").returncode == 0
        second = run(home, *witness)
        assert second.returncode == 0, second.stderr
        # 300 events, their checkpoint's event, the cosignature's event, the records of the reads made
        # since (the witness's and this test's), 200 more: the size the log's latest checkpoint has.
        served = httpx.get(f"{base}/v1/logs/acme/checkpoint", headers={"authorization": f"Bearer {token}"})
        size = int(served.text.splitlines()[1])
        assert size > 502
        assert f"cosigned size {size} (extends size 300)" in second.stdout
        again = run(home, *witness)
        assert (again.returncode, "cosigned already" in again.stdout) == (0, True)

        verified = run(home, "verify", "--json", "--against", str(state))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        report = json.loads(verified.stdout)
        assert report["checkpoints_checked"] >= 3  # two on the record, one kept by the witness
        assert report["checkpoint_problems"] == []
