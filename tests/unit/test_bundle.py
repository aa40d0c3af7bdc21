"""Evidence bundles: built from in-memory logs, verified offline, every tampering named in the report."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.bundles import build_bundle, encode_bundle
from ledger.domain.errors import ParameterInvalid
from ledger.verifier.bundle import BundleReport, verify_bundle
from ledger.verifier.bundle_format import (
    BundleUnusable,
    canonical_json,
    member_digests,
    read_bundle,
    seal_text,
)
from ledger.verifier.keys import KeyWindow
from ledger.verifier.note import Note, sign_text
from tests.bundle_logs import T0, WITNESS, KeyGeneration, MemoryLog, annotation, filled_log, make_bundle

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "ledger" / "verifier" / "bundle.schema.json").read_text())
KEYS = KeyGeneration.make("gen1")
LOG = filled_log("acme", 12)
C5 = LOG.checkpoint(5, KEYS, T0 + timedelta(minutes=1))
C12 = LOG.checkpoint(12, KEYS, T0 + timedelta(minutes=2), witness=WITNESS)
GOOD = make_bundle(LOG, [3, 4, 5, 6, 7], [C5, C12], KEYS, witness_keys=[WITNESS])


def _failures(report: BundleReport) -> list[str]:
    return [f"{c.part} {c.check}: {c.detail}" for c in report.failures]


def _doc(data: bytes = GOOD) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(data)
    return doc


def _reseal(doc: dict[str, Any], keys: KeyGeneration = KEYS) -> bytes:
    """The bundle with its seal made again over changed members: what a forger holding the key would do."""
    text = seal_text(member_digests(doc))
    doc["seal"] = Note(text, (sign_text(text, keys.ed25519),)).to_bytes().decode()
    return encode_bundle(doc)


# ---- a good bundle --------------------------------------------------------------------------------------


def test_a_good_bundle_verifies_under_its_own_keys_and_says_they_prove_integrity_only() -> None:
    report = verify_bundle(GOOD)
    assert report.verified, _failures(report)
    assert report.key_source == "bundle"
    assert "integrity only" in report.summary
    checks = {(c.part, c.check) for c in report.checks}
    assert ("events[2] (acme@5)", "inclusion") in checks
    assert ("consistency[0] (acme@5 -> acme@12)", "consistency") in checks
    assert ("checkpoints[1] (acme@12)", "witnesses") in checks
    assert ("seal", "signature") in checks


def test_the_bundle_file_is_rfc8785_and_valid_against_the_committed_schema() -> None:
    doc = _doc()
    assert rfc8785.dumps(doc) == GOOD  # the independent JCS implementation writes the same bytes
    jsonschema.validate(doc, SCHEMA)


def test_each_event_is_proven_against_the_smallest_cited_checkpoint_holding_it() -> None:
    assert [e["tree_size"] for e in _doc()["events"]] == [5, 5, 12, 12, 12]


@pytest.mark.parametrize("pinned", ["both", "ed25519", "mldsa44"])
def test_pinning_either_key_alone_verifies_and_proves_origin(pinned: str) -> None:
    keys = {
        "both": [KEYS.ed25519.verifier_key, KEYS.mldsa44.verifier_key],
        "ed25519": [KEYS.ed25519.verifier_key],
        "mldsa44": [KEYS.mldsa44.verifier_key],
    }[pinned]
    report = verify_bundle(GOOD, trusted_keys=keys)
    assert report.verified, _failures(report)
    if pinned == "mldsa44":  # the seal is Ed25519: its claims rest on a key the bundle supplies
        assert report.key_source == "pinned-checkpoints"
        assert "origin proven" not in report.summary
        assert "pin the ledger's Ed25519 key too" in report.summary
    else:
        assert report.key_source == "pinned"
        assert "origin proven" in report.summary


def test_only_the_ed25519_key_pinned_takes_the_signing_time_from_the_bundle() -> None:
    report = verify_bundle(GOOD, trusted_keys=[KEYS.ed25519.verifier_key])
    windows = [c.detail for c in report.checks if c.check == "key window"]
    assert all("as the bundle states" in w for w in windows), windows


def test_an_erased_subjects_sealed_values_stay_sealed_and_the_bundle_still_verifies() -> None:
    log = MemoryLog("acme")
    sealed = {"sealed": {"kid": "subject-key-9", "alg": "A256GCM", "nonce": "AAAA", "ct": "c2VjcmV0"}}
    log.append(annotation(0, comment=sealed))
    data = make_bundle(log, [0], [log.checkpoint(1, KEYS, T0)], KEYS)
    assert verify_bundle(data).verified  # no subject key is needed, and none exists any more
    canonical = base64.b64decode(_doc(data)["events"][0]["canonical"])
    assert b'"ct":"c2VjcmV0"' in canonical


# ---- tampering ----------------------------------------------------------------------------------------


def test_a_proof_swapped_between_two_events_fails_naming_both() -> None:
    doc = _doc()
    events = doc["events"]
    events[2]["inclusion"], events[3]["inclusion"] = events[3]["inclusion"], events[2]["inclusion"]
    report = verify_bundle(_reseal(doc))
    failed = _failures(report)
    assert len(failed) == 2, failed
    assert failed[0].startswith(
        "events[2] (acme@5) inclusion: inclusion proof does not lead to the root of checkpoint acme@12"
    )
    assert failed[1].startswith(
        "events[3] (acme@6) inclusion: inclusion proof does not lead to the root of checkpoint acme@12"
    )


def test_a_swapped_proof_without_a_new_seal_also_fails_the_seal_naming_the_member() -> None:
    doc = _doc()
    doc["events"][0]["inclusion"], doc["events"][1]["inclusion"] = (
        doc["events"][1]["inclusion"],
        doc["events"][0]["inclusion"],
    )
    failed = _failures(verify_bundle(encode_bundle(doc)))
    assert "seal digests: member(s) events differ from what the seal attests" in failed


def test_canonical_bytes_that_name_another_position_fail() -> None:
    doc = _doc()
    doc["events"][0]["position"] = 4  # the row of position 3, claimed at 4
    doc["events"][1]["position"] = 3
    failed = _failures(verify_bundle(_reseal(doc)))
    assert any(
        f.startswith("events[0] (acme@4) canonical bytes: position is 3, the bundle says 4") for f in failed
    )
    assert any(f.startswith("events[0] (acme@4) inclusion") for f in failed)


def test_a_checkpoint_signed_by_an_unknown_key_fails_naming_it() -> None:
    stranger = KeyGeneration.make("stranger")
    forged = LOG.checkpoint(12, stranger, T0 + timedelta(minutes=2))
    data = make_bundle(LOG, [6], [forged], KEYS)  # the bundle lists KEYS, not the stranger's
    failed = _failures(verify_bundle(data))
    assert len(failed) == 1, failed
    assert failed[0].startswith("checkpoints[0] (acme@12) signature: no signature by a known key")
    assert stranger.ed25519.verifier_key.label in failed[0]


def test_pinned_keys_refuse_a_bundle_made_and_sealed_by_other_keys() -> None:
    stranger = KeyGeneration.make("stranger")
    data = make_bundle(LOG, [6], [LOG.checkpoint(12, stranger, T0)], stranger)
    assert verify_bundle(data).verified  # consistent in itself
    report = verify_bundle(data, trusted_keys=[KEYS.ed25519.verifier_key, KEYS.mldsa44.verifier_key])
    failed = _failures(report)
    assert [f.split(":")[0] for f in failed] == ["checkpoints[0] (acme@12) signature", "seal signature"]


def test_a_retired_key_used_after_its_retirement_is_refused() -> None:
    retired_at = T0 + timedelta(minutes=10)
    old = KeyGeneration.make("gen1", T0, retired_at)
    new = KeyGeneration.make("gen2", retired_at)
    before = LOG.checkpoint(5, old, T0 + timedelta(minutes=5))
    late = LOG.checkpoint(12, old, T0 + timedelta(minutes=20))  # signed by a thief of the old key
    data = make_bundle(LOG, [3, 8], [before, late], new, extra_windows=old.windows())
    failed = _failures(verify_bundle(data))
    assert len(failed) == 1, failed
    assert failed[0].startswith(
        "checkpoints[1] (acme@12) key window: checkpoint ledger.example/logs/acme at size 12 was signed at 2027-01-04T09:20:00"
    )
    # the same checkpoint with only the Ed25519 key pinned: the window comes from the bundle, still refused
    pinned = verify_bundle(data, trusted_keys=[old.ed25519.verifier_key, new.ed25519.verifier_key])
    assert [f.split(":")[0] for f in _failures(pinned)] == ["checkpoints[1] (acme@12) key window"]
    # and an auditor's own window for the key is the one applied
    own = [KeyWindow(old.ed25519.verifier_key, T0, retired_at), new.ed25519.verifier_key]
    assert not verify_bundle(data, trusted_keys=own).verified


def test_checkpoints_before_and_after_a_rotation_all_verify() -> None:
    retired_at = T0 + timedelta(minutes=10)
    old, new = KeyGeneration.make("gen1", T0, retired_at), KeyGeneration.make("gen2", retired_at)
    cps = [
        LOG.checkpoint(5, old, T0 + timedelta(minutes=5)),
        LOG.checkpoint(12, new, T0 + timedelta(minutes=20)),
    ]
    data = make_bundle(LOG, [3, 8], cps, new, extra_windows=old.windows())
    assert verify_bundle(data).verified


def test_a_signed_at_that_contradicts_the_mldsa_timestamp_fails() -> None:
    doc = _doc()
    doc["checkpoints"][0]["signed_at"] = "2027-01-04T08:00:00Z"
    failed = _failures(verify_bundle(_reseal(doc)))
    assert failed == [
        "checkpoints[0] (acme@5) signing time: signed_at says 2027-01-04T08:00:00Z, the ML-DSA-44 signature says 2027-01-04T09:01:00Z"
    ]


def test_consecutive_checkpoints_are_checked_consistent_and_a_fork_fails() -> None:
    fork = filled_log("acme", 12)
    fork.rows[2] = LOG.rows[2].replace(b"nodule", b"normal")  # history rewritten below the first checkpoint
    fork_c12 = fork.checkpoint(12, KEYS, T0 + timedelta(minutes=2))
    doc = build_bundle(
        scope={"log": "acme", "from": 6, "to": 7},
        events=[fork.row(6), fork.row(7)],
        checkpoints=[C5, fork_c12],
        keys=KEYS.windows(),
        inclusion=fork.inclusion,
        consistency=fork.consistency,
        sealer=KEYS.ed25519,
        created_at=T0 + timedelta(minutes=3),
    )
    failed = _failures(verify_bundle(encode_bundle(doc)))
    assert len(failed) == 1, failed
    assert failed[0].startswith(
        "consistency[0] (acme@5 -> acme@12) consistency: checkpoint acme@12 does not extend acme@5"
    )


def test_a_missing_consistency_proof_fails_naming_the_two_checkpoints() -> None:
    doc = _doc()
    doc["consistency"] = []
    failed = _failures(verify_bundle(_reseal(doc)))
    assert failed == ["checkpoints acme@5 -> acme@12 consistency: the bundle holds no proof"]


def test_an_event_citing_a_checkpoint_the_bundle_does_not_hold_fails() -> None:
    doc = _doc()
    doc["events"][0]["tree_size"] = 9
    failed = _failures(verify_bundle(_reseal(doc)))
    assert failed == [
        "events[0] (acme@3) inclusion: it cites checkpoint acme@9, which the bundle does not hold"
    ]


def test_an_incomplete_log_range_fails_its_scope() -> None:
    data = make_bundle(LOG, [3, 5], [C12], KEYS, scope={"log": "acme", "from": 3, "to": 5})
    assert _failures(verify_bundle(data)) == [
        "scope completeness: positions 4 of log acme are not in the bundle"
    ]


def test_requested_events_and_releases_must_be_in_the_bundle() -> None:
    ok = make_bundle(LOG, [3], [C12], KEYS, scope={"events": ["evt-acme-0003"]})
    assert verify_bundle(ok).verified
    missing = make_bundle(LOG, [3], [C12], KEYS, scope={"events": ["evt-acme-0003", "evt-acme-0009"]})
    assert _failures(verify_bundle(missing)) == [
        "scope completeness: requested event(s) evt-acme-0009 are not in the bundle"
    ]
    release = make_bundle(LOG, [3], [C12], KEYS, scope={"release": "chest-ct-2026@r1"})
    assert _failures(verify_bundle(release)) == [
        "scope completeness: no dataset.release_created event of chest-ct-2026@r1 is held"
    ]


def test_pinned_witnesses_must_have_cosigned_every_checkpoint() -> None:
    report = verify_bundle(GOOD, witness_keys=[WITNESS.verifier_key])
    assert _failures(report) == [
        "checkpoints[0] (acme@5) witnesses: no cosignature by a pinned witness (witness.example/w1+43fc6e9d)"
    ]
    only_c12 = make_bundle(LOG, [8], [C12], KEYS)
    assert verify_bundle(only_c12, witness_keys=[WITNESS.verifier_key]).verified


def test_a_tampered_cosignature_fails_naming_the_witness() -> None:
    doc = _doc()
    note = doc["checkpoints"][1]["note"]
    last = note.rstrip("\n").rsplit("\n", 1)[1]
    raw = bytearray(base64.b64decode(last.split(" ")[2]))
    raw[-1] ^= 1
    doc["checkpoints"][1]["note"] = note.replace(
        last, f"{last.rsplit(' ', 1)[0]} {base64.b64encode(raw).decode()}"
    )
    failed = _failures(verify_bundle(_reseal(doc)))
    assert len(failed) == 1, failed
    assert failed[0].startswith(
        "checkpoints[1] (acme@12) witnesses: signature 3 (witness.example/w1+43fc6e9d) does not verify"
    )


# ---- one byte changed anywhere ------------------------------------------------------------------------


def _string_paths(value: object, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_paths(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_paths(v, (*path, i))]
    return [path] if isinstance(value, str | int) and not isinstance(value, bool) else []


def _replace(doc: Any, path: tuple[str | int, ...], new: object) -> None:
    for step in path[:-1]:
        doc = doc[step]
    doc[path[-1]] = new


def _named(report: BundleReport, top: str | int) -> bool:
    return any(str(top) in f"{c.part} {c.detail}" for c in report.failures)


SMALL = make_bundle(LOG, [4, 6], [C5, C12], KEYS, witness_keys=[WITNESS])
SMALL_DOC = _doc(SMALL)
VALUES = _string_paths(SMALL_DOC)


@pytest.mark.parametrize("path", VALUES, ids=lambda p: ".".join(map(str, p)))
def test_every_member_changed_fails_or_is_unusable_naming_its_member(path: tuple[str | int, ...]) -> None:
    doc = _doc(SMALL)
    value = doc
    for step in path:
        value = value[step]
    if isinstance(value, int):
        changed: object = value + 1
    else:  # change the first, a middle and the last character in turn: each must be caught
        changed = value
    for at in {0, len(value) // 2, len(value) - 1} if isinstance(value, str) else {0}:
        if isinstance(value, str):
            ch = value[at]
            changed = value[:at] + ("B" if ch != "B" else "C") + value[at + 1 :]
        _replace(doc, path, changed)
        report = verify_bundle(encode_bundle(doc))
        assert not report.verified, path
        assert _named(report, path[0]), (path, _failures(report))
        try:
            jsonschema.validate(doc, SCHEMA)
        except jsonschema.ValidationError:
            assert not report.usable, (path, "the schema refuses it, the hand check must too")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SMALL) - 1), st.integers(1, 255))
def test_any_byte_of_the_file_changed_fails_or_is_unusable(position: int, xor: int) -> None:
    data = bytearray(SMALL)
    data[position] ^= xor
    report = verify_bundle(bytes(data))
    assert not report.verified
    assert report.failures


def test_unusable_input_lists_every_structural_problem() -> None:
    doc = _doc()
    doc["events"][0]["inclusion"][0] = "not base64!"
    doc["keys"][0]["created_at"] = "yesterday"
    doc["extra"] = 1
    report = verify_bundle(canonical_json(doc))
    assert not report.usable
    assert not report.verified
    details = [c.detail for c in report.checks]
    assert details == ["the bundle: unknown member(s) extra"]
    del doc["extra"]
    details = [c.detail for c in verify_bundle(canonical_json(doc)).checks]
    assert any(d.startswith("keys[0].created_at: 'yesterday' does not match") for d in details)
    assert "events[0].inclusion[0] is not valid base64" in details


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"\xff", "the bundle is not UTF-8"),
        (b"[]", "the bundle is not a JSON object"),
        (b'{"format": "ledger-evidence-bundle/v2"}', "format 'ledger-evidence-bundle/v2' is not"),
        (b'{"format": "ledger-evidence-bundle/v1", "format": "x"}', "appears twice"),
        (b'{"format": "ledger-evidence-bundle/v1", "scope": {"item": "\\ud800/x"}}', "lone surrogate"),
    ],
)
def test_what_is_not_a_bundle_is_unusable(data: bytes, problem: str) -> None:
    with pytest.raises(BundleUnusable, match=problem):
        read_bundle(data)
    assert not verify_bundle(data).usable


def test_a_pretty_printed_bundle_reads_the_same() -> None:
    assert verify_bundle(json.dumps(_doc(), indent=2).encode()).verified


def test_the_builder_refuses_an_event_beyond_every_cited_checkpoint() -> None:
    with pytest.raises(ParameterInvalid, match="no cited checkpoint of log 'acme' holds position 7"):
        make_bundle(LOG, [7], [C5], KEYS)
