"""Projections over scripted histories, against a real PostgreSQL: the answers auditors ask for."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest
from psycopg.rows import dict_row

from ledger.domain.errors import NotFound
from ledger.projections.rebuild import rebuild
from ledger.projections.registry import all_projectors
from ledger.runtime import Ledger
from tests.stories import DATASET, Story, at

TENANT = "acme"


def flags(ledger: Ledger, kind: str | None = None) -> list[dict]:
    return ledger.projections.flags(TENANT, kind=kind, limit=1000)["flags"]


def record(ledger: Ledger, story: Story) -> None:
    ledger.appender.append(story.events)


@pytest.fixture
def story() -> Story:
    s = Story(TENANT)
    s.guideline("1.0", at(-100))
    return s


class TestAnnotatorQualification:
    def test_a_qualified_annotator_raises_no_flag(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1))
        record(ledger, story)

        assert flags(ledger) == []
        labels = ledger.projections.labels(TENANT, DATASET, "item-1")
        assert labels["annotations"][0]["status"] == "submitted"
        assert labels["annotations"][0]["created_by"] == "ann-1"

    def test_an_annotator_with_no_credential_is_flagged_with_evidence(
        self, ledger: Ledger, story: Story
    ) -> None:
        event = story.annotate("ann-2", "item-1", "a1", at(1))
        record(ledger, story)

        [flag] = flags(ledger)
        assert flag["kind"] == "unqualified_annotator"
        assert flag["rule"] == "21 CFR 11.10(d),(g)"
        assert flag["evidence"] == [event]
        assert (flag["dataset"], flag["item"]) == (DATASET, "item-1")

    def test_a_credential_that_expires_mid_project(self, ledger: Ledger, story: Story) -> None:
        grant = story.credential("ann-1", "internal_level", at(-10), until=at(5))
        before = story.annotate("ann-1", "item-1", "a1", at(4))
        after = story.annotate("ann-1", "item-2", "a2", at(6))
        record(ledger, story)

        [flag] = flags(ledger)
        assert flag["evidence"] == [after, grant]
        assert before not in flag["evidence"]
        standing = ledger.projections.credentials(TENANT, "ann-1", at(4))
        assert standing["qualified_for"] == ["annotator"]
        assert ledger.projections.credentials(TENANT, "ann-1", at(6))["qualified_for"] == []

    def test_a_revocation_closes_the_credential_from_its_effective_time(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.end_credential("ann-1", "internal_level", at(3), how="revoked")
        story.annotate("ann-1", "item-1", "a1", at(2))
        story.annotate("ann-1", "item-2", "a2", at(3))
        record(ledger, story)

        assert [f["item"] for f in flags(ledger)] == ["item-2"]
        [period] = ledger.projections.credentials(TENANT, "ann-1", at(0))["credentials"]
        assert period["ended_by"] == "revoked"

    def test_a_renewal_after_a_gap_qualifies_again(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10), until=at(0))
        story.credential("ann-1", "internal_level", at(5), renew=True)
        story.annotate("ann-1", "item-1", "a1", at(2))  # in the gap
        story.annotate("ann-1", "item-2", "a2", at(6))
        record(ledger, story)

        assert [f["item"] for f in flags(ledger)] == ["item-1"]
        periods = ledger.projections.credentials(TENANT, "ann-1", at(6))["credentials"]
        assert [p["period"] for p in periods] == [1, 2]


class TestReviewerQualification:
    def test_a_physician_review_with_a_valid_license(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.credential("rad-1", "license", at(-10), until=at(100))
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.review("rad-1", "item-1", "a1", at(2), level=3)
        record(ledger, story)

        assert flags(ledger) == []
        [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
        assert (annotation["status"], annotation["review_level"], annotation["reviewers"]) == (
            "reviewed",
            3,
            ["rad-1"],
        )

    def test_a_physician_review_without_a_valid_license_is_flagged(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        lapsed = story.credential("rad-2", "license", at(-10), until=at(0))
        story.annotate("ann-1", "item-1", "a1", at(1))
        review = story.review("rad-2", "item-1", "a1", at(2), level=3)
        record(ledger, story)

        [flag] = flags(ledger)
        assert flag["kind"] == "unqualified_physician"
        assert flag["evidence"] == [review, lapsed]

    def test_an_expert_adjudication_needs_a_board_certification(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.credential("rad-3", "license", at(-10))  # a license alone is not an expert credential
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.adjudicate("rad-3", "item-1", ["a1"], "a1", at(2), level=4)
        record(ledger, story)

        assert [f["kind"] for f in flags(ledger)] == ["unqualified_expert"]


class TestOrder:
    def test_an_adjudication_before_its_annotations_is_flagged(self, ledger: Ledger, story: Story) -> None:
        story.credential("exp-1", "board_certification", at(-10))
        story.credential("ann-1", "internal_level", at(-10))
        adjudication = story.adjudicate("exp-1", "item-1", ["a1", "a2"], "a1", at(1))
        story.annotate("ann-1", "item-1", "a1", at(2))
        record(ledger, story)

        [flag] = flags(ledger)
        assert flag["kind"] == "review_before_annotation"
        assert flag["rule"] == "21 CFR 11.10(f)"
        assert flag["evidence"] == [adjudication]
        assert "a1, a2" in flag["detail"]

    def test_a_review_of_a_version_that_does_not_exist_yet_is_flagged(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10), level="senior")
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.review("ann-1", "item-1", "a1", at(2), level=2, version=2)
        record(ledger, story)

        assert [f["kind"] for f in flags(ledger)] == ["review_before_annotation"]


class TestGuidelines:
    def test_a_guideline_superseded_mid_project(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.guideline("1.1", at(3), supersedes="1.0")
        story.annotate("ann-1", "item-1", "a1", at(2), guideline="1.0")  # in effect then
        late = story.annotate("ann-1", "item-2", "a2", at(4), guideline="1.0")  # superseded by then
        story.annotate("ann-1", "item-3", "a3", at(4), guideline="1.1")
        story.annotate("ann-1", "item-4", "a4", at(2), guideline="1.1")  # before 1.1 took effect
        record(ledger, story)

        found = {(f["item"], f["kind"]) for f in flags(ledger)}
        assert found == {("item-2", "guideline_not_in_effect"), ("item-4", "guideline_not_in_effect")}
        assert late in next(f for f in flags(ledger) if f["item"] == "item-2")["evidence"]
        versions = {g["version"]: g for g in ledger.projections.guidelines(TENANT)}
        assert versions["1.0"]["effective_until"] == at(3)
        assert versions["1.0"]["superseded_by"] == "1.1"
        assert versions["1.1"]["effective_until"] is None
        assert (versions["1.0"]["annotations"], versions["1.1"]["annotations"]) == (2, 2)

    def test_a_label_under_a_retired_guideline(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.retire("1.0", at(5))
        story.annotate("ann-1", "item-1", "a1", at(6))
        record(ledger, story)
        assert [f["kind"] for f in flags(ledger)] == ["guideline_not_in_effect"]

    def test_an_unpublished_guideline_version(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1), guideline="9.9")
        record(ledger, story)
        assert "never published" in flags(ledger)[0]["detail"]


class TestLabelState:
    def test_an_annotation_deleted_and_re_created_keeps_its_whole_lineage(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1), label="nodule")
        story.delete("ann-1", "item-1", "a1", at(2), version=2)
        story.annotate("ann-1", "item-1", "a1", at(3), version=3, label="mass")
        record(ledger, story)

        [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
        assert (annotation["status"], annotation["label_class"], annotation["version"]) == (
            "submitted",
            "mass",
            3,
        )
        assert [(r["change"], r["version"]) for r in annotation["lineage"]] == [
            ("created", 1),
            ("deleted", 2),
            ("created", 3),
        ]
        assert annotation["created_at"] == at(1)

    def test_model_pre_annotation_is_a_draft_until_reviewed(self, ledger: Ledger, story: Story) -> None:
        story.annotate("model-service", "item-1", "ai-1", at(1), origin="model")
        record(ledger, story)
        [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
        assert (annotation["status"], annotation["model_version"]) == ("draft", "3.2.0")
        assert flags(ledger) == []  # model output is not held to human credentials

    def test_adjudication_decides_the_final_label(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.credential("ann-2", "internal_level", at(-10))
        story.credential("exp-1", "board_certification", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1), label="nodule")
        story.annotate("ann-2", "item-1", "a2", at(1), label="mass")
        decision = story.adjudicate("exp-1", "item-1", ["a1", "a2"], "a2", at(2), label="mass")
        record(ledger, story)

        labels = ledger.projections.labels(TENANT, DATASET, "item-1")
        assert labels["final_label"]["label_class"] == "mass"
        assert labels["final_label"]["event_id"] == decision
        statuses = {a["annotation_id"]: a["status"] for a in labels["annotations"]}
        assert statuses == {"a1": "submitted", "a2": "adjudicated"}


class TestProvenance:
    def test_lists_everything_in_order_with_each_actors_standing_then(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10), until=at(3))
        story.credential("rad-1", "license", at(-10))
        ids = [
            story.view("ann-1", "item-1", at(0.5)),
            story.annotate("ann-1", "item-1", "a1", at(1)),
            story.review("rad-1", "item-1", "a1", at(2), level=3),
            story.annotate("ann-1", "item-1", "a1", at(4), version=2, update=True),
        ]
        story.annotate("ann-1", "item-other", "a9", at(1))
        record(ledger, story)

        events = ledger.projections.provenance(TENANT, DATASET, "item-1")["events"]

        assert [e["id"] for e in events] == ids
        assert [e["position"] for e in events] == sorted(e["position"] for e in events)
        assert events[1]["actor_standing"]["qualified_for"] == ["annotator"]
        assert events[2]["actor_standing"]["qualified_for"] == ["annotator", "reviewer", "physician"]
        assert events[3]["actor_standing"]["qualified_for"] == []  # expired by then
        assert events[1]["guideline_version"] == "1.0"
        assert events[2]["review_level"] == 3
        assert events[0]["data"]["source_address"] == "[sealed]"

    def test_an_unknown_item_is_not_found(self, ledger: Ledger) -> None:
        with pytest.raises(NotFound):
            ledger.projections.provenance(TENANT, DATASET, "nope")


class TestSchemaEvolution:
    def test_old_and_new_versions_of_an_event_project_the_same_way(
        self, ledger: Ledger, story: Story
    ) -> None:
        common = {"annotator": "ann-1", "completed_at": "2026-03-01T10:00:00Z"}
        story.add(
            "training.completed", at(0), "lms", {**common, "course": "Chest CT nodule annotation"}
        )  # v1
        story.add("training.completed", at(1), "lms", {**common, "course_id": "hipaa-2026", "course_title": "HIPAA 2026"},
                  schemaversion=2)  # fmt: skip
        record(ledger, story)

        trainings = ledger.projections.credentials(TENANT, "ann-1", at(2))["trainings"]
        assert [t["course"] for t in trainings] == ["Chest CT nodule annotation", "HIPAA 2026"]
        with ledger.db.connect() as conn:
            (stored,) = conn.execute(
                "SELECT canonical FROM ledger_events WHERE type = 'training.completed' ORDER BY position LIMIT 1"
            ).fetchone()
        assert b'"course":"Chest CT nodule annotation"' in bytes(
            stored
        )  # stored as received, never rewritten


def snapshot(ledger: Ledger) -> dict[str, list[dict]]:
    tables = [t for p in all_projectors() for t in p.tables]
    out = {}
    with psycopg.connect(ledger.db.url) as conn, conn.cursor(row_factory=dict_row) as cur:
        for table in tables:
            cur.execute(f"SELECT * FROM {table}")
            out[table] = sorted(cur.fetchall(), key=repr)
    return out


def test_rebuild_equals_the_inline_projection_row_for_row(ledger: Ledger) -> None:
    from ledger.domain.envelope import validate_event
    from ledger.synth.project import generate

    events = [validate_event(raw) for raw in generate(tenant=TENANT, events=6000, seed=5)]
    for start, size in ((0, 1), (1, 999), (1000, 2500), (3500, 2500)):  # batch boundaries anywhere
        ledger.appender.append(events[start : start + size])
    inline = snapshot(ledger)
    assert sum(len(rows) for rows in inline.values()) > 6000

    read = rebuild(ledger.db, all_projectors())

    assert read == 6000
    assert snapshot(ledger) == inline


def test_a_single_projection_can_be_rebuilt_alone(ledger: Ledger, story: Story) -> None:
    story.annotate("ann-1", "item-1", "a1", at(1))
    record(ledger, story)
    before = snapshot(ledger)
    rebuild(ledger.db, [p for p in all_projectors() if p.name == "retention"])
    assert snapshot(ledger) == before


def test_projections_are_stamped_with_the_position_they_reflect(ledger: Ledger, story: Story) -> None:
    story.credential("ann-1", "internal_level", at(-10), level="senior")
    story.annotate("ann-1", "item-1", "a1", at(1))
    story.review("ann-1", "item-1", "a1", at(2), level=2)
    record(ledger, story)
    with ledger.db.connect() as conn:
        (position,) = conn.execute("SELECT position FROM proj_annotations").fetchone()
        (last,) = conn.execute("SELECT max(position) FROM ledger_events").fetchone()
    assert position == last


def test_times_are_compared_in_valid_time_not_arrival_order(ledger: Ledger, story: Story) -> None:
    """A credential recorded after the annotation still counts if it was valid at the annotation's time."""
    story.annotate("ann-1", "item-1", "a1", at(1))
    story.credential("ann-1", "internal_level", at(-10))
    record(ledger, story)
    # As-recorded semantics: when the annotation was projected the credential was not on record yet.
    assert [f["kind"] for f in flags(ledger)] == ["unqualified_annotator"]
    assert ledger.projections.credentials(TENANT, "ann-1", at(1) - timedelta(hours=1))["qualified_for"] == [
        "annotator"
    ]


