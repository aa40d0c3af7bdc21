"""Checkpoint routes over a real server: the latest signed note as text/plain, the list with a cursor,
the keys, proofs relative to the latest checkpoint, and witnesses' cosignatures accepted or refused."""

from __future__ import annotations

import base64
import dataclasses
import json
import time
from collections.abc import Iterator

import httpx
import pytest

from ledger.domain import merkle
from ledger.runtime import Ledger, wire
from ledger.verifier.checkpoint import open_checkpoint, parse_checkpoint
from ledger.verifier.cosignature import cosign, verify_cosignatures
from ledger.verifier.keys import COSIGNATURE_ED25519, SeedSigner, parse_vkey
from ledger.verifier.note import parse_note
from tests.conftest import TokenFactory, make_event, serving

BATCH = {"content-type": "application/cloudevents-batch+json"}
TEXT = {"content-type": "text/plain"}


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def post_events(http: httpx.Client, token: TokenFactory, tenant: str, n: int) -> list[dict]:
    body = json.dumps([make_event(tenant) for _ in range(n)])
    response = http.post(
        "/v1/events", content=body, headers={**bearer(token("ingest", tenant=tenant)), **BATCH}
    )
    assert response.status_code == 201, response.text
    return response.json()["receipts"]


@pytest.fixture
def signed(http: httpx.Client, token: TokenFactory, tenant: str, shared_ledger: Ledger) -> list[dict]:
    """20 events of ``tenant`` and a checkpoint of them (tree size 20); their receipts."""
    receipts = post_events(http, token, tenant, 20)
    assert shared_ledger.checkpoints.sign(tenant) is not None
    return receipts


class TestLatest:
    @pytest.mark.parametrize("role", ["auditor", "regulatory", "security", "witness"])
    def test_the_signed_note_verifies_under_each_published_key(
        self, http, token: TokenFactory, tenant: str, signed, shared_ledger: Ledger, role: str
    ) -> None:
        response = http.get(f"/v1/logs/{tenant}/checkpoint", headers=bearer(token(role, tenant=tenant)))
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "text/plain; charset=utf-8"

        keys = http.get("/v1/keys", headers=bearer(token(role, tenant=tenant)))
        assert keys.status_code == 200, keys.text
        published = [parse_vkey(k["vkey"]) for k in keys.json()["checkpoint_keys"]]
        assert {k["type"] for k in keys.json()["checkpoint_keys"]} == {"Ed25519", "ML-DSA-44"}
        for key in published:
            opened = open_checkpoint(response.content, [key])
            assert opened.checkpoint.size == 20
            assert opened.checkpoint.root == shared_ledger.trees.root(tenant, 20, tenant=tenant)[1]
            assert opened.checkpoint.origin == f"ledger.local/logs/{tenant}"

    def test_none_yet_is_404(self, http, token: TokenFactory, tenant: str) -> None:
        post_events(http, token, tenant, 2)
        response = http.get(f"/v1/logs/{tenant}/checkpoint", headers=bearer(token("auditor", tenant=tenant)))
        assert response.status_code == 404
        assert "no signed checkpoint" in response.json()["detail"]

    def test_another_tenants_log_is_not_found(self, http, token: TokenFactory, tenant: str, signed) -> None:
        response = http.get(
            f"/v1/logs/{tenant}/checkpoint", headers=bearer(token("auditor", tenant="someone-else"))
        )
        assert response.status_code == 404
        listing = http.get(
            f"/v1/logs/{tenant}/checkpoints", headers=bearer(token("auditor", tenant="someone-else"))
        )
        assert listing.json()["checkpoints"] == []

    def test_an_ingest_token_may_not_read_checkpoints(
        self, http, token: TokenFactory, tenant: str, signed
    ) -> None:
        response = http.get(f"/v1/logs/{tenant}/checkpoint", headers=bearer(token("ingest", tenant=tenant)))
        assert response.status_code == 403
        assert http.get("/v1/keys", headers=bearer(token("ingest", tenant=tenant))).status_code == 403


def test_the_list_pages_by_tree_size(http, token: TokenFactory, tenant: str, shared_ledger: Ledger) -> None:
    for _ in range(3):
        post_events(http, token, tenant, 2)
        shared_ledger.checkpoints.sign(tenant)
    auth = bearer(token("auditor", tenant=tenant))

    first = http.get(f"/v1/logs/{tenant}/checkpoints", params={"limit": 2}, headers=auth).json()
    assert [c["tree_size"] for c in first["checkpoints"]] == [2, 5]
    rest = http.get(
        f"/v1/logs/{tenant}/checkpoints", params={"limit": 2, "cursor": first["next_cursor"]}, headers=auth
    ).json()
    assert [c["tree_size"] for c in rest["checkpoints"]] == [8]
    assert rest["next_cursor"] is None
    assert rest["checkpoints"][0]["note"].startswith(f"ledger.local/logs/{tenant}\n8\n")


