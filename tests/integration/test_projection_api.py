"""The projection read API over a real server: provenance, labels, credentials, guidelines, flags, reports."""

from __future__ import annotations

import hashlib

import httpx
import pytest

from ledger.runtime import Ledger
from tests.conftest import TokenFactory
from tests.stories import DATASET, Story, at


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.fixture
def recorded(shared_ledger: Ledger, tenant: str) -> Story:
    story = Story(tenant)
    story.guideline("1.0", at(-100))
    story.credential("ann-1", "internal_level", at(-10), until=at(3))
    story.credential("rad-1", "license", at(-10))
    story.view("ann-1", "1.2.3.4", at(0))
    story.annotate("ann-1", "1.2.3.4", "a1", at(1))
    story.review("rad-1", "1.2.3.4", "a1", at(2), level=3)
    story.annotate("ann-1", "1.2.3.5", "a2", at(5))  # credential expired by then
    shared_ledger.appender.append(story.events)
    return story


def test_provenance_lists_the_items_events_with_standing(
    http: httpx.Client, token: TokenFactory, tenant: str, recorded: Story
) -> None:
    response = http.get(
        f"/v1/items/{DATASET}/1.2.3.4/provenance", headers=bearer(token("auditor", tenant=tenant))
    )
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [e["type"] for e in events] == ["access.data_viewed", "annotation.created", "review.submitted"]
    assert events[2]["actor_standing"]["qualified_for"] == ["annotator", "reviewer", "physician"]


def test_labels_show_state_and_lineage(
    http: httpx.Client, token: TokenFactory, tenant: str, recorded: Story
) -> None:
    body = http.get(
        f"/v1/items/{DATASET}/1.2.3.4/labels", headers=bearer(token("regulatory", tenant=tenant))
    ).json()
    [annotation] = body["annotations"]
    assert (annotation["status"], annotation["review_level"]) == ("reviewed", 3)
    assert [r["change"] for r in annotation["lineage"]] == ["created", "reviewed"]
    assert body["final_label"] is None


def test_credentials_as_of_a_time(
    http: httpx.Client, token: TokenFactory, tenant: str, recorded: Story
) -> None:
    auditor = bearer(token("auditor", tenant=tenant))
    before = http.get(
        "/v1/annotators/ann-1/credentials", params={"as_of": "2026-03-02T09:00:00Z"}, headers=auditor
    )
    after = http.get(
        "/v1/annotators/ann-1/credentials", params={"as_of": "2026-03-02T12:00:00Z"}, headers=auditor
    )
    assert before.json()["qualified_for"] == ["annotator"]
    assert after.json()["qualified_for"] == []
    bad = http.get("/v1/annotators/ann-1/credentials", params={"as_of": "tuesday"}, headers=auditor)
    assert bad.status_code == 400  # a parameter, not an event: 400 everywhere (issue 7 item 14)
    assert bad.json()["errors"][0]["field"] == "as_of"


def test_guidelines_and_flags(http: httpx.Client, token: TokenFactory, tenant: str, recorded: Story) -> None:
    auditor = bearer(token("auditor", tenant=tenant))
    [guideline] = http.get("/v1/guidelines", headers=auditor).json()["guidelines"]
    assert (guideline["version"], guideline["annotations"]) == ("1.0", 2)
    flags = http.get("/v1/compliance/flags", headers=auditor).json()["flags"]
    assert [(f["kind"], f["item"]) for f in flags] == [("unqualified_annotator", "1.2.3.5")]
    only = http.get(
        "/v1/compliance/flags", params={"kind": "guideline_not_in_effect"}, headers=auditor
    ).json()
    assert only["flags"] == []


def test_flag_pages_visit_every_flag_once(
    http: httpx.Client, token: TokenFactory, shared_ledger: Ledger, tenant: str
) -> None:
    story = Story(tenant)
    for i in range(7):  # each annotation raises two flags: no credential, unpublished guideline
        story.annotate("nobody", f"item-{i}", f"a{i}", at(i), guideline="0.9")
    shared_ledger.appender.append(story.events)
    auditor = bearer(token("auditor", tenant=tenant))
    seen, cursor = [], None
    while True:
        page = http.get("/v1/compliance/flags", params={"limit": 3} | ({"cursor": cursor} if cursor else {}),
                        headers=auditor).json()  # fmt: skip
        seen += [f["flag_id"] for f in page["flags"]]
        if not (cursor := page["next_cursor"]):
            break
    assert len(seen) == 14
    assert len(set(seen)) == 14


@pytest.mark.parametrize(
    ("fmt", "media"), [("json", "application/json"), ("csv", "text/csv"), ("html", "text/html")]
)
def test_the_retention_report_in_each_format(http: httpx.Client, token: TokenFactory, tenant: str, recorded: Story,
                                             fmt: str, media: str) -> None:  # fmt: skip
    response = http.get("/v1/reports/retention", params={"as_of": "2033-01-01", "format": fmt},
                        headers=bearer(token("auditor", tenant=tenant, mfa=True)))  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media)
    assert response.headers["x-report-sha256"] == hashlib.sha256(response.content).hexdigest()
    if fmt == "json":
        assert response.json()["scope"] == tenant  # a tenant's report covers only its own logs


def test_reads_need_a_reader_role_and_stay_in_the_tenant(
    http: httpx.Client, token: TokenFactory, tenant: str, recorded: Story
) -> None:
    assert (
        http.get(
            f"/v1/items/{DATASET}/1.2.3.4/provenance", headers=bearer(token("ingest", tenant=tenant))
        ).status_code
        == 403
    )
    other = bearer(token("auditor", tenant=f"{tenant}-x"))
    assert http.get(f"/v1/items/{DATASET}/1.2.3.4/provenance", headers=other).status_code == 404
    assert http.get("/v1/compliance/flags", headers=other).json()["flags"] == []


def test_an_unknown_flag_kind_is_refused_naming_the_parameter(
    http: httpx.Client, token: TokenFactory, tenant: str, recorded: Story
) -> None:
    auditor = bearer(token("auditor", tenant=tenant))
    response = http.get("/v1/compliance/flags", params={"kind": "bogus"}, headers=auditor)
    assert response.status_code == 400, response.text  # a parameter error, as everywhere (ParameterInvalid)
    [error] = response.json()["errors"]
    assert error["field"] == "kind"
    assert "unqualified_annotator" in error["message"]  # the message lists the kinds there are
    every = http.get("/v1/compliance/flags", params={"kind": "unprojectable_event"}, headers=auditor)
    assert every.status_code == 200
