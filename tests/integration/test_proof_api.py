"""Proof routes over a real server: every proof served verifies with ``ledger.domain.merkle`` against roots
recomputed from the stored canonical bytes; bad parameters are 400s naming them; tenants stay apart."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from ledger.domain import merkle
from ledger.runtime import Ledger
from tests.conftest import TokenFactory, make_event

BATCH = {"content-type": "application/cloudevents-batch+json"}
SIZE = 300


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def b64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


@pytest.fixture
def recorded(http: httpx.Client, token: TokenFactory, tenant: str) -> list[dict]:
    """SIZE events of ``tenant``, posted in batches of 1, 255 and 44; their receipts."""
    receipts = []
    for n in (1, 255, SIZE - 256):
        body = json.dumps([make_event(tenant) for _ in range(n)])
        response = http.post(
            "/v1/events", content=body, headers={**bearer(token("ingest", tenant=tenant)), **BATCH}
        )
        assert response.status_code == 201, response.text
        receipts += response.json()["receipts"]
    return receipts


def leaves(ledger: Ledger, log: str) -> list[bytes]:
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT canonical FROM ledger_events WHERE log = %s ORDER BY position", (log,)
        ).fetchall()
    return [merkle.leaf_hash(bytes(r[0])) for r in rows]


def root_of(leaf_hashes: list[bytes], size: int) -> bytes:
    """MTH over the first ``size`` leaves, by the RFC 9162 definition."""
    return merkle.root(size, _leaves_of(leaf_hashes))


def _leaves_of(leaf_hashes: list[bytes]) -> merkle.SubtreeHash:
    def subtree(start: int, n: int) -> bytes:
        if n == 1:
            return leaf_hashes[start]
        return merkle.node_hash(subtree(start, n // 2), subtree(start + n // 2, n // 2))

    return subtree


class TestInclusion:
    @pytest.mark.parametrize(
        ("position", "tree_size"), [(0, None), (255, None), (256, 257), (299, None), (3, 4)]
    )
    def test_the_proof_verifies_against_the_recomputed_root(
        self, http, token: TokenFactory, tenant: str, recorded, shared_ledger: Ledger, position, tree_size
    ) -> None:
        params = {"position": position} | ({"tree_size": tree_size} if tree_size else {})
        response = http.get(
            f"/v1/logs/{tenant}/proofs/inclusion",
            params=params,
            headers=bearer(token("auditor", tenant=tenant)),
        )

        assert response.status_code == 200, response.text
        body = response.json()
        size = tree_size or SIZE
        stored = leaves(shared_ledger, tenant)
        assert set(body) == {"log", "tree_size", "root", "leaf_index", "leaf_hash", "hashes", "checkpoint"}
        assert body["checkpoint"] is None  # no checkpoint signed in these tests: the current tree
        assert (body["log"], body["tree_size"], body["leaf_index"]) == (tenant, size, position)
        assert b64(body["leaf_hash"]) == stored[position]
        assert b64(body["root"]) == root_of(stored, size)
        merkle.verify_inclusion(
            position, size, stored[position], [b64(h) for h in body["hashes"]], root_of(stored, size)
        )

    @pytest.mark.parametrize("role", ["auditor", "regulatory", "security"])
    def test_the_reading_roles_get_proofs(
        self, http, token: TokenFactory, tenant: str, recorded, role: str
    ) -> None:
        response = http.get(
            f"/v1/logs/{tenant}/proofs/inclusion?position=1", headers=bearer(token(role, tenant=tenant))
        )
        assert response.status_code == 200, response.text


class TestConsistency:
    @pytest.mark.parametrize(("old", "new"), [(1, None), (256, 257), (255, 256), (1, 10), (7, 7), (100, 299)])
    def test_the_proof_verifies_between_the_recomputed_roots(
        self, http, token: TokenFactory, tenant: str, recorded, shared_ledger: Ledger, old, new
    ) -> None:
        params = {"from": old} | ({"to": new} if new else {})
        response = http.get(
            f"/v1/logs/{tenant}/proofs/consistency",
            params=params,
            headers=bearer(token("regulatory", tenant=tenant)),
        )

        assert response.status_code == 200, response.text
        body = response.json()
        stored = leaves(shared_ledger, tenant)
        to = new or SIZE
        assert set(body) == {"log", "from", "to", "from_root", "to_root", "hashes", "checkpoint"}
        assert (body["log"], body["from"], body["to"]) == (tenant, old, to)
        assert (b64(body["from_root"]), b64(body["to_root"])) == (root_of(stored, old), root_of(stored, to))
        merkle.verify_consistency(
            old, to, root_of(stored, old), root_of(stored, to), [b64(h) for h in body["hashes"]]
        )


class TestAnEventWithItsProof:
    def test_proof_true_adds_the_events_inclusion_proof(
        self, http, token: TokenFactory, tenant: str, recorded, shared_ledger: Ledger
    ) -> None:
        receipt = recorded[257]
        response = http.get(
            f"/v1/events/{receipt['id']}",
            params={"proof": "true"},
            headers=bearer(token("auditor", tenant=tenant)),
        )

        assert response.status_code == 200, response.text
        body = response.json()
        proof = body["proof"]
        stored = leaves(shared_ledger, tenant)
        assert proof["leaf_index"] == body["receipt"]["position"] == 257
        assert proof["tree_size"] == SIZE
        merkle.verify_inclusion(257, SIZE, stored[257], [b64(h) for h in proof["hashes"]], b64(proof["root"]))
        assert b64(proof["root"]) == root_of(stored, SIZE)

    def test_without_it_there_is_no_proof(self, http, token: TokenFactory, tenant: str, recorded) -> None:
        response = http.get(
            f"/v1/events/{recorded[0]['id']}", headers=bearer(token("auditor", tenant=tenant))
        )
        assert response.status_code == 200
        assert "proof" not in response.json()


class TestRefusals:
    @pytest.mark.parametrize(
        ("route", "query", "named"),
        [
            ("inclusion", "position=300", "position"),
            ("inclusion", "position=0&tree_size=301", "tree_size"),
            ("inclusion", "position=5&tree_size=5", "position"),
            ("inclusion", "position=-1", "position"),
            ("inclusion", "position=x", "position"),
            ("inclusion", "", "position"),
            ("consistency", "from=5&to=4", "from"),
            ("consistency", "from=1&to=301", "to"),
            ("consistency", "from=301", "from"),
            ("consistency", "from=0&to=10", "from"),
            ("consistency", "to=3", "from"),
        ],
    )
    def test_out_of_range_values_are_a_400_naming_the_parameter(
        self, http, token: TokenFactory, tenant: str, recorded, route: str, query: str, named: str
    ) -> None:
        response = http.get(
            f"/v1/logs/{tenant}/proofs/{route}?{query}", headers=bearer(token("auditor", tenant=tenant))
        )

        assert response.status_code == 400, response.text
        assert response.headers["content-type"].startswith("application/problem+json")
        assert [e["field"] for e in response.json()["errors"]] == [named]

    def test_another_tenant_gets_what_other_reads_give_it(
        self, http, token: TokenFactory, tenant: str, recorded
    ) -> None:
        stranger = bearer(token("auditor", tenant="someone-else"))
        event = http.get(f"/v1/events/{recorded[0]['id']}", headers=stranger)
        inclusion = http.get(f"/v1/logs/{tenant}/proofs/inclusion?position=0", headers=stranger)
        consistency = http.get(f"/v1/logs/{tenant}/proofs/consistency?from=1", headers=stranger)

        assert event.status_code == inclusion.status_code == consistency.status_code == 404

    def test_an_ingest_token_may_not_read_proofs(
        self, http, token: TokenFactory, tenant: str, recorded
    ) -> None:
        response = http.get(
            f"/v1/logs/{tenant}/proofs/inclusion?position=0", headers=bearer(token("ingest", tenant=tenant))
        )
        assert response.status_code == 403

    def test_no_token_is_a_401(self, http, tenant: str) -> None:
        assert http.get(f"/v1/logs/{tenant}/proofs/consistency?from=0").status_code == 401