class TestProofsAgainstTheCheckpoint:
    def test_an_inclusion_proof_defaults_to_the_latest_checkpoint_and_carries_it(
        self, http, token: TokenFactory, tenant: str, signed
    ) -> None:
        post_events(http, token, tenant, 5)  # the log grows past the checkpoint
        response = http.get(
            f"/v1/logs/{tenant}/proofs/inclusion",
            params={"position": 3},
            headers=bearer(token("auditor", tenant=tenant)),
        )
        body = response.json()
        assert body["tree_size"] == 20
        checkpoint = parse_checkpoint(parse_note(body["checkpoint"]["note"].encode()).text)
        assert checkpoint.size == 20
        assert base64.b64decode(body["root"]) == checkpoint.root
        merkle.verify_inclusion(
            3,
            20,
            base64.b64decode(body["leaf_hash"]),
            [base64.b64decode(h) for h in body["hashes"]],
            checkpoint.root,
        )

    def test_an_event_newer_than_the_checkpoint_is_proved_against_the_current_tree(
        self, http, token: TokenFactory, tenant: str, signed
    ) -> None:
        newer = post_events(http, token, tenant, 1)[0]
        response = http.get(
            f"/v1/events/{newer['id']}",
            params={"proof": "true"},
            headers=bearer(token("auditor", tenant=tenant)),
        )
        proof = response.json()["proof"]
        assert (proof["tree_size"], proof["checkpoint"]) == (22, None)  # 20, the checkpoint's event, this one

        older = http.get(
            f"/v1/events/{signed[0]['id']}",
            params={"proof": "true"},
            headers=bearer(token("auditor", tenant=tenant)),
        ).json()["proof"]
        assert older["tree_size"] == 20
        assert older["checkpoint"]["tree_size"] == 20

    def test_a_consistency_proof_defaults_to_the_latest_checkpoint(
        self, http, token: TokenFactory, tenant: str, signed
    ) -> None:
        post_events(http, token, tenant, 3)
        body = http.get(
            f"/v1/logs/{tenant}/proofs/consistency",
            params={"from": 5},
            headers=bearer(token("witness", tenant=tenant)),
        ).json()
        assert (body["from"], body["to"], body["checkpoint"]["tree_size"]) == (5, 20, 20)


# ---- cosignatures ------------------------------------------------------------------------------------


WITNESS = SeedSigner.generate("witness.example.org", COSIGNATURE_ED25519)


@pytest.fixture
def witnessed(ledger: Ledger) -> Iterator[tuple[Ledger, httpx.Client]]:
    """A ledger of its own that accepts WITNESS's cosignatures, served, and a client for it."""
    cfg = dataclasses.replace(ledger.settings.checkpoints, witness_keys=(WITNESS.vkey,))
    configured = wire(dataclasses.replace(ledger.settings, checkpoints=cfg), ledger.db)
    with serving(configured) as url, httpx.Client(base_url=url, timeout=30) as client:
        yield configured, client


def cosigned_note(client: httpx.Client, auth: dict[str, str], log: str, signer: SeedSigner = WITNESS) -> str:
    note = client.get(f"/v1/logs/{log}/checkpoint", headers=auth).text
    checkpoint = parse_checkpoint(parse_note(note.encode()).text)
    return note + cosign(checkpoint, signer, int(time.time())).line + "\n"


