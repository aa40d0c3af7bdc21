"""``test_set_access``: a model developer reads an item of a release's test split (FDA test-set isolation).

``dataset.release_created`` with split ``test`` files its items (``proj_test_split_items``, the first release
that put an item there). An access naming such an item, by an actor acting in a role of
``LEDGER_ANOMALY_TEST_SET_ROLES``, raises one anomaly per actor and item.
"""

from __future__ import annotations

from ledger.projections.anomalies.facts import (
    ACCESSES,
    Facts,
    Rule,
    raise_anomaly,
    role,
    succeeded_access,
    text,
)
from ledger.projections.state import Event

RELEASED = "dataset.release_created"
TABLE = "proj_test_split_items"


def check(facts: Facts, ev: Event) -> None:
    """File a test split's items, or raise the anomaly for a model developer's access to one."""
    if ev.type == RELEASED:
        _file_test_split(facts, ev)
        return
    dataset, item = text(ev.data.get("dataset")), text(ev.data.get("item"))
    if dataset is None or item is None or not succeeded_access(facts, ev):
        return
    if role(ev) not in facts.settings.test_set_roles:
        return
    released = facts.test_items.get((ev.tenant, dataset, item))
    if released is None:
        return
    raise_anomaly(
        facts,
        RULE,
        ev,
        (ev.actor, dataset, item),
        f"{ev.actor} ({role(ev)}) accessed {dataset}/{item}, in the test split of release {released['release']}",
        [released["event_id"], ev.id],
        dataset=dataset,
        item=item,
    )


def _file_test_split(facts: Facts, ev: Event) -> None:
    if ev.data.get("split") != "test":
        return
    dataset = str(ev.data["dataset"])
    for entry in ev.data["items"]:
        key = (ev.tenant, dataset, str(entry["item"]))
        if key in facts.test_items:
            continue
        facts.test_items[key] = {
            "tenant": ev.tenant,
            "dataset": dataset,
            "item": key[2],
            "release": str(ev.data["release"]),
            "event_id": ev.id,
            **ev.stamp(),
        }
        facts.touch(TABLE, key)


RULE = Rule("test_set_access", "high", ACCESSES | {RELEASED}, check)
