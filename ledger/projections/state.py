"""The in-memory state a batch of events is applied to by the workflow projection's rules.

The rules (``labels``, ``credentials``, ``guidelines``, ``assignments``) are pure functions of this state
and one event: no I/O, so they can be tested over lists of events without a database. The projector
loads the rows a batch touches into a ``State``, applies the batch in log order and saves what changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledger.domain.fields import in_time_range, parse_rfc3339
from ledger.projections.flags import FLAG_KINDS
from ledger.storage.append import Recorded

Row = dict[str, Any]


class Event:
    """One recorded event, upcast, with the envelope fields every rule needs read once."""

    __slots__ = ("_time", "actor", "body", "data", "id", "rec", "tenant", "type")

    def __init__(self, rec: Recorded, body: dict[str, Any]) -> None:
        self.rec = rec
        self.body = body
        self.type = str(body["type"])
        self.tenant = str(body["tenant"])
        self.id = str(body["id"])
        self.actor = str(body["actor"])
        self.data: dict[str, Any] = body["data"]
        self._time: datetime | None = None

    @property
    def time(self) -> datetime:
        """The producer's time (only rules for admissible events read it: see ``admissible``)."""
        if self._time is None:
            self._time = parse_rfc3339(self.body["time"])
        return self._time

    @property
    def occurred_at(self) -> datetime:
        """The producer's time, or the recorded time when the producer's cannot be held."""
        try:
            return self.time if in_time_range(self.time) else self.rec.recorded_at
        except ValueError:
            return self.rec.recorded_at

    def stamp(self) -> dict[str, Any]:
        """The log position a row changed by this event reflects."""
        return {"log": self.rec.log, "position": self.rec.position}


@dataclass
class State:
    """Rows a batch may read or change, keyed as their tables are; ``dirty`` names the changed ones."""

    annotations: dict[tuple[str, str], Row] = field(default_factory=dict)
    periods: dict[tuple[str, str], list[Row]] = field(default_factory=dict)  # by (tenant, annotator)
    holders: dict[tuple[str, str], str] = field(default_factory=dict)  # (tenant, credential_id) → annotator
    guidelines: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    assignments: dict[tuple[str, str], Row] = field(default_factory=dict)
    dirty: dict[str, set[Any]] = field(default_factory=dict)
    revisions: list[Row] = field(default_factory=list)
    finals: dict[tuple[str, str, str], Row] = field(default_factory=dict)
    trainings: list[Row] = field(default_factory=list)
    flags: list[Row] = field(default_factory=list)

    def touch(self, table: str, key: tuple[str, ...]) -> None:
        """Mark the row of ``table`` under ``key`` as changed."""
        self.dirty.setdefault(table, set()).add(key)


def flag(
    st: State,
    ev: Event,
    kind: str,
    detail: str,
    evidence: list[str | None],
    *,
    dataset: str | None = None,
    item: str | None = None,
) -> None:
    """Raise a flag of ``kind`` (one of ``FLAG_KINDS``) on ``ev``; its evidence starts with ``ev`` itself."""
    st.flags.append(
        {
            "tenant": ev.tenant,
            "flag_id": f"{kind}:{ev.id}",
            "kind": kind,
            "rule": FLAG_KINDS[kind].rule,
            "actor": ev.actor,
            "dataset": dataset,
            "item": item,
            "detail": detail,
            "evidence": [ev.id, *(e for e in evidence if e is not None)],
            "occurred_at": ev.occurred_at,
            **ev.stamp(),
        }
    )
