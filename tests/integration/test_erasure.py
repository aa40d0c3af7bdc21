"""Erasure that keeps every proof, over a real server and PostgreSQL: ``POST /v1/erasures`` makes the
subject's sealed values unreadable everywhere while the chain, the Merkle roots and bundles still verify;
a legal hold covering the subject's records refuses it (409, naming the hold) and nothing is erased."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ledger.auth.tokens import sign_token
from ledger.crypto.keys import LocalKeyFileProvider
from ledger.crypto.sealing import Sealer
from ledger.domain.envelope import validate_event
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.runtime import Ledger
from ledger.storage.keystore import PgSubjectKeyStore
from ledger.storage.verify import verify
from tests.conftest import make_event, serving

TENANT = "acme"
SUBJECT = "rad-01"
DATASET = "chest-ct-2026"
ITEM = "1.2.826.0.1.3680043.10.543.1001"
BATCH = {"content-type": "application/cloudevents-batch+json"}


@dataclass
class World:
    """A served ledger holding a subject's sealed values, another subject's, and ways to call it."""

    ledger: Ledger
    http: httpx.Client
    key: Ed25519PrivateKey
    secrets: dict[str, str]  # name -> a plaintext sealed under SUBJECT's key
    other_secret: str  # sealed under another subject's key
    ids: dict[str, str]

    def token(self, *roles: str, mfa: bool = True, subject: str = "dpo-01", tenant: str = TENANT) -> str:
        return sign_token(self.key, self.ledger.settings, roles=list(roles), tenant=tenant, subject=subject,
                          ttl_seconds=600, mfa=mfa)  # fmt: skip

    def headers(self, *roles: str, **kw: Any) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token(*roles, **kw)}"}

    def post_events(self, events: list[dict[str, Any]]) -> None:
        response = self.http.post(
            "/v1/events", content=json.dumps(events), headers={**self.headers("ingest"), **BATCH}
        )
        assert response.status_code == 201, response.text

    def erase(self, *, roles: tuple[str, ...] = ("admin",), mfa: bool = True, **body: Any) -> httpx.Response:
        body = {"subject": SUBJECT, "reason": "End of contract; the annotator asked to be forgotten.",
                "approver": "compliance-01", **body}  # fmt: skip
        return self.http.post("/v1/erasures", json=body, headers=self.headers(*roles, mfa=mfa))

    def event(self, event_id: str) -> dict[str, Any]:
        response = self.http.get(f"/v1/events/{event_id}", headers=self.headers("auditor"))
        assert response.status_code == 200, response.text
        return response.json()["event"]

    def events_of(self, **params: str) -> httpx.Response:
        return self.http.get("/v1/events", params=params, headers=self.headers("auditor"))


@pytest.fixture
def world(ledger: Ledger, signing_key: Ed25519PrivateKey) -> Iterator[World]:
    """The subject's review comment, access details and license number (sealed under the subject's key as
    reviewer, actor and annotator), and another reviewer's comment."""
    mark = uuid.uuid4().hex[:8]
    secrets = {
        "comment": f"Agree with the reader {mark}; no change.",
        "source_address": f"10.{int(mark[:2], 16)}.7.17",
        "license_number": f"RAD-{mark}",
    }
    other = f"Second reader concurs {mark}."
    events = {
        "review": make_event(TENANT, "review.submitted", actor=SUBJECT, data_comment=secrets["comment"]),
        "access": make_event(TENANT, "access.data_viewed", actor=SUBJECT, data_source_address=secrets["source_address"]),
        "credential": make_event(TENANT, "credential.granted", data_annotator=SUBJECT,
                                 data_license_number=secrets["license_number"]),
        "other": make_event(TENANT, "review.submitted", actor="rad-02", data_comment=other),
    }  # fmt: skip
    with serving(ledger) as url, httpx.Client(base_url=url, timeout=30) as http:
        w = World(ledger, http, signing_key, secrets, other, {k: v["id"] for k, v in events.items()})
        w.post_events(list(events.values()))
        yield w


