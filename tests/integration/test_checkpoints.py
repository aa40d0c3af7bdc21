"""Signed checkpoints over a real PostgreSQL: signed at the right sizes, verifiable under each published key
alone, equal to the tree's root, never re-signed for an idle log, one per size under concurrency,
published to the directory, recorded as events and reproduced by a projection rebuild."""

from __future__ import annotations

import dataclasses
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ledger.checkpoints import CheckpointService, SignedCheckpoint
from ledger.domain.envelope import validate_event
from ledger.domain.errors import NotFound
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.runtime import Ledger, checkpoint_service
from ledger.verifier.checkpoint import check_key_windows, open_checkpoint, origin_for
from ledger.verifier.errors import VerifierError
from tests.factories import example_event


def append(ledger: Ledger, tenant: str, n: int) -> None:
    ledger.appender.append(
        [validate_event(example_event("annotation.created", tenant=tenant)) for _ in range(n)]
    )


def service(
    ledger: Ledger, *, every: int = 1000, seconds: float = 3600.0, **changes: object
) -> CheckpointService:
    cfg = dataclasses.replace(ledger.settings.checkpoints, every=every, seconds=seconds, **changes)
    settings = dataclasses.replace(ledger.settings, checkpoints=cfg)
    return checkpoint_service(settings, ledger.db, ledger.trees, ledger.appender)


def checkpoint_events(ledger: Ledger, log: str) -> list[tuple[int, str]]:
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT position, event_id FROM ledger_events WHERE log = %s AND type = 'ledger.checkpoint_signed'"
            " ORDER BY position",
            (log,),
        ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def test_a_checkpoint_verifies_under_each_published_key_alone_and_its_root_is_the_trees(
    ledger: Ledger, tenant: str
) -> None:
    append(ledger, tenant, 300)
    signed = ledger.checkpoints.sign(tenant)

    assert signed is not None
    assert signed.tree_size == 300
    assert (signed.tree_size, signed.root) == ledger.trees.root(tenant, 300, tenant=None)
    windows = ledger.checkpoints.verifier_keys()
    assert {w.key.signature_type for w in windows} == {0x01, 0x06}
    for window in windows:  # an auditor who holds only one of the two keys still verifies
        opened = open_checkpoint(signed.note.encode(), [window.key])
        assert opened.checkpoint.origin == origin_for("ledger.local", tenant)
        assert (opened.checkpoint.size, opened.checkpoint.root) == (300, signed.root)
        check_key_windows(opened, windows, signed_at=signed.signed_at)
    assert checkpoint_events(ledger, tenant) == [(300, "ledger:checkpoint:300")]


def test_an_idle_log_is_not_signed_again(ledger: Ledger, tenant: str) -> None:
    append(ledger, tenant, 5)
    first = ledger.checkpoints.sign(tenant)
    assert first is not None

    assert ledger.checkpoints.sign(tenant) is None  # only the checkpoint's own event came since
    assert ledger.checkpoints.due(tenant) is False
    append(ledger, tenant, 1)
    second = ledger.checkpoints.sign(tenant)
    assert second is not None
    assert second.tree_size == 7  # five events, the first checkpoint's event, one more
    assert ledger.checkpoints.store.latest(tenant, tenant=tenant) == second


def test_checkpoints_come_every_n_events_and_after_the_interval(ledger: Ledger, tenant: str) -> None:
    now = [datetime.now(UTC)]
    svc = service(ledger, every=1000, seconds=60.0)
    svc._clock = lambda: now[0]  # the service's clock, to step past the interval without waiting
    sizes = []
    for n in (1000, 1000, 500):
        append(ledger, tenant, n)
        sizes += [cp.tree_size for cp in svc.sign_due()]
    assert sizes == [1000, 2001]  # the first checkpoint at once; 500 new events are not yet due

    now[0] += timedelta(seconds=61)
    assert [cp.tree_size for cp in svc.sign_due()] == [2502]
    now[0] += timedelta(seconds=61)
    assert svc.sign_due() == []  # idle: nothing but the checkpoint's own event


