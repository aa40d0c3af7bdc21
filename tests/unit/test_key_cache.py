"""A process keeps a subject key at most ``KEY_CACHE_SECONDS``: an erasure made by another process (which
deletes the key in the store) is honoured here within that time, for sealing and for opening alike."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ledger.crypto.keys import LocalKeyFileProvider
from ledger.crypto.sealing import KEY_CACHE_SECONDS, Sealer, SubjectRef, new_subject_key
from ledger.domain.envelope import validate_event
from tests.factories import example_event


class Store:
    """An in-memory subject key store another process may erase keys from."""

    def __init__(self) -> None:
        self.keys: dict[SubjectRef, tuple[str, bytes]] = {}
        self.reads = 0

    def get(self, subjects: Any) -> dict[SubjectRef, tuple[str, bytes]]:
        self.reads += 1
        return {s: self.keys[s] for s in subjects if s in self.keys}

    def get_or_create(self, subjects: Any, wrap: Any) -> dict[SubjectRef, tuple[str, bytes]]:
        for t, s in subjects:
            self.keys.setdefault((t, s), new_subject_key(t, s, wrap))
        return self.get(subjects)


def test_an_erasure_elsewhere_reaches_this_process_once_its_cached_key_expires(tmp_path: Path) -> None:
    (tmp_path / "master.key").write_bytes(os.urandom(32))
    store, now = Store(), [1000.0]
    sealer = Sealer(LocalKeyFileProvider(tmp_path / "master.key"), store, clock=lambda: now[0])
    event = validate_event(example_event("review.submitted", tenant="acme", data_comment="looks fine"))
    [stored] = sealer.seal([event])
    subject = (event.tenant, event.data_subject)
    assert sealer.unseal(stored)["data"]["comment"] == "looks fine"
    reads = store.reads

    del store.keys[subject]  # another process erased the subject
    now[0] += KEY_CACHE_SECONDS - 1
    assert sealer.unseal(stored)["data"]["comment"] == "looks fine"  # still cached, no store read
    assert store.reads == reads

    now[0] += 2
    assert sealer.unseal(stored)["data"]["comment"] == "[erased]"
    # A new event of the subject is sealed under a fresh key, not the erased one.
    [again] = sealer.seal(
        [validate_event(example_event("review.submitted", tenant="acme", data_comment="x"))]
    )
    assert again["data"]["comment"]["sealed"]["kid"] != stored["data"]["comment"]["sealed"]["kid"]
