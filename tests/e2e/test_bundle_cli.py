"""``ledger bundle`` as a user runs it on the embedded default: it writes a bundle that ``ledger verify-bundle``
and ``python -m ledger.verifier`` accept under the keys ``ledger keys list`` prints, says what it wrote,
finds the tenant by itself, refuses to overwrite without --force, and refuses bad scopes naming them."""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_cli import env_for, run


def verifier(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ledger.verifier", *args],
        env=env_for(home),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_bundle_writes_a_file_both_verifiers_accept(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "demo", "--events", "150").returncode == 0
    helped = run(home, "bundle", "--help")
    assert helped.returncode == 0
    for flag in ("--item", "--release", "--events", "--log", "--force", "-o"):
        assert flag in helped.stdout
    out = tmp_path / "range.bundle.json"

    # The first 100 positions: the project's set-up (team, credentials, two guidelines) and its first items.
    made = run(home, "bundle", "--log", "acme", "--from", "0", "--to", "99", "-o", str(out))

    assert made.returncode == 0, made.stderr
    body = out.read_bytes()
    assert f"SHA-256 {hashlib.sha256(body).hexdigest()}" in made.stdout
    assert "100 event(s) of tenant 'acme'" in made.stdout
    assert "ledger.report_generated" in made.stderr
    keys = [line.split()[0] for line in run(home, "keys", "list").stdout.splitlines()]
    pins = [arg for key in keys for arg in ("--key", key)]
    for check in (run(home, "verify-bundle", str(out), *pins), verifier(home, str(out), *pins)):
        assert check.returncode == 0, check.stdout + check.stderr
        assert "VERIFIED: 100 event(s)" in check.stdout
        assert "origin proven" in check.stdout

    refused = run(home, "bundle", "--log", "acme", "--from", "0", "--to", "3", "-o", str(out))
    assert refused.returncode == 2
    assert "--force" in refused.stderr
    assert out.read_bytes() == body

    docs = [json.loads(base64.b64decode(e["canonical"]))["event"] for e in json.loads(body)["events"]]
    dataset, item = next(
        (d["data"]["dataset"], d["data"]["item"]) for d in docs if "item" in d.get("data", {})
    )
    again = run(home, "bundle", "--item", f"{dataset}/{item}", "-o", str(out), "--force")
    assert again.returncode == 0, again.stderr
    assert json.loads(out.read_bytes())["scope"] == {"item": f"{dataset}/{item}"}
    assert verifier(home, str(out), *pins).returncode == 0
    assert list(tmp_path.glob(".*.partial")) == []


def test_bundle_refusals_name_the_option(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run(home, "demo", "--events", "20").returncode == 0
    out = tmp_path / "b.json"

    missing = run(home, "bundle", "--events", "evt-nope,evt-gone", "-o", str(out))
    assert missing.returncode == 2
    assert "evt-nope" in missing.stderr
    assert "evt-gone" in missing.stderr
    unknown_range = run(home, "bundle", "--log", "acme", "--from", "5", "-o", str(out))
    assert unknown_range.returncode == 2
    assert "--to" in unknown_range.stderr
    both = run(home, "bundle", "--item", "a/b", "--release", "a@b", "-o", str(out))
    assert both.returncode == 2
    assert "not allowed with argument" in both.stderr
    assert not out.exists()
