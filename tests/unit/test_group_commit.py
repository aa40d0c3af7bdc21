"""The group commit of recorded reads: concurrent reads share an append, each gets its own receipts, and a
failed append fails every read of its batch (never silently one of them)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from ledger.api.reads import GroupCommit
from ledger.domain.errors import ReadNotRecorded
from ledger.storage.append import Receipt

NOW = datetime(2026, 12, 1, tzinfo=UTC)


class Appender:
    """Appends by giving each event a receipt; the first call waits until ``release`` is set."""

    def __init__(self, *, fail_after_first: bool = False) -> None:
        self.batches: list[list[str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()
        self.fail_after_first = fail_after_first

    def __call__(self, events: Sequence[Any]) -> list[Receipt]:
        self.batches.append(list(events))
        if len(self.batches) == 1:
            self.entered.set()
            assert self.release.wait(10)
        elif self.fail_after_first:
            raise RuntimeError("the database went away")
        return [Receipt(e, "log", i, b"h", NOW) for i, e in enumerate(events)]


def _run(group: GroupCommit, events: list[str], out: dict[str, Any]) -> threading.Thread:
    def work() -> None:
        try:
            out[events[0]] = [r.event_id for r in group.record(events)]  # type: ignore[arg-type]
        except ReadNotRecorded as exc:
            out[events[0]] = exc

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def _waiting(group: GroupCommit, n: int) -> None:
    for _ in range(1000):
        with group._cond:
            if len(group._waiting) == n:
                return
        threading.Event().wait(0.005)
    pytest.fail(f"{n} reads never queued")


def test_reads_arriving_during_a_commit_go_together_in_the_next_and_each_gets_its_own_receipts() -> None:
    append = Appender()
    group = GroupCommit(append)
    out: dict[str, Any] = {}
    first = _run(group, ["r0"], out)
    assert append.entered.wait(10)
    others = [_run(group, [f"r{i}", f"r{i}-report"], out) for i in range(1, 6)]
    _waiting(group, 5)
    append.release.set()
    for t in [first, *others]:
        t.join(10)
    assert append.batches[0] == ["r0"]
    assert len(append.batches) == 2
    assert sorted(append.batches[1]) == sorted(e for i in range(1, 6) for e in (f"r{i}", f"r{i}-report"))
    assert out["r0"] == ["r0"]
    for i in range(1, 6):
        assert out[f"r{i}"] == [f"r{i}", f"r{i}-report"]


def test_a_failed_append_fails_every_read_of_its_batch_and_the_next_batch_still_runs() -> None:
    append = Appender(fail_after_first=True)
    group = GroupCommit(append)
    out: dict[str, Any] = {}
    first = _run(group, ["r0"], out)
    assert append.entered.wait(10)
    others = [_run(group, [f"r{i}"], out) for i in range(1, 4)]
    _waiting(group, 3)
    append.release.set()
    for t in [first, *others]:
        t.join(10)
    assert out["r0"] == ["r0"]
    for i in range(1, 4):
        assert isinstance(out[f"r{i}"], ReadNotRecorded)
        assert isinstance(out[f"r{i}"].__cause__, RuntimeError)
    # The group is not stuck after a failure.
    append.fail_after_first = False
    assert [r.event_id for r in group.record(["again"])] == ["again"]  # type: ignore[list-item]
