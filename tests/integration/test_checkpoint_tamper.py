"""``ledger verify`` against the Merkle tree and the checkpoints: what a database superuser rewrites or rolls
back is found, because the tree is rebuilt from the events and checkpoints live outside the database."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from ledger.audit import audit
from ledger.domain.envelope import validate_event
from ledger.domain.hashing import chain_hash, leaf_hash
from ledger.runtime import Ledger
from ledger.storage.verify import verify
from tests.factories import example_event

SIZE = 600  # two complete level-0 tiles and a partial one

WAYS = {
    "one pass": {"jobs": 1},
    "ranges": {"jobs": 1, "range_size": 100},
    "workers": {"jobs": 2, "range_size": 100},
}


@pytest.fixture(params=list(WAYS))
def how(request: pytest.FixtureRequest) -> dict:
    return WAYS[request.param]


@pytest.fixture
def grown(ledger: Ledger) -> Ledger:
    events = [validate_event(example_event("annotation.created", tenant="acme")) for _ in range(SIZE)]
    for i in range(0, SIZE, 200):
        ledger.appender.append(events[i : i + 200])
    report = verify(ledger.db)
    assert report.intact, report.breaks
    return ledger


@pytest.fixture
def superuser(grown: Ledger) -> Iterator[psycopg.Connection]:
    """A superuser session with every append-only trigger disabled."""
    tables = ("ledger_events", "ledger_merkle_tiles", "ledger_log_heads")
    with psycopg.connect(grown.db.url, autocommit=True) as conn:
        for table in tables:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER USER")
        yield conn
        for table in tables:
            conn.execute(f"ALTER TABLE {table} ENABLE TRIGGER USER")


def only_break(ledger: Ledger, how: dict):
    report = verify(ledger.db, **how)
    assert not report.intact
    [found] = report.breaks
    return found


def test_a_tile_altered_alone_is_reported_with_its_level_tile_and_the_leaf_under_it(
    grown: Ledger, superuser: psycopg.Connection, how: dict
) -> None:
    superuser.execute(
        "UPDATE ledger_merkle_tiles SET hashes = set_byte(hashes, 32 * 9 + 4, get_byte(hashes, 32 * 9 + 4) # 1)"
        " WHERE log = 'acme' AND level = 0 AND tile = 1"
    )
    found = only_break(grown, how)
    assert (found.log, found.position) == ("acme", 256 + 9)
    assert found.details == {"level": 0, "tile": 1, "entry": 9}
    assert "tile 0/1" in found.reason


def test_a_deleted_tile_is_reported(grown: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    superuser.execute("DELETE FROM ledger_merkle_tiles WHERE log = 'acme' AND level = 0 AND tile = 0")
    found = only_break(grown, how)
    assert (found.position, found.reason) == (0, "stored Merkle tile 0/0 is missing")


def test_an_altered_right_edge_is_reported(grown: Ledger, superuser: psycopg.Connection, how: dict) -> None:
    # The edge of 600 leaves: level 0 holds 88 leaves (count byte, then hashes); change leaf 512 + 2's.
    superuser.execute(
        "UPDATE ledger_log_heads SET tree_edge = set_byte(tree_edge, 1 + 32 * 2, get_byte(tree_edge, 1 + 32 * 2) # 1)"
        " WHERE log = 'acme'"
    )
    found = only_break(grown, how)
    assert found.position == 512 + 2
    assert "right edge" in found.reason


# ---- against checkpoints: what a superuser can make consistent inside the database --------------------


def sign(ledger: Ledger, log: str = "acme") -> int:
    signed = ledger.checkpoints.sign(log)
    assert signed is not None
    return signed.tree_size


def rebuild_tree(conn: psycopg.Connection, log: str) -> None:
    """Rewrite ``log``'s tiles, edge and head to match its rows, as a superuser covering tracks would."""
    from ledger.domain.merkle import extend_edge
    from ledger.storage import tree

    rows = conn.execute(
        "SELECT canonical, hash FROM ledger_events WHERE log = %s ORDER BY position", (log,)
    ).fetchall()
    edge: list[list[bytes]] = []
    tiles = extend_edge(edge, [leaf_hash(bytes(r[0])) for r in rows])
    conn.execute("DELETE FROM ledger_merkle_tiles WHERE log = %s", (log,))
    tree.store_tiles(conn, [(log, t) for t in tiles])
    conn.execute(
        "UPDATE ledger_log_heads SET size = %s, head_hash = %s, tree_edge = %s WHERE log = %s",
        (len(rows), bytes(rows[-1][1]), tree.encode_edge(edge), log),
    )


