"""Reading the signed checkpoints on the record (``proj_checkpoints``, filled by the checkpoints projection)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ledger.domain.fields import LEDGER_ID_PREFIX
from ledger.domain.internal import CHECKPOINT_BOOKKEEPING, WITNESS_READ
from ledger.domain.stored import format_time
from ledger.storage.database import Database
from ledger.storage.queries import decode_cursor, encode_cursor
from ledger.verifier.keys import encode_base64

_COLUMNS = "log, tree_size, tenant, root_hash, note, signed_at, event_id, position, cosignatures"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint on the record: the log's signed note, the ``ledger.checkpoint_signed`` event that holds
    it (id, position, recorded time) and the witnesses' ``cosignature/v1`` lines recorded since."""

    log: str
    tree_size: int
    tenant: str
    root: bytes
    note: str  # the signed note as the log signed it (text, blank line, Ed25519 and ML-DSA-44 lines)
    signed_at: datetime
    event_id: str
    position: int
    cosignatures: tuple[str, ...] = ()

    @property
    def full_note(self) -> str:
        """The note with every recorded cosignature line after the log's own signatures."""
        return self.note + "".join(line + "\n" for line in self.cosignatures)

    @property
    def filename(self) -> str:
        """``<tree size>.checkpoint``, its name in the publication directory under ``<log>/``."""
        return f"{self.tree_size}.checkpoint"

    def as_dict(self) -> dict[str, Any]:
        """The JSON form the API serves (``GET /v1/logs/{log}/checkpoints``, and beside proofs)."""
        return {
            "log": self.log,
            "tree_size": self.tree_size,
            "root": encode_base64(self.root),
            "signed_at": format_time(self.signed_at),
            "event_id": self.event_id,
            "position": self.position,
            "cosignatures": len(self.cosignatures),
            "note": self.full_note,
        }


@dataclass(frozen=True)
class CheckpointPage:
    """A page of checkpoints, oldest first, and the cursor of the next page (``None`` at the end)."""

    checkpoints: list[SignedCheckpoint]
    next_cursor: str | None


BOOKKEEPING = CHECKPOINT_BOOKKEEPING
WITNESS_READS = f"{LEDGER_ID_PREFIX}{WITNESS_READ}%"
"""``LIKE`` pattern of the ids of a witness's recorded reads (``ledger.api.reads``)."""


@dataclass(frozen=True)
class LogState:
    """A log's current size beside its latest checkpoint, what ``due`` and ``sign`` decide on.

    ``grown``: the log holds an event its latest checkpoint does not cover, other than checkpoint
    bookkeeping (``BOOKKEEPING``; each such event adds a leaf of its own) and the records of a witness's
    reads (``WITNESS_READS``: each poll would otherwise cause the next checkpoint).
    """

    log: str
    tenant: str
    size: int
    latest: SignedCheckpoint | None
    grown: bool

    @property
    def new_events(self) -> int:
        """Leaves added since the latest checkpoint (bookkeeping included)."""
        return self.size - (self.latest.tree_size if self.latest else 0)


class CheckpointStore:
    """Queries of ``proj_checkpoints``. ``tenant`` scopes a request's read to its own logs; ``None`` is for
    the ledger's own callers (signing, verification)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def latest(self, log: str, *, tenant: str | None) -> SignedCheckpoint | None:
        """The checkpoint of ``log`` with the largest tree size, if any."""
        return self._one(
            "log = %s AND (%s::text IS NULL OR tenant = %s) ORDER BY tree_size DESC LIMIT 1",
            (log, tenant, tenant),
        )

    def at(self, log: str, tree_size: int, *, tenant: str | None) -> SignedCheckpoint | None:
        """The checkpoint of ``log`` at ``tree_size``, if one was signed."""
        return self._one(
            "log = %s AND tree_size = %s AND (%s::text IS NULL OR tenant = %s)",
            (log, tree_size, tenant, tenant),
        )

    def page(
        self, log: str, *, tenant: str | None, cursor: str | None = None, limit: int = 100
    ) -> CheckpointPage:
        """Checkpoints of ``log`` by tree size, after ``cursor`` (``encode_cursor(log, tree_size)``)."""
        after = -1
        if cursor is not None:
            cursor_log, after = decode_cursor(cursor)
            if cursor_log != log:
                after = 2**63 - 1  # a cursor of another log continues nothing here
        with self._db.connect() as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM proj_checkpoints WHERE log = %s AND tree_size > %s"
                " AND (%s::text IS NULL OR tenant = %s) ORDER BY tree_size LIMIT %s",
                (log, after, tenant, tenant, limit + 1),
            ).fetchall()
        found = [_checkpoint(r) for r in rows[:limit]]
        more = len(rows) > limit
        return CheckpointPage(found, encode_cursor(log, found[-1].tree_size) if more else None)

    def every(self, log: str) -> Iterator[SignedCheckpoint]:
        """Every checkpoint of ``log`` by tree size (for verification), a page at a time."""
        cursor = None
        while True:
            page = self.page(log, tenant=None, cursor=cursor, limit=1000)
            yield from page.checkpoints
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def states(self, log: str | None = None) -> list[LogState]:
        """Each log's size and latest checkpoint (one log, or every log), by log name."""
        with self._db.connect() as conn:
            # The events after the latest checkpoint are read by the primary key (log, position); they
            # are at most about LEDGER_CHECKPOINT_EVERY, and EXISTS stops at the first that counts.
            rows = conn.execute(
                f"SELECT h.log, h.tenant, h.size, EXISTS (SELECT 1 FROM ledger_events e WHERE e.log = h.log"
                "  AND e.position >= coalesce(c.tree_size, 0) AND e.type <> ALL(%s) AND e.event_id NOT LIKE %s), c.*"
                " FROM ledger_log_heads h LEFT JOIN LATERAL ("
                f" SELECT {_COLUMNS} FROM proj_checkpoints c WHERE c.log = h.log ORDER BY tree_size DESC LIMIT 1"
                ") c ON true WHERE %s::text IS NULL OR h.log = %s ORDER BY h.log",
                (list(BOOKKEEPING), WITNESS_READS, log, log),
            ).fetchall()
        return [
            LogState(
                str(r[0]), str(r[1]), int(r[2]), _checkpoint(r[4:]) if r[4] is not None else None, bool(r[3])
            )
            for r in rows
        ]

    def _one(self, where: str, params: tuple[Any, ...]) -> SignedCheckpoint | None:
        with self._db.connect() as conn:
            row = conn.execute(f"SELECT {_COLUMNS} FROM proj_checkpoints WHERE {where}", params).fetchone()
        return _checkpoint(row) if row is not None else None


def _checkpoint(r: Any) -> SignedCheckpoint:
    return SignedCheckpoint(
        log=str(r[0]),
        tree_size=int(r[1]),
        tenant=str(r[2]),
        root=bytes(r[3]),
        note=str(r[4]),
        signed_at=r[5],
        event_id=str(r[6]),
        position=int(r[7]),
        cosignatures=tuple(r[8] or ()),
    )
