"""A plain `pip install .` must ship every package: setuptools lists them by hand (migrations/ is mapped in)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_under_ledger_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for init in (ROOT / "ledger").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert on_disk <= listed, f"add {sorted(on_disk - listed)} to [tool.setuptools] packages"
    assert {"ledger.migrations", "ledger.migrations.versions"} <= listed


def test_the_bundle_schema_ships_with_the_verifier() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "bundle.schema.json" in package_data["ledger.verifier"]
    assert (ROOT / "ledger" / "verifier" / "bundle.schema.json").is_file()


def test_the_demo_qc_policy_ships_with_the_synthetic_project() -> None:
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "qc-policy.toml" in package_data["ledger.synth"]
    assert (ROOT / "ledger" / "synth" / "qc-policy.toml").is_file()