def rewrite_event(conn: psycopg.Connection, log: str, position: int) -> None:
    """Change one event's bytes and re-chain every row after it: events, chain tail, head and tree agree."""
    rows = conn.execute(
        "SELECT position, prev_hash, canonical FROM ledger_events WHERE log = %s ORDER BY position", (log,)
    ).fetchall()
    prev = bytes(rows[0][1])
    for at, _, canonical in rows:
        canonical = bytes(canonical)
        if at == position:
            canonical = canonical.replace(b'"nodule"', b'"mass"')
            assert canonical != bytes(rows[at][2])
        digest = chain_hash(prev, leaf_hash(canonical))
        conn.execute(
            "UPDATE ledger_events SET canonical = %s, prev_hash = %s, hash = %s WHERE log = %s AND position = %s",
            (canonical, prev, digest, log, at),
        )
        prev = digest
    rebuild_tree(conn, log)


def test_a_consistent_superuser_rewrite_is_caught_by_the_stored_and_the_published_checkpoints(
    grown: Ledger, superuser: psycopg.Connection, how: dict
) -> None:
    first = sign(grown)
    grown.appender.append(
        [validate_event(example_event("annotation.created", tenant="acme")) for _ in range(50)]
    )
    second = sign(grown)
    assert audit(grown, against=[grown.settings.checkpoint_dir], **how).intact

    rewrite_event(superuser, "acme", 10)
    rows_only = verify(grown.db, **how)
    assert rows_only.intact, "the rewrite is consistent inside the database"

    report = audit(grown, **how)
    assert not report.intact
    assert report.checkpoints_checked == 2
    assert [(p.log, p.size) for p in report.checkpoint_problems] == [("acme", first), ("acme", second)]
    assert all("differs from the checkpoint's" in p.reason for p in report.checkpoint_problems)

    published = audit(grown, against=[grown.settings.checkpoint_dir], **how)
    sources = {p.source for p in published.checkpoint_problems}
    directory = grown.settings.checkpoint_dir / "acme"
    assert {str(directory / f"{first}.checkpoint"), str(directory / f"{second}.checkpoint")} <= sources


def test_a_database_restored_from_an_older_dump_is_caught_against_the_publication_directory(
    grown: Ledger, superuser: psycopg.Connection, tmp_path: Path, how: dict
) -> None:
    older = sign(grown)
    grown.appender.append(
        [validate_event(example_event("annotation.created", tenant="acme")) for _ in range(300)]
    )
    newer = sign(grown)
    saved = tmp_path / "auditor-copy"
    shutil.copytree(grown.settings.checkpoint_dir, saved)

    # Back to the state just after the older checkpoint was recorded (its event is the leaf at `older`).
    superuser.execute("DELETE FROM ledger_events WHERE log = 'acme' AND position > %s", (older,))
    superuser.execute("DELETE FROM proj_checkpoints WHERE log = 'acme' AND tree_size > %s", (older,))
    rebuild_tree(superuser, "acme")
    assert audit(grown, **how).intact, "the restored database agrees with itself"

    report = audit(grown, against=[saved], **how)
    assert not report.intact
    [problem] = report.checkpoint_problems
    assert (problem.log, problem.size, problem.source) == (
        "acme",
        newer,
        str(saved / "acme" / f"{newer}.checkpoint"),
    )
    assert "truncated or rolled back" in problem.reason
    single = audit(grown, against=[saved / "acme" / f"{newer}.checkpoint"], **how)
    assert [p.size for p in single.checkpoint_problems] == [newer]


def test_a_checkpoint_file_not_signed_by_the_ledger_is_named(grown: Ledger, tmp_path: Path) -> None:
    size = sign(grown)
    note = (grown.settings.checkpoint_dir / "acme" / f"{size}.checkpoint").read_bytes()
    forged = tmp_path / "forged.checkpoint"
    forged.write_bytes(note.replace(b"\n\n", b"\nextra\n\n", 1))
    report = audit(grown, against=[forged])
    [problem] = report.checkpoint_problems
    assert problem.source == str(forged)
    assert "does not verify" in problem.reason


# ---- the witness, over the ledger's own services (the HTTP routes are another branch's) ----------------


class InProcess:
    """The witness's four calls answered by the real services, as the HTTP routes answer them."""

    def __init__(self, service) -> None:
        self.service = service
        self.posted: list[bytes] = []

    def keys(self):
        return [w.key for w in self.service.verifier_keys()]

    def transitions(self) -> list[bytes]:
        return list(self.service.key_transitions())

    def checkpoint(self, log: str) -> bytes:
        return self.service.store.latest(log, tenant=None).full_note.encode()

    def consistency(self, log: str, old: int, new: int) -> list[bytes]:
        return list(self.service._trees.consistency(log, old, new, tenant=None).hashes)

    def post_cosignature(self, log: str, note: bytes) -> None:
        self.service.cosign(log, note, tenant=None)
        self.posted.append(note)