def test_two_services_signing_at_once_make_one_checkpoint_per_size(ledger: Ledger, tenant: str) -> None:
    append(ledger, tenant, 50)
    services = [service(ledger) for _ in range(4)]
    results: list[SignedCheckpoint | None] = []
    start = threading.Barrier(len(services))

    def sign(svc: CheckpointService) -> None:
        start.wait()
        results.append(svc.sign(tenant))

    threads = [threading.Thread(target=sign, args=(s,)) for s in services]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(cp.tree_size for cp in results if cp is not None) == [50]
    assert checkpoint_events(ledger, tenant) == [(50, "ledger:checkpoint:50")]


def test_the_publication_directory_holds_the_signed_note(ledger: Ledger, tenant: str) -> None:
    append(ledger, tenant, 3)
    signed = ledger.checkpoints.sign(tenant)
    assert signed is not None

    path = ledger.settings.home / "checkpoints" / tenant / "3.checkpoint"
    assert ledger.checkpoints.directory.path(signed) == path
    assert path.read_text() == signed.note
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_a_failed_publication_is_retried_and_the_checkpoint_is_kept(
    ledger: Ledger, tenant: str, tmp_path: Path
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the directory should be")
    svc = service(ledger, dir=blocked)
    append(ledger, tenant, 4)

    signed = svc.sign(tenant)
    assert signed is not None  # on the record although it could not be published
    assert svc.store.latest(tenant, tenant=None) == signed
    assert not svc.directory.published(signed)

    blocked.unlink()
    svc.publish_pending()
    assert svc.directory.path(signed).read_text() == signed.note


def test_a_checkpoint_missing_from_the_directory_is_published_on_the_next_round(
    ledger: Ledger, tenant: str
) -> None:
    append(ledger, tenant, 4)
    signed = ledger.checkpoints.sign(tenant)
    assert signed is not None
    ledger.checkpoints.directory.path(signed).unlink()  # as if the process stopped before publishing

    service(ledger).publish_pending()
    assert ledger.checkpoints.directory.path(signed).read_text() == signed.note


def test_a_rebuild_reproduces_the_checkpoints(ledger: Ledger, tenant: str) -> None:
    append(ledger, tenant, 10)
    ledger.checkpoints.sign(tenant)
    append(ledger, tenant, 10)
    ledger.checkpoints.sign(tenant)
    before = list(ledger.checkpoints.store.every(tenant))

    rebuild(ledger.db, [p for p in all_projectors() if p.name == "checkpoints"])

    assert list(ledger.checkpoints.store.every(tenant)) == before
    assert [cp.tree_size for cp in before] == [10, 21]


def test_signing_a_log_that_does_not_exist_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(NotFound, match="no log"):
        ledger.checkpoints.sign("nobody")


def test_checkpoints_before_and_after_a_rotation_all_verify(ledger: Ledger, tenant: str) -> None:
    append(ledger, tenant, 3)
    before = ledger.checkpoints.sign(tenant)
    rotation = ledger.checkpoints.rotate_keys("ledger")
    append(ledger, tenant, 3)
    after = ledger.checkpoints.sign(tenant)
    assert before is not None
    assert after is not None
    assert set(rotation.old).isdisjoint(rotation.new)

    windows = ledger.checkpoints.verifier_keys()
    assert len(windows) == 4  # two generations of two keys
    keys = [w.key for w in windows]
    for cp in (before, after):
        opened = open_checkpoint(cp.note.encode(), keys)
        check_key_windows(opened, windows)
    old_only = [w.key for w in windows if w.retired_at is not None]
    with pytest.raises(VerifierError, match="no signature by a known key"):
        open_checkpoint(after.note.encode(), old_only)
    with ledger.db.connect() as conn:
        row = conn.execute(
            "SELECT canonical FROM ledger_events WHERE log = 'ledger' AND type = 'ledger.key_rotated'"
        ).fetchone()
    assert row is not None
    assert rotation.new[0] in bytes(row[0]).decode()
