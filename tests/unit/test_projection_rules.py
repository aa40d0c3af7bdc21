"""The workflow projection's rules over lists of events, in memory: no database.

``apply_events`` is what the projector runs between loading a batch's rows and saving them, so these
are the same rules the integration tests check through PostgreSQL, at unit-test speed.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from ledger.domain.envelope import ReceivedEvent
from ledger.projections.admissible import foreign_hold_log, unholdable
from ledger.projections.flags import FLAG_KINDS
from ledger.projections.state import Event, State
from ledger.projections.workflow import apply_events
from ledger.storage.append import Recorded
from tests.stories import T0, Story, at

TENANT = "acme"


def recorded(events: list[ReceivedEvent]) -> list[Event]:
    """The events as a projector receives them: stored JSON, a log position and a recorded time."""
    return [
        Event(Recorded(TENANT, i, T0 + timedelta(days=30, seconds=i), body), body)
        for i, body in enumerate(json.loads(json.dumps(e.raw)) for e in events)
    ]


def project(story: Story) -> State:
    st = State()
    apply_events(st, recorded(story.events))
    return st


def kinds(st: State) -> list[str]:
    return [f["kind"] for f in st.flags]


@pytest.fixture
def story() -> Story:
    s = Story(TENANT)
    s.guideline("1.0", at(-100))
    s.credential("ann-1", "internal_level", at(-10), level="senior")
    return s


class TestWork:
    def test_a_qualified_annotation_under_a_guideline_in_effect_raises_nothing(self, story: Story) -> None:
        story.annotate("ann-1", "item-1", "a1", at(1))
        st = project(story)
        assert kinds(st) == []
        assert st.annotations[(TENANT, "a1")]["status"] == "submitted"

    def test_work_outside_a_credentials_valid_time_is_flagged(self, story: Story) -> None:
        grant = story.credential("ann-2", "internal_level", at(-10), until=at(2))
        story.annotate("ann-2", "item-1", "a1", at(1))
        late = story.annotate("ann-2", "item-2", "a2", at(3))
        [flag] = project(story).flags
        assert (flag["kind"], flag["evidence"], flag["rule"]) == (
            "unqualified_annotator",
            [late, grant],
            "21 CFR 11.10(d),(g)",
        )

    def test_a_review_decides_the_status_of_the_version_it_reviews(self, story: Story) -> None:
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.review("ann-1", "item-1", "a1", at(2), level=2, decision="reject")
        row = project(story).annotations[(TENANT, "a1")]
        assert (row["status"], row["reviewers"], row["review_level"]) == ("rejected", ["ann-1"], None)


class TestAnnotationsMoveOnlyForward:
    def test_re_creation_of_a_live_annotation_is_flagged_and_not_applied(self, story: Story) -> None:
        first = story.annotate("ann-1", "item-1", "a1", at(1), label="mass")
        again = story.annotate("ann-1", "item-1", "a1", at(2), label="nodule")
        st = project(story)
        assert st.annotations[(TENANT, "a1")]["label_class"] == "mass"
        assert [(f["kind"], f["evidence"]) for f in st.flags] == [("annotation_recreated", [again, first])]
        assert [r["change"] for r in st.revisions] == ["created"]

    def test_re_creation_after_deletion_is_allowed_with_a_newer_version(self, story: Story) -> None:
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.delete("ann-1", "item-1", "a1", at(2), version=2)
        story.annotate("ann-1", "item-1", "a1", at(3), version=3)
        st = project(story)
        assert (st.annotations[(TENANT, "a1")]["status"], kinds(st)) == ("submitted", [])

    @pytest.mark.parametrize(("version", "kind", "applied"), [
        (1, "annotation_out_of_sequence", False),  # a repeat of the version on record
        (3, "annotation_version_gap", True),  # previous_version 2 was never seen
    ])  # fmt: skip
    def test_an_update_that_does_not_follow(
        self, story: Story, version: int, kind: str, applied: bool
    ) -> None:
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.annotate("ann-1", "item-1", "a1", at(2), version=version, update=True, label="mass")
        st = project(story)
        assert kinds(st) == [kind]
        assert FLAG_KINDS[kind].applied is applied
        assert (st.annotations[(TENANT, "a1")]["label_class"] == "mass") is applied


class TestRestatements:
    def test_a_guideline_republished_with_other_content_keeps_its_first_effective_time(
        self, story: Story
    ) -> None:
        story.guideline("1.1", at(5), supersedes="1.0")
        story.guideline("1.1", at(5), supersedes="1.0")
        story.guideline("1.1", at(9), supersedes="1.0")
        st = project(story)
        assert kinds(st) == ["guideline_republished"]
        assert st.guidelines[(TENANT, "chest-ct", "1.1")]["effective_from"] == at(5)
        assert st.guidelines[(TENANT, "chest-ct", "1.0")]["effective_until"] == at(5)

    def test_a_credential_id_belongs_to_one_annotator(self, story: Story) -> None:
        story.credential("ann-2", "license", at(-5), cred="cred-ann-1-internal_level")
        st = project(story)
        assert kinds(st) == ["credential_reissued"]
        assert (TENANT, "ann-2") not in st.periods
        assert [p["annotator"] for p in st.periods[(TENANT, "ann-1")]] == ["ann-1"]

    def test_a_renewal_adds_a_period_and_its_repeat_does_not(self, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(20), level="senior", renew=True)
        story.credential("ann-1", "internal_level", at(20), level="senior", renew=True)
        st = project(story)
        assert [p["period"] for p in st.periods[(TENANT, "ann-1")]] == [1, 2]
        assert kinds(st) == []


class TestWhatCannotBeHeld:
    @pytest.mark.parametrize(
        "bad", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "2200-01-01T00:00:00Z"]
    )
    def test_an_unholdable_time_is_flagged_and_not_applied(self, story: Story, bad: str) -> None:
        story.credential("ann-2", "license", at(-10))
        events = recorded(story.events)
        events[-1].body["data"]["valid_from"] = bad
        st = State()
        apply_events(st, events)
        [flag] = st.flags
        assert flag["kind"] == "unprojectable_event"
        assert "data.valid_from" in flag["detail"]
        assert bad in flag["detail"]
        assert (TENANT, "ann-2") not in st.periods

    def test_an_unholdable_event_time_is_flagged_at_its_recorded_time(self, story: Story) -> None:
        story.annotate("ann-1", "item-1", "a1", at(1))
        events = recorded(story.events)
        events[-1].body["time"] = "0001-01-01T00:00:00+14:00"
        st = State()
        apply_events(st, events)
        [flag] = st.flags
        assert (flag["kind"], flag["occurred_at"], flag["item"]) == (
            "unprojectable_event",
            events[-1].rec.recorded_at,
            "item-1",
        )
        assert st.annotations == {}

    @pytest.mark.parametrize(("body", "found"), [
        ({"type": "annotation.created", "time": "2026-01-01T00:00:00Z", "data": {"version": 2**31}}, [("data.version", 2**31)]),
        ({"type": "annotation.created", "time": "2026-01-01T00:00:00Z", "data": {"version": 2**31 - 1}}, []),
        ({"type": "annotation.created", "time": "2026-01-01T00:00:00Z", "data": {"geometry": {"frame": 2**40}}}, []),
        ({"type": "credential.expired", "time": "1899-12-31T23:59:59Z", "data": {"effective_at": "2026-01-01T00:00:00+14:00"}},
         [("time", "1899-12-31T23:59:59Z")]),
        ({"type": "guideline.retired", "time": "2026-01-01T00:00:00Z", "data": {"effective_until": "2199-12-31T23:59:59-14:00"}},
         [("data.effective_until", "2199-12-31T23:59:59-14:00")]),
        ({"type": "training.completed", "time": "2026-01-01T00:00:00Z", "data": {"valid_until": None, "done": True}}, []),
    ])  # fmt: skip
    def test_which_values_cannot_be_held(self, body: dict[str, Any], found: list[tuple[str, Any]]) -> None:
        assert unholdable(body) == found

    @pytest.mark.parametrize(("time", "holdable"), [
        ("1900-01-01T05:00:00+06:00", False),  # 1899 in UTC
        ("1900-01-01T00:00:00-01:00", True),
        ("1901-01-01T00:00:00+23:59", True),
        ("2199-12-31T09:59:59-14:00", True),
        ("2199-12-31T23:59:59-14:00", False),  # 2200 in UTC
        ("2200-01-01T00:00:00+01:00", True),
        ("2026-03-02t09:15:27z", True),
    ])  # fmt: skip
    def test_the_range_is_judged_in_utc(self, time: str, holdable: bool) -> None:
        assert (unholdable({"type": "access.data_viewed", "time": time, "data": {}}) == []) is holdable

    def test_a_hold_names_only_its_own_tenants_log(self) -> None:
        def hold(scope: dict[str, Any]) -> dict[str, Any]:
            return {"type": "retention.hold_placed", "tenant": "other", "data": {"scope": scope}}

        assert foreign_hold_log(hold({"log": "acme"})) == "acme"
        assert foreign_hold_log(hold({"log": "other"})) is None
        assert foreign_hold_log(hold({"dataset": "d"})) is None
