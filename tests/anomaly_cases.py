"""For each access-anomaly rule, a history that raises it and the one just below its threshold that does not.

Shared by the pure rule tests (``tests/unit/test_anomaly_rules.py``) and the tests over PostgreSQL
(``tests/integration/test_access_anomalies.py``). Times are at ``T0`` (Monday 08:00 UTC), within the default
working hours unless a case is about them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from tests.stories import DATASET, Story, at, ts


class AccessStory(Story):
    """A ``Story`` with the access, sign-in, assignment and release events the anomaly rules read."""

    def access(self, who: str, when: datetime, item: str | None = "i1", *, role: str = "annotator",
               kind: str = "access.data_viewed", **extra: Any) -> str:  # fmt: skip
        data: dict[str, Any] = {"resource": f"{DATASET}/{item}" if item else DATASET, "dataset": DATASET,
                                "purpose_of_use": "annotation", "outcome": "success", **extra}  # fmt: skip
        if item:
            data["item"] = item
        return self.add(kind, when, who, data, role=role)

    def assign(
        self, who: str, items: list[str], when: datetime, *, n: int = 1, role: str = "annotator"
    ) -> str:
        return self.add("assignment.created", when, "workflow",
                        {"assignment_id": f"asg-{who}-{n}", "dataset": DATASET, "items": items, "assignee": who,
                         "role": role}, role="service")  # fmt: skip

    def login_failed(self, who: str, when: datetime) -> str:
        return self.add(
            "auth.login_failed", when, who, {"method": "password", "failure_reason": "bad_credentials"}
        )

    def release(self, items: list[str], when: datetime, split: str = "test") -> str:
        listed = [{"item": i, "label_class": "nodule"} for i in items]
        return self.add("dataset.release_created", when, "data-manager",
                        {"dataset": DATASET, "release": f"r-{split}", "split": split, "items": listed,
                         "items_sha256": "ab" * 32}, role="admin")  # fmt: skip


Case = Callable[[AccessStory], list[str]]
"""Writes a history; returns the ids of the events the anomaly's evidence must hold (oldest first)."""


def day(n: int, hour: float = 9) -> datetime:
    """Day ``n`` after T0 (a Monday), at ``hour`` UTC."""
    return at(24 * n + hour - 8)


def unassigned(s: AccessStory) -> list[str]:
    s.assign("ann-1", ["i1"], at(0))
    s.access("ann-1", at(1), "i1")  # assigned: fine
    s.access("auditor-1", at(1), "i2", role="auditor")  # not bound to assignments
    return [s.access("ann-1", at(2), "i2")]


def unassigned_below(s: AccessStory) -> list[str]:
    s.assign("ann-1", ["i1", "i2"], at(0))
    s.access("ann-1", at(2), "i2")
    s.access("auditor-1", at(1), "i3", role="auditor")
    return []


def off_hours(s: AccessStory) -> list[str]:
    s.access("ann-1", day(0, 18.9), role="auditor")  # 18:54, within hours
    return [s.access("ann-1", day(0, 19), role="auditor")]  # 19:00: the first minute after them


def off_hours_below(s: AccessStory) -> list[str]:
    s.access("ann-1", day(0, 7), role="auditor")  # 07:00, the first minute of the day's hours
    s.access("ann-1", day(4, 18.98), role="auditor")  # Friday 18:58
    return []


def _spike(s: AccessStory, today: int) -> list[str]:
    """Seven weekdays of 20 accesses, then ``today`` accesses on the eighth."""
    for d in [0, 1, 2, 3, 4, 7, 8]:
        for k in range(20):
            s.access("auditor-1", day(d, 9 + k / 10), role="auditor")
    return [s.access("auditor-1", day(9, 9 + k / 100), role="auditor") for k in range(today)]


def volume(s: AccessStory) -> list[str]:
    ids = _spike(s, 50)
    return [ids[0], ids[-1]]  # the day's first access and the one that crossed the threshold