def opened(sealer: Sealer, event: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = sealer.unseal(event)["data"]
    return data


def fresh_sealer(ledger: Ledger) -> Sealer:
    """A sealer with an empty key cache, as another process over the same database would have."""
    provider = LocalKeyFileProvider(ledger.settings.resolved_master_key_file)
    return Sealer(provider, PgSubjectKeyStore(ledger.db))


def projection_text(ledger: Ledger) -> str:
    """Every row of every projection table, as text."""
    with ledger.db.connect() as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            " AND table_name LIKE 'proj\\_%' ORDER BY table_name"
        ).fetchall()]  # fmt: skip
        assert len(tables) > 5
        return "\n".join(str(row[0]) for t in tables for row in conn.execute(f"SELECT t::text FROM {t} t"))


def key_rows(ledger: Ledger, subject: str = SUBJECT) -> list[tuple[str, bool, bool]]:
    """(kid, wrapped present, erased_at set) of the subject's key rows, oldest first."""
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT kid, wrapped IS NOT NULL, erased_at IS NOT NULL FROM ledger_subject_keys"
            " WHERE tenant = %s AND subject = %s ORDER BY created_at, kid",
            (TENANT, subject),
        ).fetchall()
    return [(str(k), bool(w), bool(e)) for k, w, e in rows]


def erasure_events(w: World) -> list[dict[str, Any]]:
    response = w.events_of(type="erasure.executed")
    assert response.status_code == 200, response.text
    return [e["event"] for e in response.json()["events"]]


