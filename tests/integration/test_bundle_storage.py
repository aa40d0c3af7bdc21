"""Selecting a bundle's events and proving them in batches, on real PostgreSQL: the batched proofs equal
one-by-one ones across tile boundaries; a scope found in several tenants is refused unless one is named;
the size limit is refused naming it; bookkeeping past the latest checkpoint is refused, not left unproved."""

from __future__ import annotations

import pytest

from ledger.domain.envelope import validate_event
from ledger.domain.errors import NotFound, ParameterInvalid
from ledger.evidence import produce_bundle, select_bundle
from ledger.runtime import Ledger
from ledger.storage import bundles
from ledger.verifier.bundle import verify_bundle
from tests.conftest import make_event


def append(ledger: Ledger, tenant: str, n: int, **overrides: object) -> None:
    ledger.appender.append([validate_event(make_event(tenant, **overrides)) for _ in range(n)])


def test_batched_inclusion_proofs_equal_one_by_one_proofs(ledger: Ledger) -> None:
    append(ledger, "acme", 600)  # two complete tiles and a partial one
    positions = [0, 1, 255, 256, 257, 511, 512, 599]

    for size in (600, 513, 300):
        wanted = [p for p in positions if p < size]
        batched = ledger.trees.inclusions("acme", wanted, size, tenant=None)
        assert batched == [ledger.trees.inclusion("acme", p, size, tenant=None).hashes for p in wanted]


def test_batched_proofs_refuse_a_position_outside_the_tree(ledger: Ledger) -> None:
    append(ledger, "acme", 10)

    with pytest.raises(ParameterInvalid) as caught:
        ledger.trees.inclusions("acme", [3, 10], 10, tenant=None)
    assert caught.value.errors[0].field == "position"


def test_a_scope_in_several_tenants_needs_a_tenant(ledger: Ledger) -> None:
    append(ledger, "acme", 2, data_item="shared")
    append(ledger, "beta", 3, data_item="shared")
    scope = bundles.item_scope("chest-ct-2026/shared")

    with pytest.raises(ParameterInvalid) as caught:
        select_bundle(ledger, scope, tenant=None)
    assert "acme, beta" in caught.value.detail
    assert select_bundle(ledger, scope, tenant="beta").count == 3


def test_a_scope_in_one_tenant_is_found_without_naming_it(ledger: Ledger) -> None:
    append(ledger, "acme", 2, data_item="mine")
    append(ledger, "beta", 3, data_item="theirs")

    selection = select_bundle(ledger, bundles.item_scope("chest-ct-2026/theirs"), tenant=None)

    assert selection.tenant == "beta"
    assert selection.positions == {"beta": [0, 1, 2]}
    with pytest.raises(NotFound):
        select_bundle(ledger, bundles.item_scope("chest-ct-2026/nobody"), tenant=None)


def test_a_scope_over_the_limit_is_refused_naming_it(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    append(ledger, "acme", 5, data_item="big")
    monkeypatch.setattr(bundles, "MAX_BUNDLE_EVENTS", 4)

    with pytest.raises(ParameterInvalid) as caught:
        select_bundle(ledger, bundles.item_scope("chest-ct-2026/big"), tenant="acme")
    assert caught.value.errors[0].field == "item"
    assert "MAX_BUNDLE_EVENTS" in caught.value.detail


def test_checkpoint_bookkeeping_after_the_latest_checkpoint_is_refused(ledger: Ledger) -> None:
    append(ledger, "acme", 3)
    signed = ledger.checkpoints.sign("acme")
    assert signed is not None
    scope = bundles.log_scope("acme", 0, signed.position)  # the checkpoint's own event, not under it

    with pytest.raises(ParameterInvalid) as caught:
        produce_bundle(ledger, select_bundle(ledger, scope, tenant="acme"))
    assert caught.value.errors[0].field == "log"
    assert "next checkpoint" in caught.value.detail


def test_a_bundle_over_many_tiles_verifies(ledger: Ledger) -> None:
    append(ledger, "acme", 700)
    selection = select_bundle(ledger, bundles.log_scope("acme", 100, 650), tenant="acme")
    counted: list[int] = []

    produced = produce_bundle(ledger, selection, progress=counted.append)

    assert produced.events == 551 == sum(counted)
    assert produced.signed == ("acme",)
    report = verify_bundle(produced.body, trusted_keys=[w.key for w in ledger.checkpoints.verifier_keys()])
    assert report.verified, [c.line for c in report.failures]