def volume_below(s: AccessStory) -> list[str]:
    _spike(s, 49)  # one below the minimum count (the baseline, 20 +- 0, is lower)
    return []


def bulk(s: AccessStory) -> list[str]:
    s.access("mldev-1", at(1), None, role="model_developer", kind="access.data_exported", record_count=500)
    return [
        s.access(
            "mldev-1", at(2), None, role="model_developer", kind="access.data_exported", record_count=501
        )
    ]


def bulk_below(s: AccessStory) -> list[str]:
    s.access("mldev-1", at(1), None, role="model_developer", kind="access.data_exported", record_count=500)
    return []


def revoked(s: AccessStory) -> list[str]:
    s.credential("ann-1", "internal_level", at(-100))
    s.assign("ann-1", ["i1"], at(-1))
    s.access("ann-1", at(0), "i1")
    revocation = s.end_credential("ann-1", "internal_level", at(1))
    first = s.access("ann-1", at(2), "i1")
    s.access("ann-1", at(3), "i1")  # the same anomaly: once per revoked credential
    return [revocation, first]


def revoked_below(s: AccessStory) -> list[str]:
    s.credential("ann-1", "internal_level", at(-100))
    s.credential("ann-1", "license", at(-100), cred="cred-ann-1-license")
    s.assign("ann-1", ["i1"], at(-1))
    s.end_credential("ann-1", "internal_level", at(1))
    s.access("ann-1", at(2), "i1")  # still holds a valid license
    s.end_credential("ann-1", "license", at(2.5), how="expired", cred="cred-ann-1-license")
    s.access("ann-1", at(0.5), "i1")  # before the revocation
    return []


def logins(s: AccessStory) -> list[str]:
    ids = [s.login_failed("ann-1", at(1) + timedelta(minutes=3 * k)) for k in range(5)]  # 5 within 12 minutes
    s.login_failed("ann-1", at(1) + timedelta(minutes=14))  # same burst: raised once
    return ids


def logins_below(s: AccessStory) -> list[str]:
    for k in range(4):  # four within 15 minutes, then a fifth 16 minutes after the first
        s.login_failed("ann-1", at(1) + timedelta(minutes=k))
    s.login_failed("ann-1", at(1) + timedelta(minutes=16))
    for k in range(4):
        s.login_failed("ann-2", at(1) + timedelta(minutes=k))
    return []


def break_glass(s: AccessStory) -> list[str]:
    return [s.access("rad-1", at(1), "i1", role="physician_reviewer", kind="access.break_glass",
                     purpose_of_use="treatment")]  # fmt: skip


def break_glass_below(s: AccessStory) -> list[str]:
    s.access("rad-1", at(1), "i1", role="auditor", purpose_of_use="treatment")
    s.access("rad-1", at(1), "i1", role="auditor", kind="access.denied", outcome="failure")
    return []


def test_set(s: AccessStory) -> list[str]:
    release = s.release(["i7", "i8"], at(0))
    s.access("mldev-1", at(1), "i1", role="model_developer")  # not in the test split
    return [release, s.access("mldev-1", at(2), "i8", role="model_developer")]


def test_set_below(s: AccessStory) -> list[str]:
    s.access("mldev-1", at(0.5), "i8", role="model_developer")  # before the release
    s.release(["i1"], at(0), split="train")
    s.release(["i7", "i8"], at(1))
    s.access("mldev-1", at(2), "i1", role="model_developer")
    s.access("auditor-1", at(2), "i8", role="auditor")
    return []


CASES: dict[str, tuple[Case, Case]] = {
    "unassigned_item": (unassigned, unassigned_below),
    "off_hours": (off_hours, off_hours_below),
    "volume_spike": (volume, volume_below),
    "bulk_export": (bulk, bulk_below),
    "access_after_revocation": (revoked, revoked_below),
    "login_failures": (logins, logins_below),
    "break_glass": (break_glass, break_glass_below),
    "test_set_access": (test_set, test_set_below),
}
"""Per rule: (the pattern, the case just below it)."""

__all__ = ["CASES", "AccessStory", "ts"]
