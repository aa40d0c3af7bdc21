"""``ledger erase`` as an operator runs it, on the embedded default, after ``ledger demo``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from ledger.domain.envelope import validate_event
from ledger.runtime import open_ledger
from ledger.settings import Settings
from tests.e2e.test_cli import LEDGER, env_for, run
from tests.factories import example_event

SUBJECT = "rad-00"  # a physician of the synthetic project: their accesses carry sealed source addresses
ERASE = ("erase", "--tenant", "acme", "--subject", SUBJECT, "--approver", "dpo-02", "--requested-by", "dpo-01",
         "--reason", "End of contract; the reader asked to be forgotten.")  # fmt: skip


def erase(home: Path, *extra: str, answer: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*LEDGER, *ERASE, *extra], env=env_for(home), input=answer, capture_output=True, text=True,
        timeout=300, check=False,
    )  # fmt: skip


def verified(home: Path) -> dict:
    result = run(home, "verify", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report: dict = json.loads(result.stdout)
    return report


def test_erase_asks_first_then_erases_and_the_ledger_still_verifies(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "demo", "--events", "300").returncode == 0

    declined = erase(home, answer="rad-01\n")
    assert declined.returncode == 1, declined.stderr
    assert "deletes key" in declined.stderr
    assert "nothing was erased" in declined.stderr

    done = erase(home, "--erasure-id", "era-e2e-1", answer=f"{SUBJECT}\n")
    assert done.returncode == 0, done.stderr
    assert f"erased subject {SUBJECT!r} of tenant 'acme': key " in done.stdout
    assert "now read [erased]" in done.stdout
    assert "recorded erasure.executed ledger:erasure:era-e2e-1 at acme#300" in done.stdout

    report = verified(home)
    assert report["intact"] is True
    assert report["events_checked"] == 301

    again = erase(home, "--yes", "--json", "--erasure-id", "era-e2e-1")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["receipt"]["duplicate"] is True
    other = erase(home, "--yes", "--erasure-id", "era-e2e-2")
    assert other.returncode == 2
    assert "erasure 'era-e2e-1' deleted it" in other.stderr


def test_a_legal_hold_refuses_it_naming_the_hold_and_nothing_is_erased(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "demo", "--events", "300").returncode == 0
    hold = example_event("retention.hold_placed", tenant="acme", data_hold_id="hold-e2e",
                         data_scope={"log": "acme"})  # fmt: skip
    with open_ledger(Settings(home=home)) as ledger:
        ledger.appender.append([validate_event(hold)])

    refused = erase(home, "--yes")

    assert refused.returncode == 2
    assert "legal hold 'hold-e2e' covers records of subject 'rad-00'" in refused.stderr
    assert "Nothing was erased" in refused.stderr
    assert verified(home)["events_checked"] == 301  # the hold, and no erasure