def test_a_review_of_an_earlier_version_leaves_the_current_one_as_it_is(ledger: Ledger, story: Story) -> None:
    story.credential("ann-1", "internal_level", at(-10))
    story.credential("rad-1", "license", at(-10))
    story.annotate("ann-1", "item-1", "a1", at(1))
    story.annotate("ann-1", "item-1", "a1", at(2), version=2, update=True)
    stale = story.review("rad-1", "item-1", "a1", at(3), level=3, version=1)
    record(ledger, story)

    [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
    assert (annotation["version"], annotation["status"], annotation["review_level"]) == (2, "submitted", None)
    assert [r["change"] for r in annotation["lineage"]] == ["created", "updated", "reviewed"]
    [flag] = flags(ledger)
    assert (flag["kind"], flag["evidence"]) == ("review_of_other_version", [stale])


def test_lower_case_rfc_3339_times_project_and_verify(ledger: Ledger, story: Story) -> None:
    from ledger.storage.verify import verify

    story.credential("ann-1", "internal_level", at(-10))
    event_id = story.annotate("ann-1", "item-1", "a1", at(1))
    story.events[-1].raw["time"] = story.events[-1].raw["time"].replace("T", "t").replace("Z", "z")
    record(ledger, story)

    assert ledger.projections.provenance(TENANT, DATASET, "item-1")["events"][0]["id"] == event_id
    assert verify(ledger.db).intact


def test_numbers_project_the_same_inline_and_after_rebuild(ledger: Ledger, story: Story) -> None:
    story.credential("ann-1", "internal_level", at(-10))
    story.annotate("ann-1", "item-1", "a1", at(1))
    story.events[-1].raw["data"]["geometry"]["x"] = 10.0  # the same JSON number as 10
    record(ledger, story)
    inline = snapshot(ledger)
    rebuild(ledger.db, all_projectors())
    assert snapshot(ledger) == inline


class TestWhatAnEventCannotMeanIsFlaggedNotApplied:
    """Issue 7 item 11: re-creating what exists or re-stating it with other content never rewinds state."""

    def test_re_creating_an_adjudicated_annotation_leaves_it_as_it_is(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.credential("exp-1", "board_certification", at(-10))
        created = story.annotate("ann-1", "item-1", "a1", at(1), label="nodule")
        story.annotate("ann-1", "item-1", "a1", at(2), version=2, label="mass", update=True)
        story.adjudicate("exp-1", "item-1", ["a1"], "a1", at(3), label="mass")
        again = story.annotate("ann-1", "item-1", "a1", at(4), label="nodule")
        record(ledger, story)

        labels = ledger.projections.labels(TENANT, DATASET, "item-1")
        [annotation] = labels["annotations"]
        assert (annotation["version"], annotation["status"], annotation["label_class"]) == (
            2,
            "adjudicated",
            "mass",
        )
        assert labels["final_label"]["label_class"] == "mass"
        assert [r["change"] for r in annotation["lineage"]] == ["created", "updated", "adjudicated"]
        [flag] = flags(ledger, "annotation_recreated")
        assert flag["evidence"] == [again, created]

    def test_an_update_that_does_not_move_forward_is_not_applied(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.annotate("ann-1", "item-1", "a1", at(2), version=3, label="mass", update=True)
        stale = story.annotate("ann-1", "item-1", "a1", at(3), version=2, label="effusion", update=True)
        record(ledger, story)

        [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
        assert (annotation["version"], annotation["label_class"]) == (3, "mass")
        assert [f["evidence"][0] for f in flags(ledger, "annotation_out_of_sequence")] == [stale]

    def test_an_update_past_a_missing_version_is_applied_and_flagged(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1))
        jump = story.annotate(
            "ann-1", "item-1", "a1", at(2), version=3, label="mass", update=True
        )  # previous 2
        orphan = story.annotate("ann-1", "item-2", "a2", at(2), version=2, update=True)  # never created
        record(ledger, story)

        labels = {
            i: ledger.projections.labels(TENANT, DATASET, i)["annotations"][0] for i in ("item-1", "item-2")
        }
        assert (labels["item-1"]["version"], labels["item-1"]["label_class"]) == (3, "mass")
        assert labels["item-2"]["version"] == 2
        assert sorted(f["evidence"][0] for f in flags(ledger, "annotation_version_gap")) == sorted(
            [jump, orphan]
        )

    def test_a_deleted_annotation_is_neither_updated_nor_deleted_again(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.delete("ann-1", "item-1", "a1", at(2), version=2)
        update = story.annotate("ann-1", "item-1", "a1", at(3), version=3, update=True)
        delete = story.delete("ann-1", "item-1", "a1", at(4), version=4)
        record(ledger, story)

        [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
        assert (annotation["status"], annotation["version"]) == ("deleted", 2)
        assert [f["evidence"][0] for f in flags(ledger, "annotation_out_of_sequence")] == [update, delete]

    def test_a_review_of_a_version_not_yet_written_does_not_change_the_current_one(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10), level="senior")
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.review("ann-1", "item-1", "a1", at(2), level=2, decision="reject", version=2)
        record(ledger, story)

        [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
        assert (annotation["status"], annotation["reviewers"]) == ("submitted", [])
        assert [r["change"] for r in annotation["lineage"]] == ["created", "reviewed"]
        assert [f["kind"] for f in flags(ledger)] == ["review_before_annotation"]

    def test_a_review_after_adjudication_does_not_undo_it(self, ledger: Ledger, story: Story) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        story.credential("exp-1", "board_certification", at(-10))
        story.credential("rad-1", "license", at(-10))
        story.annotate("ann-1", "item-1", "a1", at(1))
        story.adjudicate("exp-1", "item-1", ["a1"], "a1", at(2))
        story.review("rad-1", "item-1", "a1", at(3), level=3, decision="reject")
        record(ledger, story)

        [annotation] = ledger.projections.labels(TENANT, DATASET, "item-1")["annotations"]
        assert (annotation["status"], annotation["reviewers"]) == ("adjudicated", ["rad-1"])

    def test_the_same_guideline_publication_twice_changes_nothing(self, ledger: Ledger, story: Story) -> None:
        story.guideline("1.1", at(3), supersedes="1.0")
        story.guideline("1.1", at(3), supersedes="1.0")  # the same content under a new event id
        record(ledger, story)
        assert flags(ledger) == []
        assert {g["version"]: g["effective_from"] for g in ledger.projections.guidelines(TENANT)} == {
            "1.0": at(-100),
            "1.1": at(3),
        }

    def test_a_guideline_version_published_again_with_other_content_keeps_the_first(
        self, ledger: Ledger, story: Story
    ) -> None:
        story.credential("ann-1", "internal_level", at(-10))
        first = story.guideline("1.1", at(3), supersedes="1.0")
        story.annotate("ann-1", "item-1", "a1", at(4), guideline="1.1")
        again = story.guideline("1.1", at(10), supersedes="1.0")  # moved later: item-1 would look early
        story.annotate("ann-1", "item-2", "a2", at(5), guideline="1.1")
        record(ledger, story)

        versions = {g["version"]: g for g in ledger.projections.guidelines(TENANT)}
        assert (versions["1.1"]["effective_from"], versions["1.0"]["effective_until"]) == (at(3), at(3))
        [flag] = flags(ledger)
        assert (flag["kind"], flag["evidence"]) == ("guideline_republished", [again, first])
        assert "effective_from" in flag["detail"]

    def test_a_credential_granted_twice(self, ledger: Ledger, story: Story) -> None:
        first = story.credential("ann-1", "license", at(-10), until=at(5))
        story.credential("ann-1", "license", at(-10), until=at(5))  # a repeat: nothing new
        other = story.credential("ann-1", "license", at(-10), until=at(50))  # other content: a renewal's job
        story.credential("ann-2", "license", at(-10), cred="cred-ann-1-license")  # someone else's id
        record(ledger, story)

        [period] = ledger.projections.credentials(TENANT, "ann-1", at(0))["credentials"]
        assert (period["period"], period["valid_until"], period["event_id"]) == (1, at(5), first)
        with pytest.raises(NotFound):
            ledger.projections.credentials(TENANT, "ann-2", at(0))
        reissued = flags(ledger, "credential_reissued")
        assert [f["evidence"] for f in reissued] == [[other, first], [reissued[1]["evidence"][0], first]]
        assert [f["actor"] for f in reissued] == ["office", "office"]

    def test_an_assignment_created_again(self, ledger: Ledger, story: Story) -> None:
        def assign(kind: str, items: list[str], when: float) -> str:
            data = {"assignment_id": "asg-1", "dataset": DATASET, "items": items, "assignee": "ann-1",
                    "role": "annotator"}  # fmt: skip
            return story.add(f"assignment.{kind}", at(when), "lead", data, role="admin")

        first = assign("created", ["i1", "i2"], 1)
        assign("created", ["i1", "i2"], 2)  # a repeat
        changed = assign("created", ["i3"], 3)
        assign("revoked", ["i1", "i2"], 4)
        assign("revoked", ["i1", "i2"], 5)  # revoked once: the first stands
        revived = assign("created", ["i1", "i2"], 6)
        record(ledger, story)

        with ledger.db.connect() as conn:
            row = conn.execute(
                "SELECT items, active, created_at, revoked_at FROM proj_assignments"
            ).fetchone()
        assert row == (["i1", "i2"], False, at(1), at(4))
        assert [f["evidence"] for f in flags(ledger, "assignment_recreated")] == [
            [changed, first],
            [revived, first],
        ]
