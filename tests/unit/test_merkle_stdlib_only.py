"""The Merkle math imports nothing beyond the standard library, so the offline verifier can ship it as is."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

# Run in a fresh interpreter: this one has loaded the whole test suite's dependencies already. What the
# interpreter loads at start-up (site, .pth hooks) is subtracted, so only the import itself is judged.
_PROBE = """
import json, sys
before = set(sys.modules)
import {module}
loaded = sorted(set(sys.modules) - before)
print(json.dumps({{"loaded": loaded, "stdlib": sorted(sys.stdlib_module_names)}}))
"""


def _modules_loaded_by(module: str) -> tuple[list[str], set[str]]:
    """Every module importing ``module`` loads in a fresh interpreter, and the standard library's names."""
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(done.stdout)
    return report["loaded"], set(report["stdlib"])


@pytest.mark.parametrize(
    "module",
    [
        "ledger.domain.merkle",
        "ledger.verifier.bundle",
        "ledger.verifier.transition",
        "ledger.verifier.bundle_format",
        "ledger.verifier.__main__",
    ],
)
def test_importing_loads_no_third_party_module(module: str) -> None:
    loaded, stdlib = _modules_loaded_by(module)
    assert module in loaded  # the probe did import it, fresh
    # sysconfig's data module is named after the platform, so sys.stdlib_module_names cannot list it.
    top_level = {name.split(".")[0] for name in loaded if not name.startswith("_sysconfigdata_")}
    # The verifier may use ``cryptography`` and what it loads itself (its Rust extension registers its
    # OpenSSL bindings as a top-level ``_openssl``), nothing else.
    crypto = {"cryptography", "_openssl", "_rust", "_cffi_backend", "cffi"}
    allowed = {"ledger"} | (crypto if module.startswith("ledger.verifier") else set())
    third_party = sorted(top_level - stdlib - allowed)
    assert third_party == [], f"{module} loads {third_party} (all loaded: {loaded})"
    # And of the ledger itself only what an auditor copies with the verifier: its package, and the two
    # standard-library-only domain modules it shares (the RFC 9162 math, which log an event belongs to).
    ours = {name for name in loaded if name.split(".")[0] == "ledger"}
    shared = {"ledger", "ledger.domain", "ledger.domain.merkle", "ledger.domain.logs"}
    assert {n for n in ours if n not in shared and not n.startswith("ledger.verifier")} == set()