class TestCosignatures:
    @pytest.fixture
    def setup(
        self, witnessed, token: TokenFactory, tenant: str
    ) -> tuple[Ledger, httpx.Client, dict[str, str]]:
        ledger, client = witnessed
        body = json.dumps([make_event(tenant) for _ in range(7)])
        assert (
            client.post(
                "/v1/events", content=body, headers={**bearer(token("ingest", tenant=tenant)), **BATCH}
            ).status_code
            == 201
        )
        assert ledger.checkpoints.sign(tenant) is not None
        return ledger, client, bearer(token("witness", tenant=tenant))

    def test_a_configured_witness_cosignature_is_recorded_and_served(self, setup, tenant: str) -> None:
        ledger, client, auth = setup
        body = cosigned_note(client, auth, tenant)

        response = client.post(f"/v1/logs/{tenant}/cosignatures", content=body, headers={**auth, **TEXT})
        assert response.status_code == 201, response.text
        assert response.json()["recorded"] == [WITNESS.verifier_key.label]

        again = client.post(f"/v1/logs/{tenant}/cosignatures", content=body, headers={**auth, **TEXT})
        assert again.status_code == 200, again.text
        assert again.json()["repeated"] == [WITNESS.verifier_key.label]

        served = client.get(f"/v1/logs/{tenant}/checkpoint", headers=auth).content
        assert [v.key for v in verify_cosignatures(parse_note(served), [WITNESS.verifier_key])] == [
            WITNESS.verifier_key
        ]
        published = ledger.checkpoints.directory.path(ledger.checkpoints.store.latest(tenant, tenant=None))
        assert published.read_bytes() == served  # the directory copy carries the cosignature too
        with ledger.db.connect() as conn:
            types = [
                r[0]
                for r in conn.execute(
                    "SELECT type FROM ledger_events WHERE log = %s AND type NOT LIKE 'access.%%'"
                    " ORDER BY position",
                    (tenant,),
                )
            ]
        # (Between them, the records of the reads the test made: the checkpoint fetched to cosign it.)
        assert types[-2:] == ["ledger.checkpoint_signed", "ledger.checkpoint_cosigned"]
        keys = client.get("/v1/keys", headers=auth).json()
        assert keys["witness_keys"][0]["vkey"] == WITNESS.vkey

    def test_a_witness_cosigns_a_checkpoint_once_whatever_its_timestamps(self, setup, tenant: str) -> None:
        # Each timestamp makes a new line; kept, they would push the note past 100 signatures.
        _, client, auth = setup
        note = client.get(f"/v1/logs/{tenant}/checkpoint", headers=auth).text
        checkpoint = parse_checkpoint(parse_note(note.encode()).text)
        for i, status in enumerate((201, 200, 200)):
            body = note + cosign(checkpoint, WITNESS, int(time.time()) + i).line + "\n"
            response = client.post(f"/v1/logs/{tenant}/cosignatures", content=body, headers={**auth, **TEXT})
            assert response.status_code == status, response.text
        served = parse_note(client.get(f"/v1/logs/{tenant}/checkpoint", headers=auth).content)
        assert [s.name for s in served.signatures].count(WITNESS.verifier_key.name) == 1

    def test_an_unknown_witness_is_refused_naming_its_key(self, setup, tenant: str) -> None:
        _, client, auth = setup
        stranger = SeedSigner.generate("stranger.example", COSIGNATURE_ED25519)
        response = client.post(
            f"/v1/logs/{tenant}/cosignatures",
            content=cosigned_note(client, auth, tenant, stranger),
            headers={**auth, **TEXT},
        )
        assert response.status_code == 422
        assert "stranger.example" in response.json()["detail"]

    def test_a_bad_signature_is_refused(self, setup, tenant: str) -> None:
        _, client, auth = setup
        note = cosigned_note(client, auth, tenant)
        head, line = note.rstrip("\n").rsplit("\n", 1)
        name, sig = line.rsplit(" ", 1)
        raw = bytearray(base64.b64decode(sig))
        raw[-1] ^= 1
        tampered = f"{head}\n{name} {base64.b64encode(bytes(raw)).decode()}\n"
        response = client.post(f"/v1/logs/{tenant}/cosignatures", content=tampered, headers={**auth, **TEXT})
        assert response.status_code == 422
        assert "does not verify" in response.json()["detail"]

    def test_a_checkpoint_never_signed_is_refused(self, setup, tenant: str) -> None:
        _, client, auth = setup
        note = client.get(f"/v1/logs/{tenant}/checkpoint", headers=auth).text
        checkpoint = parse_checkpoint(parse_note(note.encode()).text)
        forged = dataclasses.replace(checkpoint, size=checkpoint.size + 1)
        sig = cosign(forged, WITNESS, int(time.time())).line
        body = forged.text + "\n" + sig + "\n"
        response = client.post(f"/v1/logs/{tenant}/cosignatures", content=body, headers={**auth, **TEXT})
        assert response.status_code == 404
        assert "no checkpoint at tree size 8" in response.json()["detail"]

        other_root = dataclasses.replace(checkpoint, root=bytes(32))
        body = other_root.text + "\n" + cosign(other_root, WITNESS, int(time.time())).line + "\n"
        response = client.post(f"/v1/logs/{tenant}/cosignatures", content=body, headers={**auth, **TEXT})
        assert response.status_code == 422
        assert "not the one log" in response.json()["detail"]

    def test_only_a_witness_of_the_tenant_posts_text_plain(
        self, setup, tenant: str, token: TokenFactory
    ) -> None:
        _, client, auth = setup
        body = cosigned_note(client, auth, tenant)
        ingest = bearer(token("ingest", tenant=tenant))
        assert (
            client.post(
                f"/v1/logs/{tenant}/cosignatures", content=body, headers={**ingest, **TEXT}
            ).status_code
            == 403
        )
        other = bearer(token("witness", tenant="someone-else"))
        assert (
            client.post(
                f"/v1/logs/{tenant}/cosignatures", content=body, headers={**other, **TEXT}
            ).status_code
            == 404
        )
        as_json = {**auth, "content-type": "application/json"}
        assert (
            client.post(f"/v1/logs/{tenant}/cosignatures", content=body, headers=as_json).status_code == 415
        )
        garbage = client.post(f"/v1/logs/{tenant}/cosignatures", content="hello", headers={**auth, **TEXT})
        assert garbage.status_code == 400


def test_a_ledger_without_witness_keys_refuses_cosignatures(
    http, token: TokenFactory, tenant: str, signed
) -> None:
    auth = bearer(token("witness", tenant=tenant))
    body = cosigned_note(http, auth, tenant)
    response = http.post(f"/v1/logs/{tenant}/cosignatures", content=body, headers={**auth, **TEXT})
    assert response.status_code == 422
    assert "LEDGER_WITNESS_KEYS" in response.json()["detail"]
