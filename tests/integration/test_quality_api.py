"""GET /v1/quality/annotators/{actor} and GET /v1/quality/items over a real server and PostgreSQL: the
numbers from the log, each read recorded, and nothing of another tenant."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx
import pytest

from ledger.projections.tables import fetch_rows
from ledger.runtime import Ledger
from tests.conftest import SHARED_QC_POLICY, TokenFactory
from tests.stories import DATASET, Story, at


def read(story: Story, who: str, item: str, ann: str, when: datetime, label: str) -> str:
    data: dict[str, Any] = {"dataset": DATASET, "item": item, "annotation_id": ann, "version": 1, "label_class": label,
                            "geometry": {"kind": "classification"}, "origin": "human", "guideline_id": "qc-route",
                            "guideline_version": "1.0"}  # fmt: skip
    return story.add("annotation.created", when, who, data)


def adjudicate(story: Story, item: str, anns: list[str], final: str, label: str, when: datetime) -> str:
    data = {"dataset": DATASET, "item": item, "annotation_ids": anns, "final_annotation_id": final,
            "final_label_class": label, "level": 4, "method": "expert", "signature_meaning": "approval"}  # fmt: skip
    return story.add("adjudication.completed", when, "exp-1", data, role="expert")


@pytest.fixture
def world(shared_ledger: Ledger, tenant: str) -> dict[str, str]:
    """r1 and r2 disagree on item-1 (adjudicated nodule, r1's), agree on item-2; r1 alone reads item-3 in
    April (adjudicated mass; r1 said nodule) and repeats item-1 (a repeat read, left out)."""
    s = Story(tenant)
    ids = {
        "r1-1": read(s, "r1", "item-1", "a1", at(1), "nodule"),
        "r2-1": read(s, "r2", "item-1", "a2", at(2), "mass"),
    }
    read(s, "r1", "item-2", "b1", at(3), "nodule")
    read(s, "r2", "item-2", "b2", at(4), "nodule")
    read(s, "r1", "item-3", "c1", at(24 * 31), "nodule")
    read(s, "r1", "item-1", "a3", at(5), "mass")
    adjudicate(s, "item-1", ["a1", "a2"], "a1", "nodule", at(6))
    adjudicate(s, "item-2", ["b1", "b2"], "b1", "nodule", at(6))
    adjudicate(s, "item-3", ["c1"], "c1", "mass", at(24 * 32))
    shared_ledger.appender.append(s.events)
    return ids


def get(http: httpx.Client, token: TokenFactory, tenant: str, path: str, **params: Any) -> httpx.Response:
    return http.get(
        path, params=params, headers={"authorization": f"Bearer {token('auditor', tenant=tenant)}"}
    )


def test_an_annotators_accuracy_per_class_and_month_and_agreement_with_co_readers(
    http: httpx.Client, token: TokenFactory, tenant: str, world: dict[str, str]
) -> None:
    response = get(http, token, tenant, "/v1/quality/annotators/r1")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["actor"], body["policy_sha256"]) == ("r1", SHARED_QC_POLICY.sha256)
    [task] = body["tasks"]
    assert (task["task"], task["in_policy"], task["items_labelled"]) == ("route-qc", True, 3)
    assert task["accuracy"] == {"compared": 3, "correct": 2, "accuracy": pytest.approx(2 / 3)}
    assert task["per_class"] == [
        {"label_class": "mass", "compared": 1, "correct": 0, "accuracy": 0.0},
        {"label_class": "nodule", "compared": 2, "correct": 2, "accuracy": 1.0},
    ]
    assert [(m["month"], m["correct"], m["compared"]) for m in task["by_month"]] == [
        ("2026-03", 2, 2),
        ("2026-04", 0, 1),
    ]
    assert task["co_reader_agreement"] == {"items": 2, "mean": 0.5}
    assert (task["annotator_accuracy_min"], task["below_min"]) == (0.8, True)


def test_items_below_policy_with_their_reasons_and_evidence_and_paging(
    http: httpx.Client, token: TokenFactory, tenant: str, world: dict[str, str]
) -> None:
    below = get(http, token, tenant, "/v1/quality/items", below_policy="true").json()
    [item] = below["items"]
    assert (item["item"], item["application"], item["readers"], item["class_agreement"]) == (
        "item-1",
        "route-qc",
        2,
        0.0,
    )
    assert item["reasons"] == ["class agreement 0.0000 is below item_agreement_min 1.0"]
    assert item["evidence"] == [world["r1-1"], world["r2-1"]]
    assert below["next_cursor"] is None

    seen, cursor = [], None
    while True:
        page = get(
            http, token, tenant, "/v1/quality/items", limit=1, **({"cursor": cursor} if cursor else {})
        ).json()
        seen += [i["item"] for i in page["items"]]
        if not (cursor := page["next_cursor"]):
            break
    assert seen == ["item-1", "item-2", "item-3"]
    within = get(
        http, token, tenant, "/v1/quality/items", below_policy="false", application="route-qc"
    ).json()
    assert [i["item"] for i in within["items"]] == ["item-2", "item-3"]
    assert get(http, token, tenant, "/v1/quality/items", dataset="other").json()["items"] == []


def test_the_item_below_policy_has_one_needs_expert_review_flag(
    http: httpx.Client, token: TokenFactory, tenant: str, world: dict[str, str]
) -> None:
    flags = get(http, token, tenant, "/v1/compliance/flags", kind="needs_expert_review").json()["flags"]
    # evidence: the event that put the item below policy (r2's read), then the readers' first reads
    assert [(f["item"], f["evidence"]) for f in flags] == [("item-1", [world["r2-1"], world["r1-1"]])]


def test_each_quality_read_is_recorded(
    http: httpx.Client, token: TokenFactory, tenant: str, world: dict[str, str], shared_ledger: Ledger
) -> None:
    def reads() -> int:
        with shared_ledger.db.connect() as conn:
            return len(
                fetch_rows(
                    conn,
                    "SELECT 1 FROM ledger_events WHERE tenant = %s AND type = 'access.data_viewed'",
                    (tenant,),
                )
            )

    before = reads()
    assert get(http, token, tenant, "/v1/quality/items").status_code == 200
    assert get(http, token, tenant, "/v1/quality/annotators/r2").status_code == 200
    assert get(http, token, tenant, "/v1/quality/annotators/nobody").status_code == 404
    assert reads() == before + 3  # a failed read is recorded too


def test_another_tenant_sees_none_of_it(
    http: httpx.Client, token: TokenFactory, tenant: str, world: dict[str, str]
) -> None:
    other = f"{tenant}-other"
    assert get(http, token, other, "/v1/quality/annotators/r1").status_code == 404
    assert get(http, token, other, "/v1/quality/items").json() == {"items": [], "next_cursor": None}
    cursor = get(http, token, tenant, "/v1/quality/items", limit=1).json()["next_cursor"]
    assert get(http, token, other, "/v1/quality/items", cursor=cursor).json() == {
        "items": [],
        "next_cursor": None,
    }
    assert get(http, token, other, "/v1/quality/items", cursor="not-a-cursor").status_code == 400


def test_the_items_an_annotator_read_are_found_by_index(shared_ledger: Ledger) -> None:
    with shared_ledger.db.connect() as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        plan = conn.execute(
            "EXPLAIN SELECT dataset, item FROM proj_annotations"
            " WHERE tenant = %s AND created_by = %s AND origin = 'human'",
            ("t", "r1"),
        ).fetchall()
    assert "proj_annotations_human_reader" in " ".join(str(row[0]) for row in plan)
