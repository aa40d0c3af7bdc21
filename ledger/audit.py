"""``ledger verify`` with checkpoints: the rows, the Merkle tree, and every signed checkpoint on the record
or kept elsewhere (``--against``), against the tree recomputed from the events.

A checkpoint is a claim "this log had this root at this size", signed. Each one is opened (parsed, its log
signature verified under the ledger's published keys or the auditor's, a configured witness's cosignature
verified too) and compared with the recomputed root at its size. A database rewritten or rolled back after
a checkpoint left the ledger's hands cannot agree with it: its events give another root at that size, or
the log no longer reaches that size.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.domain.errors import ConfigurationError
from ledger.domain.fields import parse_rfc3339
from ledger.domain.internal import CHECKPOINT_BOOKKEEPING, CHECKPOINT_SIGNED
from ledger.domain.verification import CheckpointClaim, CheckpointProblem, judge_checkpoints
from ledger.verifier.checkpoint import check_key_windows, open_checkpoint
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import KeyWindow, VerifierKey

if TYPE_CHECKING:
    from ledger.domain.verification import VerificationReport
    from ledger.runtime import Ledger
    from ledger.storage.verify import Progress

MAX_CHECKPOINT_FILE = 1024 * 1024  # a signed note is at most 1 MiB (ledger.verifier.note.MAX_NOTE_BYTES)


@dataclass(frozen=True)
class Note:
    """A signed checkpoint note from somewhere, and how a report names where (``source``)."""

    source: str
    data: bytes
    signed_at: datetime | None = None  # when the ledger recorded it, for the key's validity window


@dataclass
class Opened:
    """The notes opened: the claims they make, and the problems of those that did not open."""

    claims: list[CheckpointClaim] = field(default_factory=list)
    problems: list[CheckpointProblem] = field(default_factory=list)


def stored_notes(ledger: Ledger, log: str | None) -> list[Note]:
    """Every checkpoint on the record, with its witnesses' cosignatures, read from the hashed
    ``ledger.checkpoint_signed`` and ``ledger.checkpoint_cosigned`` events themselves (the chain check of
    the same run vouches for them), not from ``proj_checkpoints``, a projection the ledger's role may write."""
    with ledger.db.connect() as conn, conn.transaction():
        heads = conn.execute(
            "SELECT log, tenant FROM ledger_log_heads WHERE %s::text IS NULL OR log = %s ORDER BY log",
            (log, log),
        ).fetchall()
        rows = [
            (str(name), bytes(r[0]))
            for name, tenant in heads
            for r in conn.execute(
                "SELECT canonical FROM ledger_events WHERE tenant = %s AND log = %s"
                " AND type = ANY(%s) ORDER BY position",
                (tenant, name, list(CHECKPOINT_BOOKKEEPING)),
            ).fetchall()
        ]
    signed: dict[tuple[str, int], tuple[str, datetime]] = {}
    lines: dict[tuple[str, int], dict[str, None]] = {}
    for name, canonical in rows:
        try:
            doc = json.loads(canonical)
            event, data = doc["event"], doc["event"]["data"]
            key = (name, int(data["tree_size"]))
        except (ValueError, KeyError, TypeError):
            continue  # bytes that are no such document are a break the row check names
        if event["type"] == CHECKPOINT_SIGNED:
            signed.setdefault(key, (str(data["note"]), parse_rfc3339(doc["recorded_at"])))
        else:
            lines.setdefault(key, {})[str(data["cosignature"])] = None
    notes = []
    for (name, size), (note, recorded_at) in sorted(signed.items()):
        text = note + "".join(line + "\n" for line in lines.get((name, size), {}))
        notes.append(Note(f"stored checkpoint {name}/{size}", text.encode(), recorded_at))
    return notes