class TestErasure:
    def test_sealed_values_read_as_erased_after_it_and_other_subjects_are_untouched(
        self, world: World
    ) -> None:
        sealer = world.ledger.sealer  # the serving process's own sealer, its key cache warm
        before = {name: world.event(world.ids[name]) for name in ("review", "access", "credential")}
        assert opened(sealer, before["review"])["comment"] == world.secrets["comment"]
        assert opened(sealer, before["credential"])["license_number"] == world.secrets["license_number"]

        response = world.erase()

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["subject"] == SUBJECT
        assert (
            body["sealed_events"] == 3
        )  # as reviewer, as actor of the access, as the credential's annotator
        [(kid, wrapped, erased)] = key_rows(world.ledger)
        assert body["keys_erased"] == [kid]
        assert (wrapped, erased) == (False, True)
        for name, field in (
            ("review", "comment"),
            ("access", "source_address"),
            ("credential", "license_number"),
        ):
            after = world.event(world.ids[name])
            assert after == before[name]  # the stored, hashed form is unchanged
            assert opened(sealer, after)[field] == "[erased]"
            assert opened(fresh_sealer(world.ledger), after)[field] == "[erased]"
        assert opened(sealer, world.event(world.ids["other"]))["comment"] == world.other_secret

    def test_no_read_serves_the_plaintext_after_it(self, world: World) -> None:
        assert world.erase().status_code == 201
        reads = [
            world.events_of(actor=SUBJECT),
            world.events_of(),
            world.http.get(f"/v1/items/{DATASET}/{ITEM}/provenance", headers=world.headers("auditor")),
            world.http.get(f"/v1/events/{world.ids['credential']}", headers=world.headers("auditor")),
        ]
        for response in reads:
            assert response.status_code == 200, response.text
            for secret in world.secrets.values():
                assert secret not in response.text

    def test_the_erasure_is_on_the_record_and_the_ledger_still_verifies(self, world: World) -> None:
        response = world.erase(erasure_id="era-2027-001")
        assert response.status_code == 201, response.text

        [event] = erasure_events(world)
        assert event["id"] == "ledger:erasure:era-2027-001" == response.json()["receipt"]["id"]
        assert (event["source"], event["actor"], event["actorrole"]) == ("urn:ledger", "dpo-01", "admin")
        assert event["data"] == {"erasure_id": "era-2027-001", "data_subject": SUBJECT,
                                 "reason": "End of contract; the annotator asked to be forgotten.",
                                 "approver": "compliance-01"}  # fmt: skip
        report = verify(world.ledger.db, jobs=1)
        assert report.intact
        with world.ledger.db.connect() as conn:
            [(stored,)] = conn.execute("SELECT count(*) FROM ledger_events").fetchall()
        assert report.checked == stored  # every event, the records of the test's reads among them
        with world.ledger.db.connect() as conn:
            row = conn.execute(
                "SELECT data_subject, executed_at IS NOT NULL FROM proj_erasures WHERE tenant = %s AND erasure_id = %s",
                (TENANT, "era-2027-001"),
            ).fetchone()
        assert row == (SUBJECT, True)

    def test_no_projection_holds_the_plaintext_before_or_after_or_after_a_rebuild(self, world: World) -> None:
        # The scan can fail: the test's own plaintexts are in the stored events' data as sealed boxes only,
        # while a value that is not sealed (the item) is found in the projections.
        assert ITEM in projection_text(world.ledger)
        for moment in ("before", "after"):
            if moment == "after":
                assert world.erase().status_code == 201
            text = projection_text(world.ledger)
            for secret in world.secrets.values():
                assert secret not in text, f"{secret!r} in a projection {moment} the erasure"
        rebuild(world.ledger.db, all_projectors())
        text = projection_text(world.ledger)
        assert not [s for s in world.secrets.values() if s in text]
        assert SUBJECT in text  # the erasure itself is projected (proj_erasures), by the subject's pseudonym

    def test_a_bundle_built_after_it_verifies_offline(self, world: World, tmp_path: Path) -> None:
        assert world.erase().status_code == 201
        keys = world.http.get("/v1/keys", headers=world.headers("auditor")).json()["checkpoint_keys"]
        response = world.http.get("/v1/bundles", params={"item": f"{DATASET}/{ITEM}"},
                                  headers=world.headers("auditor", mfa=True))  # fmt: skip
        assert response.status_code == 200, response.text
        path = tmp_path / "after-erasure.bundle.json"
        path.write_bytes(response.content)

        checked = subprocess.run(
            [sys.executable, "-m", "ledger.verifier", str(path), "--key", keys[0]["vkey"]],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip

        assert checked.returncode == 0, checked.stdout + checked.stderr
        held = {d["event"]["id"]: d["event"] for d in
                (json.loads(base64.b64decode(e["canonical"])) for e in response.json()["events"])}  # fmt: skip
        assert held[world.ids["review"]] == world.event(world.ids["review"])  # the sealed box, as stored
        assert opened(world.ledger.sealer, held[world.ids["review"]])["comment"] == "[erased]"
        for secret in world.secrets.values():
            assert secret not in json.dumps(held)


class TestHolds:
    @pytest.mark.parametrize(
        "scope",
        [{"log": TENANT}, {"dataset": DATASET}, {"items": [ITEM]}, {"dataset": DATASET, "items": [ITEM]}],
        ids=["log", "dataset", "items", "items-of-dataset"],
    )
    def test_a_hold_covering_the_subjects_records_refuses_it_naming_the_hold(
        self, world: World, scope
    ) -> None:
        world.post_events(
            [make_event(TENANT, "retention.hold_placed", data_hold_id="hold-7", data_scope=scope)]
        )

        response = world.erase()

        assert response.status_code == 409, response.text
        problem = response.json()
        assert problem["code"] == "erasure_held"
        assert "'hold-7'" in problem["detail"]
        assert problem["errors"] == [{"field": "subject", "message": "covered by legal hold 'hold-7'"}]
        assert key_rows(world.ledger)[0][1:] == (True, False)  # the key is still there
        assert (
            opened(world.ledger.sealer, world.event(world.ids["review"]))["comment"]
            == world.secrets["comment"]
        )
        assert erasure_events(world) == []

    def test_holds_not_covering_them_or_released_do_not(self, world: World) -> None:
        released = make_event(
            TENANT, "retention.hold_placed", data_hold_id="hold-old", data_scope={"log": TENANT}
        )
        world.post_events([
            make_event(TENANT, "retention.hold_placed", data_hold_id="hold-a", data_scope={"dataset": "other-ds"}),
            make_event(TENANT, "retention.hold_placed", data_hold_id="hold-b", data_scope={"items": ["other-item"]}),
            make_event(TENANT, "retention.hold_placed", data_hold_id="hold-c",
                       data_scope={"dataset": "other-ds", "items": [ITEM]}),
            released,
        ])  # fmt: skip
        world.post_events([make_event(TENANT, "retention.hold_released", data_hold_id="hold-old",
                                      data_scope={"log": TENANT}, time="2026-04-01T00:00:00Z")])  # fmt: skip

        response = world.erase()

        assert response.status_code == 201, response.text

    def test_a_hold_on_another_subjects_records_only_does_not(self, world: World) -> None:
        other_item = "1.2.826.0.1.3680043.10.543.2002"
        world.post_events([
            make_event(TENANT, "review.submitted", actor="rad-02", data_item=other_item, data_comment="Fine."),
            make_event(TENANT, "retention.hold_placed", data_hold_id="hold-d", data_scope={"items": [other_item]}),
        ])  # fmt: skip

        assert world.erase().status_code == 201


class TestWhoMayErase:
    @pytest.mark.parametrize(
        ("roles", "mfa"),
        [(("admin",), False), (("auditor",), True), (("security",), True), (("ingest",), True),
         (("regulatory", "auditor"), True)],
    )  # fmt: skip
    def test_anyone_but_an_admin_signed_in_with_mfa_is_refused(self, world: World, roles, mfa) -> None:
        response = world.erase(roles=roles, mfa=mfa)

        assert response.status_code == 403, response.text
        assert key_rows(world.ledger)[0][1] is True
        assert erasure_events(world) == []

    def test_no_token_is_401(self, world: World) -> None:
        response = world.http.post("/v1/erasures", json={"subject": SUBJECT, "reason": "r", "approver": "a"})
        assert response.status_code == 401

    def test_the_token_tenant_is_the_one_erased_in(self, world: World) -> None:
        other = world.http.post(
            "/v1/erasures",
            json={"subject": SUBJECT, "reason": "Contract ended.", "approver": "compliance-01"},
            headers=world.headers("admin", tenant="beta"),
        )
        assert other.status_code == 201, other.text
        assert other.json()["keys_erased"] == []  # beta never sealed anything under rad-01
        assert key_rows(world.ledger)[0][1] is True  # acme's key is untouched


class TestRequests:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"subject": None}, "subject"),
            ({"subject": "two words"}, "subject"),
            ({"reason": "   "}, "reason"),
            ({"reason": "Asked by patient, e-mail jane.doe@example.com"}, "reason"),
            ({"approver": "dpo-01"}, "approver"),  # the requester approving their own erasure
            ({"erasure_id": "a/b"}, "erasure_id"),
            ({"erasure_id": "x" * 200}, "erasure_id"),
            ({"extra": 1}, "extra"),
        ],
    )
    def test_a_bad_request_is_422_naming_the_field(self, world: World, body, field) -> None:
        response = world.erase(**body)

        assert response.status_code == 422, response.text
        assert field in [e["field"] for e in response.json()["errors"]]
        assert key_rows(world.ledger)[0][1] is True

    def test_a_missing_member_is_named(self, world: World) -> None:
        response = world.http.post("/v1/erasures", json={"subject": SUBJECT}, headers=world.headers("admin"))
        assert response.status_code == 422
        assert [e["field"] for e in response.json()["errors"]] == ["reason", "approver"]

    def test_a_body_that_is_not_json_is_400_and_another_media_type_415(self, world: World) -> None:
        h = world.headers("admin")
        assert (
            world.http.post(
                "/v1/erasures", content=b"{", headers={**h, "content-type": "application/json"}
            ).status_code
            == 400
        )
        assert (
            world.http.post(
                "/v1/erasures", content=b"[]", headers={**h, "content-type": "application/json"}
            ).status_code
            == 400
        )
        assert (
            world.http.post(
                "/v1/erasures", content=b"{}", headers={**h, "content-type": "text/plain"}
            ).status_code
            == 415
        )

    def test_a_producer_may_no_longer_claim_an_erasure_but_may_ask_for_one(self, world: World) -> None:
        claimed = make_event(TENANT, "erasure.executed", source="urn:acme:platform", actor="dpo-01")
        response = world.http.post("/v1/events", json=claimed,
                                   headers={**world.headers("ingest"), "content-type": "application/cloudevents+json"})  # fmt: skip
        assert response.status_code == 422, response.text
        assert [e["field"] for e in response.json()["errors"]] == ["type"]
        world.post_events([make_event(TENANT, "erasure.requested")])

    def test_one_a_producer_posted_before_still_reads_verifies_and_projects(self, world: World) -> None:
        # Recorded by an older ledger that accepted it from producers.
        old = make_event(TENANT, "erasure.executed", data_erasure_id="era-old")
        world.ledger.appender.append([validate_event(old, allow_internal=True)])

        assert world.event(old["id"])["data"]["erasure_id"] == "era-old"
        assert verify(world.ledger.db, jobs=1).intact
        rebuild(world.ledger.db, all_projectors())
        with world.ledger.db.connect() as conn:
            assert conn.execute(
                "SELECT count(*) FROM proj_erasures WHERE erasure_id = 'era-old'"
            ).fetchone() == (1,)