@pytest.fixture
def witnessed(grown: Ledger, tmp_path: Path):
    import dataclasses

    from ledger.runtime import checkpoint_service
    from ledger.verifier.keys import COSIGNATURE_ED25519, SeedSigner
    from ledger.witness import State, Witness

    signer = SeedSigner.generate("witness.example", COSIGNATURE_ED25519)
    cfg = dataclasses.replace(grown.settings.checkpoints, witness_keys=(signer.vkey,))
    settings = dataclasses.replace(grown.settings, checkpoints=cfg)
    service = checkpoint_service(settings, grown.db, grown.trees, grown.appender)
    client = InProcess(service)
    state = State(tmp_path / "witness")
    return service, client, state, Witness(client, state, signer)  # type: ignore[arg-type]


def test_the_witness_cosigns_what_extends_and_refuses_a_rolled_back_log(
    grown: Ledger, superuser: psycopg.Connection, witnessed
) -> None:
    service, _, state, witness = witnessed
    older = service.sign("acme").tree_size
    [first] = witness.round(["acme"])
    assert (first.status, first.size) == ("cosigned", older)
    assert service.store.latest("acme", tenant=None).cosignatures, "the cosignature is on the record"
    assert witness.round(["acme"])[0].status == "current"

    grown.appender.append(
        [validate_event(example_event("annotation.created", tenant="acme")) for _ in range(300)]
    )
    newer = service.sign("acme").tree_size
    assert witness.round(["acme"])[0].status == "cosigned"
    kept = state.path("acme").read_bytes()

    superuser.execute("DELETE FROM ledger_events WHERE log = 'acme' AND position > %s", (older,))
    superuser.execute("DELETE FROM proj_checkpoints WHERE log = 'acme' AND tree_size > %s", (older,))
    rebuild_tree(superuser, "acme")
    [refused] = witness.round(["acme"])
    assert refused.status == "refused"
    assert f"size {older}, smaller than the {newer}" in refused.message
    assert state.path("acme").read_bytes() == kept, "the saved state is unchanged"
    # The witness's state directory is a place `ledger verify --against` reads checkpoints from too.
    [problem] = audit(grown, against=[state.root]).checkpoint_problems
    assert (problem.size, problem.source) == (newer, str(state.path("acme")))


def test_the_witness_refuses_a_checkpoint_that_does_not_extend_the_one_it_holds(
    grown: Ledger, superuser: psycopg.Connection, witnessed
) -> None:
    service, client, state, witness = witnessed
    service.sign("acme")
    assert witness.round(["acme"])[0].status == "cosigned"
    kept = state.path("acme").read_bytes()

    rewrite_event(superuser, "acme", 3)  # history rewritten consistently inside the database
    grown.appender.append(
        [validate_event(example_event("annotation.created", tenant="acme")) for _ in range(5)]
    )
    newer = service.sign("acme").tree_size  # the ledger signs its (rewritten) tree: valid signature
    [refused] = witness.round(["acme"])
    assert refused.status == "refused"
    assert f"at size {newer} does not extend the saved one" in refused.message
    assert state.path("acme").read_bytes() == kept
    assert len(client.posted) == 1


def test_the_witness_follows_a_key_rotation_the_old_key_vouched_for(grown: Ledger, witnessed) -> None:
    service, _, state, witness = witnessed
    service.sign("acme")
    assert witness.round(["acme"])[0].status == "cosigned"
    first_keys = state.pinned_keys()

    service.rotate_keys("ledger")
    grown.appender.append([validate_event(example_event("annotation.created", tenant="acme"))])
    newer = service.sign("acme").tree_size  # signed by the new generation only
    [followed] = witness.round(["acme"])
    assert (followed.status, followed.size) == ("cosigned", newer)
    assert state.pinned_keys() == [w.key for w in service.verifier_keys()]  # old and new, pinned
    assert first_keys is not None
    assert set(first_keys) < set(state.pinned_keys())


def test_the_witness_does_not_follow_keys_nobody_it_trusts_vouched_for(
    grown: Ledger, witnessed, tmp_path: Path
) -> None:
    import dataclasses

    from ledger.crypto.checkpoint_keys import LocalCheckpointKeyFile
    from ledger.runtime import checkpoint_service

    service, client, state, witness = witnessed
    service.sign("acme")
    assert witness.round(["acme"])[0].status == "cosigned"
    # The database is taken over by someone with keys of their own: same name, no transition from ours.
    cfg = dataclasses.replace(grown.settings.checkpoints, key_file=tmp_path / "other-keys.json")
    other = checkpoint_service(
        dataclasses.replace(grown.settings, checkpoints=cfg), grown.db, grown.trees, grown.appender
    )
    assert isinstance(other.keys, LocalCheckpointKeyFile)
    grown.appender.append([validate_event(example_event("annotation.created", tenant="acme"))])
    other.sign("acme")
    client.service = other  # the ledger now serves the other keys and their (own) transitions
    kept = state.pinned_keys()
    [refused] = witness.round(["acme"])
    assert refused.status == "refused"
    assert "does not verify" in refused.message
    assert state.pinned_keys() == kept