def file_notes(path: Path) -> list[Note]:
    """A saved note file, or every ``*.checkpoint`` file under a directory (the publication directory, a
    witness's state directory), in path order. ``ConfigurationError`` when there is no such path."""
    if path.is_dir():
        files = sorted(p for p in path.rglob("*.checkpoint") if p.is_file() and not p.name.startswith("."))
    elif path.is_file():
        files = [path]
    else:
        msg = f"--against {path}: there is no such file or directory"
        raise ConfigurationError(msg)
    notes = []
    for file in files:
        with file.open("rb") as fh:
            notes.append(Note(str(file), fh.read(MAX_CHECKPOINT_FILE + 1)))
    return notes


def open_notes(
    notes: Iterable[Note],
    keys: Sequence[KeyWindow],
    witness_keys: Sequence[VerifierKey],
    deployment: str,
) -> Opened:
    """Parse and verify each note under ``keys`` (and the witnesses'), and name its log from its origin
    (``<deployment>/logs/<log>``); a note that does not open is a problem naming its source."""
    opened = Opened()
    prefix = f"{deployment}/logs/"
    verifier_keys = [w.key for w in keys] + list(witness_keys)
    for note in notes:
        try:
            if len(note.data) > MAX_CHECKPOINT_FILE:
                msg = f"it is larger than {MAX_CHECKPOINT_FILE} bytes"
                raise VerifierError(msg)
            signed = open_checkpoint(note.data, verifier_keys)
            # The time a verified ML-DSA-44 signature states is the signing time; the recorded time is only
            # the fallback (with the Ed25519 key alone), since an append may wait on a lock past a rotation.
            when = None if signed.signed_at is not None else note.signed_at
            if when is not None or signed.signed_at is not None:
                check_key_windows(signed, keys, when)
        except VerifierError as exc:
            opened.problems.append(
                CheckpointProblem(None, None, note.source, f"does not verify: {exc.message}")
            )
            continue
        cp = signed.checkpoint
        if not cp.origin.startswith(prefix):
            reason = f"its origin {cp.origin!r} is not a log of deployment {deployment!r}"
            opened.problems.append(CheckpointProblem(None, cp.size, note.source, reason))
            continue
        opened.claims.append(CheckpointClaim(cp.origin[len(prefix) :], cp.size, cp.root, note.source))
    return opened


def audit(
    ledger: Ledger,
    *,
    log: str | None = None,
    against: Sequence[Path] = (),
    keys: Sequence[VerifierKey] = (),
    progress: Progress | None = None,
    jobs: int | None = None,
    range_size: int | None = None,
) -> VerificationReport:
    """Verify the rows and trees (``ledger.storage.verify.verify``), then every stored checkpoint and every
    one under ``against``. ``keys``: the verifier keys to trust (default: the ledger's published keys)."""
    from ledger.storage.verify import verify

    notes = stored_notes(ledger, log)
    for path in against:
        notes += file_notes(path)
    opened = Opened()
    if notes:
        windows = _trusted(ledger, keys)
        opened = open_notes(notes, windows, ledger.checkpoints.witness_keys, ledger.checkpoints.deployment)
    if log is not None:
        opened.claims = [c for c in opened.claims if c.log == log]
    sizes: dict[str, set[int]] = {}
    for claim in opened.claims:
        sizes.setdefault(claim.log, set()).add(claim.size)
    report = verify(ledger.db, log=log, progress=progress, jobs=jobs, range_size=range_size, sizes=sizes)
    report.checkpoints_checked = len(opened.claims)
    report.checkpoint_problems = opened.problems + judge_checkpoints(report, opened.claims)
    return report


def _trusted(ledger: Ledger, keys: Sequence[VerifierKey]) -> tuple[KeyWindow, ...]:
    """The auditor's keys when given (no validity window is known for them), else the ledger's own."""
    if keys:
        return tuple(KeyWindow(k, datetime.fromtimestamp(0, UTC)) for k in keys)
    return ledger.checkpoints.verifier_keys()
