"""Golden vectors: stored document → canonical bytes → leaf hash → chain hash, fixed in tests/assets/.

If one of these fails, the bytes the ledger hashes have changed, and every existing log and evidence
bundle would stop verifying. Fix the code, never the vectors.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.domain.canonical import canonicalize
from ledger.domain.hashing import chain_hash, leaf_hash

VECTORS = json.loads(
    (Path(__file__).parent.parent / "assets" / "golden-chain.json").read_text(encoding="utf-8")
)["vectors"]


@pytest.mark.parametrize("vector", VECTORS, ids=[v["document"]["event"]["id"] for v in VECTORS])
def test_canonical_bytes_and_hashes_are_exactly_as_recorded(vector: dict) -> None:
    canonical = canonicalize(vector["document"])
    assert canonical == vector["canonical_utf8"].encode("utf-8")
    assert leaf_hash(canonical).hex() == vector["leaf_hash"]
    assert chain_hash(bytes.fromhex(vector["prev_hash"]), leaf_hash(canonical)).hex() == vector["hash"]


def test_the_vectors_form_one_chain_from_genesis() -> None:
    assert VECTORS[0]["prev_hash"] == "00" * 32
    assert all(VECTORS[i]["prev_hash"] == VECTORS[i - 1]["hash"] for i in range(1, len(VECTORS)))
