"""docs/verification.md's worked example is generated from the golden bundle, which verifies under its pinned keys."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from ledger.verifier.bundle import verify_bundle
from tests.bundle_logs import WITNESS, KeyGeneration

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "assets" / "evidence-bundle" / "example.json"


def _example_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "verification_example", ROOT / "docs" / "verification_example.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_golden_bundle_verifies_under_the_example_keys_pinned() -> None:
    keys = KeyGeneration.make("example")
    report = verify_bundle(
        GOLDEN.read_bytes(),
        trusted_keys=[keys.ed25519.verifier_key, keys.mldsa44.verifier_key],
        witness_keys=[WITNESS.verifier_key],
    )
    assert report.verified, [c.line for c in report.failures]
    assert report.key_source == "pinned"


def test_the_worked_example_in_the_doc_is_the_one_the_golden_bundle_gives() -> None:
    example = _example_module()
    doc = (ROOT / "docs" / "verification.md").read_text()
    assert example.render(doc, GOLDEN.read_bytes()) == doc, "run python docs/verification_example.py"


def test_a_new_example_bundle_from_the_same_seeds_differs_only_in_mldsa_signatures() -> None:
    example = _example_module()
    import json

    old, new = json.loads(GOLDEN.read_bytes()), json.loads(example.new_bundle())
    for doc in (old, new):
        del doc["seal"]
        for cp in doc["checkpoints"]:
            lines = cp["note"].split("\n")
            cp["note"] = "\n".join(line for line in lines if len(line) < 1000)  # drop the ML-DSA-44 line
    assert old == new