class TestAgain:
    def test_the_same_erasure_again_returns_its_receipt_and_does_nothing(self, world: World) -> None:
        first = world.erase(erasure_id="era-1")
        again = world.erase(erasure_id="era-1")

        assert (first.status_code, again.status_code) == (201, 200)
        assert again.json()["receipt"] == {**first.json()["receipt"], "duplicate": True}
        assert again.json()["keys_erased"] == []
        assert len(erasure_events(world)) == 1

    def test_the_same_erasure_id_with_other_content_is_409(self, world: World) -> None:
        assert world.erase(erasure_id="era-1").status_code == 201
        response = world.erase(erasure_id="era-1", reason="Another reason.")

        assert response.status_code == 409
        assert response.json()["code"] == "idempotency_conflict"
        assert [e["field"] for e in response.json()["errors"]] == ["erasure_id"]

    def test_a_new_erasure_of_an_erased_subject_is_409_naming_the_first(self, world: World) -> None:
        assert world.erase(erasure_id="era-1").status_code == 201
        response = world.erase(erasure_id="era-2")

        assert response.status_code == 409
        assert response.json()["code"] == "already_erased"
        assert "'era-1'" in response.json()["detail"]
        assert len(erasure_events(world)) == 1

    def test_new_events_of_the_subject_seal_under_a_fresh_key_and_read(self, world: World) -> None:
        assert world.erase(erasure_id="era-1").status_code == 201
        later = make_event(TENANT, "review.submitted", actor=SUBJECT, data_comment="A new comment after.")
        world.post_events([later])

        stored = world.event(later["id"])
        assert opened(world.ledger.sealer, stored)["comment"] == "A new comment after."
        assert opened(fresh_sealer(world.ledger), stored)["comment"] == "A new comment after."
        assert opened(world.ledger.sealer, world.event(world.ids["review"]))["comment"] == "[erased]"
        [(old, *old_state), (new, *new_state)] = key_rows(world.ledger)
        assert (old_state, new_state) == ([False, True], [True, False])
        assert stored["data"]["comment"]["sealed"]["kid"] == new != old

        # And that key can be erased in turn: it is a new erasure, with something to erase.
        again = world.erase(erasure_id="era-2")
        assert again.status_code == 201, again.text
        assert (again.json()["keys_erased"], again.json()["sealed_events"]) == ([new], 1)
        assert opened(world.ledger.sealer, world.event(later["id"]))["comment"] == "[erased]"


def test_the_route_is_documented_exactly(http: httpx.Client) -> None:
    document = http.get("/schema/openapi.json").json()
    operation = document["paths"]["/v1/erasures"]["post"]

    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ErasureRequest"}
    request = document["components"]["schemas"]["ErasureRequest"]
    assert request["required"] == ["subject", "reason", "approver"]
    assert set(request["properties"]) == {"subject", "reason", "approver", "erasure_id"}
    assert request["additionalProperties"] is False
    assert set(operation["responses"]) == {
        "200",
        "201",
        "400",
        "401",
        "403",
        "409",
        "413",
        "415",
        "422",
        "500",
        "503",
    }
    assert operation["security"] == [{"bearer": []}]
