"""``python -m ledger.verifier`` and ``ledger verify-bundle`` on a bundle file, as an auditor runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.unit.test_bundle import GOOD, KEYS, LOG

LEDGER = Path(sys.executable).with_name("ledger")


def _run(*args: str | Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LEDGER_HOME": str(home)}
    return subprocess.run(
        [*map(str, args)], capture_output=True, text=True, timeout=120, env=env, check=False
    )


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    good = tmp_path / "good.json"
    good.write_bytes(GOOD)
    bad = tmp_path / "bad.json"
    doc = json.loads(GOOD)
    doc["events"][0]["inclusion"], doc["events"][2]["inclusion"] = (
        doc["events"][2]["inclusion"],
        doc["events"][0]["inclusion"],
    )
    bad.write_text(json.dumps(doc))
    junk = tmp_path / "junk.json"
    junk.write_text("not json")
    return {"good": good, "bad": bad, "junk": junk}


def test_python_m_ledger_verifier_exits_0_1_2(files: dict[str, Path], tmp_path: Path) -> None:
    ok = _run(sys.executable, "-m", "ledger.verifier", files["good"], home=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.strip().splitlines()[-1].startswith("VERIFIED: 5 event(s)")
    bad = _run(sys.executable, "-m", "ledger.verifier", files["bad"], home=tmp_path)
    assert bad.returncode == 1
    assert (
        "FAILED  events[0] (acme@3) inclusion: inclusion proof does not lead to the root of checkpoint acme@5"
        in bad.stdout
    )
    junk = _run(sys.executable, "-m", "ledger.verifier", files["junk"], home=tmp_path)
    assert junk.returncode == 2
    assert "the bundle is not JSON" in junk.stdout
    missing = _run(sys.executable, "-m", "ledger.verifier", tmp_path / "nope.json", home=tmp_path)
    assert missing.returncode == 2
    assert "cannot read" in missing.stderr


def test_json_output_and_pinned_keys(files: dict[str, Path], tmp_path: Path) -> None:
    done = _run(
        sys.executable,
        "-m",
        "ledger.verifier",
        files["good"],
        "--key",
        KEYS.mldsa44.vkey,
        "--json",
        home=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["verified"] is True
    assert report["key_source"] == "pinned-checkpoints"  # the ML-DSA-44 key alone: the seal is Ed25519
    bad_key = _run(sys.executable, "-m", "ledger.verifier", files["good"], "--key", "nonsense", home=tmp_path)
    assert bad_key.returncode == 2
    assert "--key 'nonsense'" in bad_key.stderr


def test_ledger_verify_bundle(files: dict[str, Path], tmp_path: Path) -> None:
    assert LOG.name == "acme"
    ok = _run(LEDGER, "verify-bundle", files["good"], "--key", KEYS.ed25519.vkey, home=tmp_path)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "origin proven" in ok.stdout
    bad = _run(LEDGER, "verify-bundle", files["bad"], home=tmp_path)
    assert bad.returncode == 1
    assert "FAILED  events[2] (acme@5) inclusion" in bad.stdout
