"""Canonical bytes and content digests are computed once on the way in, and stay byte for byte what they were.

Validation keeps the RFC 8785 bytes of each event as received (``ReceivedEvent.canonical``); the append
service's preparation starts from them and canonicalises only a sealed form again, without the check that
msgspec's output came from JSON types (``canonicalize_json``: the value is known to hold JSON types). The
vectors below were taken from the code before that change: if one fails, re-posts would stop being
recognised (digests) or logs would stop verifying (canonical bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given

from ledger.crypto.keys import LocalKeyFileProvider
from ledger.crypto.sealing import Sealer, SubjectRef
from ledger.domain.canonical import canonicalize, canonicalize_json
from ledger.domain.envelope import ReceivedEvent, normalized, validate_event, validate_json_event
from ledger.storage.append import AppendService
from ledger.synth.project import generate
from tests.factories import example_event
from tests.unit.test_canonical import json_values

GOLDEN = json.loads(
    (Path(__file__).parent.parent / "assets" / "golden-chain.json").read_text(encoding="utf-8")
)
# SHA-256 over the content digests of the events of ``digest_events()``, each under the fixed keys of
# ``fixed_sealer``, computed with the code of 2026-12-01 (commit 6db0e75) before this change.
DIGESTS_SHA256 = "4ffde8cb9199f94e76e581d7321efc8bfe52524d96fc7a84e1389d7f8c872309"


class FixedKeys:
    """An in-memory subject key store whose every subject key is the same fixed 32 bytes."""

    def get_or_create(self, subjects: Any, wrap: Any) -> dict[SubjectRef, tuple[str, bytes]]:
        return {
            (t, s): (
                f"kid0:{s}",
                wrap(bytes(range(32, 0, -1)), msgspec.json.encode(["ledger subject key v1", t, s])),
            )
            for t, s in subjects
        }

    def get(self, subjects: Any) -> dict[SubjectRef, tuple[str, bytes]]:
        return self.get_or_create(subjects, None)


def fixed_sealer(tmp_path: Path) -> tuple[Sealer, LocalKeyFileProvider]:
    (tmp_path / "master.key").write_bytes(bytes(range(32)))
    provider = LocalKeyFileProvider(tmp_path / "master.key")
    return Sealer(provider, FixedKeys()), provider


def digest_events() -> list[ReceivedEvent]:
    # The first 400 events of the synthetic project as generated then (seed 3), frozen: the generator has
    # changed since (issue 9), the digests must not.
    frozen = json.loads((Path(__file__).parent.parent / "assets" / "digest-events.json").read_text("utf-8"))
    events = [validate_event(raw) for raw in frozen]
    # Forms the digest normalises: no datacontenttype, schemaversion 1 spelled out, a non-string extension.
    bare = example_event("annotation.created", tenant="acme", id="evt-bare")
    del bare["datacontenttype"]
    events.append(validate_event(bare))
    events.append(
        validate_event(example_event("annotation.created", tenant="acme", id="evt-v1", schemaversion=1))
    )
    events.append(
        validate_event(example_event("annotation.created", tenant="acme", id="evt-ext", sequence=7))
    )
    return events


@given(json_values)
def test_canonicalize_json_is_canonicalize_byte_for_byte(value: object) -> None:
    assert canonicalize_json(value) == canonicalize(value)


@pytest.mark.parametrize(
    "vector", GOLDEN["vectors"], ids=[v["document"]["event"]["id"] for v in GOLDEN["vectors"]]
)
def test_canonicalize_json_gives_the_golden_bytes(vector: dict[str, Any]) -> None:
    assert canonicalize_json(vector["document"]) == vector["canonical_utf8"].encode("utf-8")
    assert canonicalize_json(vector["document"]["event"]) == canonicalize(vector["document"]["event"])


def test_validation_keeps_the_canonical_bytes_of_the_event_as_received() -> None:
    raws = list(generate("acme", 2000, seed=5))
    for raw in raws:
        body = json.dumps(raw).encode()
        assert validate_json_event(body).canonical == canonicalize(json.loads(body))
        assert validate_event(raw).canonical == canonicalize(raw)


def test_numbers_are_canonical_in_the_kept_bytes() -> None:
    body = json.dumps(example_event("annotation.created", tenant="acme")).encode()
    body = body.replace(b'"x": 212', b'"x": 212.0').replace(b'"y": 148', b'"y": 1.48e2')  # JCS: 212, 148
    event = validate_json_event(body)
    assert b'"x":212,"y":148}' in event.canonical
    assert event.canonical == canonicalize(json.loads(body))


def test_content_digests_are_those_of_before(tmp_path: Path) -> None:
    sealer, _ = fixed_sealer(tmp_path)
    events = digest_events()
    sealer.seal(events)
    digests = b"".join(sealer.content_digest(e) for e in events)
    assert hashlib.sha256(digests).hexdigest() == DIGESTS_SHA256


def test_the_digest_of_an_event_with_nothing_sealed_is_the_keyed_hash_of_its_normal_form(
    tmp_path: Path,
) -> None:
    sealer, provider = fixed_sealer(tmp_path)
    raw = example_event("assignment.created", tenant="acme")  # nothing in it is sealed
    del raw["datacontenttype"]  # so its normal form differs from what was sent
    event = validate_event(raw)
    assert normalized(event.raw) is not event.raw
    expected = hmac.digest(
        provider.derive(b"ledger content digest v1"), canonicalize(normalized(event.raw)), "sha256"
    )
    assert sealer.content_digest(event) == expected


def test_preparation_stores_the_canonical_sealed_form_of_each_event(tmp_path: Path) -> None:
    sealer, _ = fixed_sealer(tmp_path)
    events = digest_events()
    pending = AppendService(None, sealer)._prepare(events)  # type: ignore[arg-type]  # preparation needs no database
    sealed = 0
    for p, event in zip(pending, events, strict=True):
        stored = json.loads(p.canonical)
        assert p.canonical == canonicalize(stored)
        assert sealer.unseal(stored) == json.loads(event.canonical)
        assert p.digest == sealer.content_digest(event)
        sealed += p.canonical != event.canonical
    assert sealed > 50  # the synthetic mix seals about a quarter of its events
