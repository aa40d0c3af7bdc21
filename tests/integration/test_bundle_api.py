"""``GET /v1/bundles`` over a real server: for each scope the bundle verifies under the keys pinned from
``GET /v1/keys`` and holds exactly the scope's events; sealed values stay sealed; another tenant's records
are not found; refusals name the parameter; the export is on the record."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass

import httpx
import pytest

from ledger.domain.canonical import canonicalize
from ledger.verifier.bundle import verify_bundle
from ledger.verifier.keys import VerifierKey, parse_vkey
from tests.conftest import TokenFactory, make_event

BATCH = {"content-type": "application/cloudevents-batch+json"}
DATASET = "chest-ct-2026"
COMMENT = "Solid nodule, margins clear on the axial series."


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def post(http: httpx.Client, token: TokenFactory, tenant: str, events: list[dict]) -> list[dict]:
    response = http.post(
        "/v1/events", content=json.dumps(events), headers={**bearer(token("ingest", tenant=tenant)), **BATCH}
    )
    assert response.status_code == 201, response.text
    return response.json()["receipts"]


def annotation(tenant: str, item: str, n: int) -> dict:
    return make_event(tenant, "annotation.created", data_item=item, data_annotation_id=f"ann-{item}-{n}")


@dataclass
class Project:
    tenant: str
    ids: dict[str, str]  # name -> event id

    def of(self, *names: str) -> set[str]:
        return {self.ids[n] for n in names}


@pytest.fixture
def project(http: httpx.Client, token: TokenFactory, tenant: str) -> Project:
    """Items a and b released, c not; an annotation of a after the release."""
    events = {
        "ann_a": annotation(tenant, "a", 1),
        "review_a": make_event(tenant, "review.submitted", data_item="a", data_annotation_id="ann-a-1"),
        "ann_b": annotation(tenant, "b", 1),
        "ann_c": annotation(tenant, "c", 1),
    }
    released = [{"item": "a", "label_class": "nodule"}, {"item": "b", "label_class": "mass"}]
    events["release"] = make_event(
        tenant,
        "dataset.release_created",
        data_dataset=DATASET,
        data_release="r1",
        data_items=released,
        data_items_sha256=hashlib.sha256(canonicalize(released)).hexdigest(),
    )
    post(http, token, tenant, list(events.values()))
    later = annotation(tenant, "a", 2)
    post(http, token, tenant, [later])
    return Project(tenant, {**{k: v["id"] for k, v in events.items()}, "ann_a_later": later["id"]})


def pinned_keys(http: httpx.Client, token: TokenFactory, tenant: str) -> list[VerifierKey]:
    response = http.get("/v1/keys", headers=bearer(token("auditor", tenant=tenant)))
    assert response.status_code == 200, response.text
    return [parse_vkey(k["vkey"]) for k in response.json()["checkpoint_keys"]]


def fetch(
    http: httpx.Client, token: TokenFactory, tenant: str, role: str = "auditor", **params
) -> httpx.Response:
    return http.get("/v1/bundles", params=params, headers=bearer(token(role, tenant=tenant, mfa=True)))


def documents(body: bytes) -> list[dict]:
    return [json.loads(base64.b64decode(e["canonical"])) for e in json.loads(body)["events"]]


def event_ids(body: bytes) -> set[str]:
    return {d["event"]["id"] for d in documents(body)}


def assert_verified(http: httpx.Client, token: TokenFactory, tenant: str, body: bytes) -> None:
    report = verify_bundle(body, trusted_keys=pinned_keys(http, token, tenant))
    assert report.verified, [c.line for c in report.failures]
    assert report.key_source == "pinned"


class TestScopes:
    def test_an_item_bundle_holds_every_event_about_the_item(self, http, token, project: Project) -> None:
        response = fetch(http, token, project.tenant, item=f"{DATASET}/a")

        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("application/json")
        assert response.headers["content-disposition"].startswith("attachment;")
        assert response.headers["x-bundle-sha256"] == hashlib.sha256(response.content).hexdigest()
        assert json.loads(response.content)["scope"] == {"item": f"{DATASET}/a"}
        assert event_ids(response.content) == project.of("ann_a", "review_a", "release", "ann_a_later")
        assert_verified(http, token, project.tenant, response.content)

    def test_a_release_bundle_holds_the_lineage_of_its_items_up_to_the_release(
        self, http, token, project: Project
    ) -> None:
        response = fetch(http, token, project.tenant, role="regulatory", release=f"{DATASET}@r1")

        assert response.status_code == 200, response.text
        # Not item c (not released), not what happened to item a after the release.
        assert event_ids(response.content) == project.of("ann_a", "review_a", "ann_b", "release")
        assert_verified(http, token, project.tenant, response.content)

    def test_an_events_bundle_holds_exactly_those_events(self, http, token, project: Project) -> None:
        wanted = [project.ids["ann_c"], project.ids["ann_a"]]
        response = fetch(http, token, project.tenant, role="security", events=",".join(wanted))

        assert response.status_code == 200, response.text
        assert event_ids(response.content) == set(wanted)
        assert json.loads(response.content)["scope"] == {"events": wanted}
        assert_verified(http, token, project.tenant, response.content)

    def test_a_log_bundle_holds_the_positions_asked_for(self, http, token, project: Project) -> None:
        response = fetch(http, token, project.tenant, log=project.tenant, **{"from": 1, "to": 3})

        assert response.status_code == 200, response.text
        assert [d["position"] for d in documents(response.content)] == [1, 2, 3]
        assert_verified(http, token, project.tenant, response.content)

    def test_events_recorded_after_the_latest_checkpoint_get_one_signed(self, http, token, project) -> None:
        first = fetch(http, token, project.tenant, item=f"{DATASET}/c")
        newer = annotation(project.tenant, "c", 2)
        post(http, token, project.tenant, [newer])

        second = fetch(http, token, project.tenant, item=f"{DATASET}/c")

        assert second.status_code == 200, second.text
        assert newer["id"] in event_ids(second.content)
        sizes = [c["note"].split("\n")[1] for c in json.loads(second.content)["checkpoints"]]
        assert sizes != [c["note"].split("\n")[1] for c in json.loads(first.content)["checkpoints"]]
        assert_verified(http, token, project.tenant, second.content)


def test_a_sealed_value_stays_sealed_in_the_bundle(http, token, project: Project) -> None:
    response = fetch(http, token, project.tenant, events=project.ids["ann_a"])

    assert response.status_code == 200, response.text
    (doc,) = documents(response.content)
    assert set(doc["event"]["data"]["comment"]) == {"sealed"}
    assert COMMENT.encode() not in response.content
    assert COMMENT not in json.dumps(doc)


def test_the_export_is_on_the_record(http, token, project: Project) -> None:
    response = fetch(http, token, project.tenant, item=f"{DATASET}/b")
    assert response.status_code == 200, response.text

    listed = http.get(
        "/v1/events",
        params={"type": "ledger.report_generated"},
        headers=bearer(token("auditor", tenant=project.tenant)),
    )
    reports = [e["event"]["data"] for e in listed.json()["events"]]
    assert {
        "report": "evidence_bundle",
        "sha256": response.headers["x-bundle-sha256"],
        "parameters": {
            "item": f"{DATASET}/b",
            "event_count": "2",
            "checkpoints": reports[-1]["parameters"]["checkpoints"],
            "requested_by": "tester",
        },
    } in reports
    positions = [e["receipt"]["position"] for e in listed.json()["events"]]
    assert int(response.headers["x-ledger-position"]) in positions


class TestTenantsStayApart:
    @pytest.mark.parametrize(
        "params",
        [
            {"item": f"{DATASET}/a"},
            {"release": f"{DATASET}@r1"},
            {"log": "OWN", "from": 0, "to": 1},
        ],
    )
    def test_another_tenants_records_are_not_found(self, http, token, project: Project, params) -> None:
        other = f"{project.tenant}-other"
        post(http, token, other, [annotation(other, "z", 1)])  # the other tenant has a log of its own
        params = {k: project.tenant if v == "OWN" else v for k, v in params.items()}

        response = fetch(http, token, other, **params)

        assert response.status_code == 404, response.text

    def test_another_tenants_event_ids_are_not_found(self, http, token, project: Project) -> None:
        other = f"{project.tenant}-other"
        response = fetch(http, token, other, events=project.ids["ann_a"])

        assert response.status_code == 404, response.text
        assert project.ids["ann_a"] in response.json()["detail"]


class TestRefusals:
    def test_an_unknown_event_id_is_a_404_naming_it(self, http, token, project: Project) -> None:
        response = fetch(http, token, project.tenant, events=f"{project.ids['ann_a']},no-such-event")

        assert response.status_code == 404, response.text
        body = response.json()
        assert "no-such-event" in body["detail"]
        assert project.ids["ann_a"] not in body["detail"]
        assert body["errors"][0]["field"] == "events"

    @pytest.mark.parametrize(
        ("params", "named"),
        [
            ({}, {"item", "release", "events", "log"}),
            ({"item": f"{DATASET}/a", "release": f"{DATASET}@r1"}, {"item", "release"}),
            ({"item": f"{DATASET}/a", "from": 1}, {"from"}),
            ({"item": "no-slash"}, {"item"}),
            ({"release": "no-at"}, {"release"}),
            ({"events": "a,,b"}, {"events"}),
            ({"log": "OWN", "from": 0}, {"to"}),
            ({"log": "OWN", "from": 3, "to": 1}, {"from"}),
            ({"log": "OWN", "from": 0, "to": 10_000}, {"to"}),
            ({"log": "OWN", "from": -1, "to": 1}, {"from"}),
        ],
    )
    def test_an_unusable_query_is_a_400_naming_the_parameter(
        self, http, token, project: Project, params, named
    ) -> None:
        params = {k: project.tenant if v == "OWN" else v for k, v in params.items()}
        response = fetch(http, token, project.tenant, **params)

        assert response.status_code == 400, response.text
        assert {e["field"] for e in response.json()["errors"]} >= named

    @pytest.mark.parametrize("role", ["ingest", "witness"])
    def test_roles_that_do_not_read_are_refused(self, http, token, project: Project, role) -> None:
        assert fetch(http, token, project.tenant, role=role, item=f"{DATASET}/a").status_code == 403
