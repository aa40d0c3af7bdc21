"""What every adapter shares: how a tool user becomes an actor, and the one spelling of a tool's time."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ledger.webhooks.model import SourceConfig, Unmappable, tool_stamp

CONFIG = SourceConfig(users={"17": "ann-0017"})


@pytest.mark.parametrize("user", [17, "17", {"id": 17, "email": "jane.doe@hospital.org"}, {"id": "17"}])
def test_a_tool_user_id_names_its_actor(user: object) -> None:
    assert CONFIG.actor(user, "annotation.completed_by") == "ann-0017"


@pytest.mark.parametrize(
    "user",
    [
        "Jane Doe, DOB 1960-01-01",
        "jane.doe@hospital.org",
        {"email": "jane.doe@hospital.org"},
        {"id": "jane.doe@hospital.org"},
        True,
        -1,
        10**20,
        "1" * 21,
        "١٧",  # digits, not ASCII ones
        "17 ",
        [17],
    ],
)
def test_anything_but_a_tool_user_id_is_refused_without_echoing_it(user: object) -> None:
    with pytest.raises(Unmappable) as refused:
        CONFIG.actor(user, "annotation.completed_by")
    assert (
        refused.value.detail
        == "annotation.completed_by: is not a tool user id (an integer, or 1 to 20 digits)"
    )
    shown = refused.value.detail + json.dumps([e.message for e in refused.value.errors])
    for fragment in ("Jane", "jane", "hospital", "1960", "١٧", "1" * 21):
        assert fragment not in shown


def test_no_user_is_refused_as_such() -> None:
    with pytest.raises(Unmappable, match="no user id is given"):
        CONFIG.actor(None, "annotation.completed_by")


def test_an_unmapped_user_is_named_by_its_id_only() -> None:
    with pytest.raises(Unmappable, match="tool user 18 is not mapped"):
        CONFIG.actor({"id": 18, "email": "x@y.org"}, "annotation.completed_by")


@pytest.mark.parametrize(
    ("time", "spelled"),
    [
        (datetime(2026, 12, 2, 3, 0, tzinfo=UTC), "2026-12-02T03:00:00.000000Z"),
        (
            datetime(2026, 12, 2, 4, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1))),
            "2026-12-02T03:00:00.123456Z",
        ),
    ],
)
def test_a_tool_time_has_one_spelling_utc_to_the_microsecond(time: datetime, spelled: str) -> None:
    assert tool_stamp(time) == spelled
