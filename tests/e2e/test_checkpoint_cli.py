"""``ledger checkpoint``, ``ledger keys rotate|list`` and the checkpointer of ``ledger serve``, as a user
runs them on the embedded default: what they print, what they publish, and that it verifies."""

from __future__ import annotations

from pathlib import Path

import httpx

from ledger.verifier.checkpoint import open_checkpoint
from ledger.verifier.keys import parse_vkey
from tests.e2e.test_cli import env_for, run, serve_process, until
from tests.factories import example_event


def published(home: Path, log: str) -> dict[int, bytes]:
    folder = home / "checkpoints" / log
    if not folder.is_dir():
        return {}
    return {int(p.name.split(".")[0]): p.read_bytes() for p in folder.glob("*.checkpoint")}


def listed_keys(home: Path) -> list:
    result = run(home, "keys", "list")
    assert result.returncode == 0, result.stderr
    return [parse_vkey(line.split()[0]) for line in result.stdout.splitlines()]


def test_checkpoint_signs_prints_and_publishes_then_rotation_keeps_old_ones_verifying(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "demo", "--events", "120").returncode == 0
    helped = run(home, "checkpoint", "--help")
    assert "LEDGER_CHECKPOINT_DIR" in helped.stdout

    first = run(home, "checkpoint", "--log", "acme")
    assert first.returncode == 0, first.stderr
    assert "signed ledger.local/logs/acme at size 120" in first.stdout
    assert "published to" in first.stdout
    again = run(home, "checkpoint")
    assert "acme: nothing new since the checkpoint at size 120" in again.stdout

    rotated = run(home, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    old_line, new_line = rotated.stdout.splitlines()
    assert old_line.startswith("retired ledger.local/checkpoints+")
    assert new_line.startswith("new     ledger.local/checkpoints+")
    assert run(home, "demo", "--events", "30", "--seed", "9").returncode == 0
    second = run(home, "checkpoint", "--log", "acme")
    assert "signed ledger.local/logs/acme at size 151" in second.stdout, second.stdout + second.stderr

    keys = listed_keys(home)
    assert len(keys) == 4
    notes = published(home, "acme")
    assert sorted(notes) == [120, 151]
    for size, note in notes.items():
        opened = open_checkpoint(note, keys)
        assert opened.checkpoint.size == size
    assert "ledger.local/checkpoints" in (home / "keys" / "checkpoint-keys.json").read_text()


def test_serve_signs_checkpoints_by_itself(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "demo", "--events", "40").returncode == 0
    env = {**env_for(home), "LEDGER_CHECKPOINT_SECONDS": "0.5", "LEDGER_CHECKPOINT_EVERY": "5"}
    with serve_process(home, env) as (serve, base):
        until(lambda: 40 in published(home, "acme"), "ledger serve signed no checkpoint", serve)
        token = run(home, "token", "--role", "ingest", "--tenant", "acme").stdout.strip()
        body = [example_event("annotation.created", tenant="acme") for _ in range(6)]
        posted = httpx.post(
            f"{base}/v1/events",
            json=body,
            headers={
                "authorization": f"Bearer {token}",
                "content-type": "application/cloudevents-batch+json",
            },
        )
        assert posted.status_code == 201, posted.text
        # 40, the first checkpoint's event, 6 more
        until(lambda: 47 in published(home, "acme"), "ledger serve did not sign the grown log", serve)
    assert serve.returncode == 0
    keys = listed_keys(home)
    for note in published(home, "acme").values():
        signed = open_checkpoint(note, keys)
        assert signed.signed_at is not None
    assert sorted(published(home, "acme")) == [40, 47]  # an idle log is not signed again
