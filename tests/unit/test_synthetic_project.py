"""The synthetic project carries what a lineage report and a QC policy must find, at the places its
constants name: an independence breach, repeat reads, several readers, ordinal grades, release r1 in three
splits, and one item whose readers agree on the class but not on the place."""

from __future__ import annotations

import itertools
import tomllib
from collections import defaultdict
from typing import Any

import pytest

from ledger.domain.envelope import validate_event
from ledger.synth.project import (
    BELOW_POLICY_ITEM,
    DETECTION,
    GRADES,
    GRADING,
    INDEPENDENCE_BREACH,
    MULTI_READER_ITEMS,
    QC_POLICY,
    RELEASE,
    RETEST_ITEMS,
    RETEST_LAG,
    SPLITS,
    TEST_SET_ACCESS,
    generate,
)

Event = dict[str, Any]
ITEM_PREFIX = "1.2.826.0.1.3680043.10.543."


@pytest.fixture(scope="module", params=[True, False], ids=["plants", "no-plants"])
def events(request: pytest.FixtureRequest) -> list[Event]:
    return list(generate(events=20_000, seed=7, plants=request.param))


def first_reads(events: list[Event], guideline: str) -> dict[str, dict[str, Event]]:
    """item -> reader -> their first annotation (latest version) under ``guideline``, repeat reads left out."""
    latest: dict[str, Event] = {}
    first: dict[tuple[str, str], str] = {}
    for e in events:
        d = e["data"]
        if e["type"].startswith("annotation.") and d["origin"] == "human" and d["guideline_id"] == guideline:
            latest[d["annotation_id"]] = e
            first.setdefault((d["item"], e["actor"]), d["annotation_id"])
    out: dict[str, dict[str, Event]] = defaultdict(dict)
    for (item, reader), annotation in first.items():
        out[item][reader] = latest[annotation]
    return out


def iou(a: dict[str, Any], b: dict[str, Any]) -> float:
    width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    inter = max(width, 0.0) * max(height, 0.0) if a["frame"] == b["frame"] else 0.0
    return inter / (a["width"] * a["height"] + b["width"] * b["height"] - inter)


def test_every_event_is_one_the_ledger_accepts(events: list[Event]) -> None:
    for e in events:
        validate_event(e)


def test_the_same_seed_gives_the_same_project() -> None:
    assert list(generate(events=3000, seed=7, plants=True)) == list(generate(events=3000, seed=7))[:3000]
    assert list(generate(events=3000, seed=8)) != list(generate(events=3000, seed=7))


def test_the_breach_reader_views_the_other_annotation_before_drawing_their_own(events: list[Event]) -> None:
    item, reader, seen = INDEPENDENCE_BREACH
    dataset = "chest-ct-2026"  # generate's default
    of_item = [e for e in events if e["data"].get("item") == item]
    view = next(
        i
        for i, e in enumerate(of_item)
        if e["type"] == "access.data_viewed" and e["data"]["resource"].endswith(f"/annotations/{seen}")
    )
    own = next(i for i, e in enumerate(of_item) if e["type"] == "annotation.created" and e["actor"] == reader)
    seen_created = next(i for i, e in enumerate(of_item) if e["data"].get("annotation_id") == seen)
    assert seen_created < view < own
    assert of_item[view]["actor"] == reader
    assert of_item[view]["data"]["resource"] == f"{dataset}/{item}/annotations/{seen}"
    assert of_item[seen_created]["actor"] != reader
    assigned = [e for e in events if e["type"] == "assignment.created" and e["data"]["assignee"] == reader]
    assert any(item in e["data"]["items"] for e in assigned)  # so no access anomaly: their own item
    # and nobody else in the project views an annotation or the labels of an item
    shown = [e for e in events if "/annotations/" in e["data"].get("resource", "") or
             e["data"].get("resource", "").endswith("/labels")]  # fmt: skip
    assert shown == [of_item[view]]


def test_repeat_reads_follow_the_rule_and_mostly_agree_with_the_first(events: list[Event]) -> None:
    created = {e["data"]["annotation_id"]: e for e in events if e["type"] == "annotation.created"}
    retests = {a: e for a, e in created.items() if a.endswith("-retest")}
    numbers = {int(e["data"]["item"].removeprefix(ITEM_PREFIX)) for e in retests.values()}
    reached = max(int(e["data"]["item"].removeprefix(ITEM_PREFIX)) for e in created.values())
    assert numbers == {n for n in range(1, reached - RETEST_LAG + 1) if n in RETEST_ITEMS}
    same = 0
    for annotation, repeat in retests.items():
        first = created[annotation.removesuffix("-retest")]
        assert (repeat["actor"], repeat["data"]["item"]) == (first["actor"], first["data"]["item"])
        assert repeat["data"]["guideline_id"] == first["data"]["guideline_id"]
        assert repeat["time"] > first["time"]
        same += repeat["data"]["label_class"] == first["data"]["label_class"]
    assert len(retests) >= 100
    assert same / len(retests) > 0.7


def test_some_items_have_three_or_four_readers_and_the_rest_two(events: list[Event]) -> None:
    reads = first_reads(events, DETECTION)
    counts = {int(item.removeprefix(ITEM_PREFIX)): len(r) for item, r in reads.items()}
    assert {c for n, c in counts.items() if n in MULTI_READER_ITEMS} == {3, 4}
    assert {c for n, c in counts.items() if n not in MULTI_READER_ITEMS} == {2}


def test_readers_grade_every_item_on_the_ordinal_scale_mostly_within_one_grade(events: list[Event]) -> None:
    grades = first_reads(events, GRADING)
    assert grades.keys() == first_reads(events, DETECTION).keys()
    spreads = []
    for by_reader in grades.values():
        values = [GRADES.index(e["data"]["label_class"]) for e in by_reader.values()]
        assert all(e["data"]["geometry"]["kind"] == "classification" for e in by_reader.values())
        spreads.append(max(values) - min(values))
    assert sum(s <= 1 for s in spreads) / len(spreads) > 0.85
    assert any(s > 0 for s in spreads)
    published = {
        (e["data"]["guideline_id"], e["data"]["version"])
        for e in events
        if e["type"] == "guideline.published"
    }
    assert (GRADING, "1.0") in published


def test_release_r1_has_three_splits_whose_items_and_final_annotations_exist(events: list[Event]) -> None:
    releases = [e["data"] for e in events if e["type"] == "dataset.release_created"]
    assert [(r["release"], r["split"]) for r in releases] == [(RELEASE, s) for s in ("train", "tune", "test")]
    annotations = {e["data"]["annotation_id"]: e["data"] for e in events if e["type"] == "annotation.created"}
    finals = {e["data"]["item"]: e["data"] for e in events if e["type"] == "adjudication.completed"}
    for release in releases:
        numbers = [int(i["item"].removeprefix(ITEM_PREFIX)) for i in release["items"]]
        assert numbers == list(SPLITS[release["split"]])
        for entry in release["items"]:
            final = annotations[entry["annotation_id"]]
            assert final["item"] == entry["item"]
            assert final["guideline_id"] == DETECTION
            assert final["label_class"] == entry["label_class"]
            if entry["item"] in finals:
                assert finals[entry["item"]]["final_annotation_id"] == entry["annotation_id"]
    test_split = {i["item"] for r in releases if r["split"] == "test" for i in r["items"]}
    assert TEST_SET_ACCESS[1] in test_split


def test_the_model_developer_touches_the_test_split_only_when_planted(
    events: list[Event], request: pytest.FixtureRequest
) -> None:
    actor, item = TEST_SET_ACCESS
    touched = [e for e in events if e["actor"] == actor and e["data"].get("item") == item]
    assert len(touched) == (1 if request.node.callspec.params["events"] else 0)


def test_only_the_planted_item_has_readers_boxes_of_one_class_overlapping_below_a_half(
    events: list[Event],
) -> None:
    below, overlaps = [], []
    for item, by_reader in first_reads(events, DETECTION).items():
        for a, b in itertools.combinations(by_reader.values(), 2):
            if (
                a["data"]["label_class"] == b["data"]["label_class"]
                and a["data"]["geometry"]["kind"] == "bbox"
            ):
                overlap = iou(a["data"]["geometry"], b["data"]["geometry"])
                overlaps.append(overlap)
                if overlap < 0.5:
                    below.append(item)
    assert below == [BELOW_POLICY_ITEM]
    planted = first_reads(events, DETECTION)[BELOW_POLICY_ITEM].values()
    assert len({e["data"]["label_class"] for e in planted}) == 1
    typical = sorted(overlaps)[len(overlaps) // 4 : 3 * len(overlaps) // 4]
    assert typical[0] >= 0.7  # the middle half of the pairs
    assert typical[-1] <= 0.95


def test_model_pre_annotations_are_near_the_readers(events: list[Event]) -> None:
    reads = first_reads(events, DETECTION)
    near = []
    for e in events:
        d = e["data"]
        if e["type"] == "annotation.created" and d["origin"] == "model" and d["geometry"]["kind"] == "bbox":
            boxes = [
                r["data"]["geometry"]
                for r in reads[d["item"]].values()
                if r["data"]["geometry"]["kind"] == "bbox"
            ]
            near.extend(iou(d["geometry"], box) > 0.5 for box in boxes)
    assert sum(near) / len(near) > 0.95


def test_the_demo_policy_names_both_tasks_with_the_contract_fields() -> None:
    policy = tomllib.loads(QC_POLICY.read_text("utf-8"))
    applications = {a["guideline"]: a for a in policy["applications"].values()}
    assert applications[DETECTION]["item_iou_min"] == 0.5
    assert applications[GRADING]["scale"] == "ordinal"
    assert applications[GRADING]["classes"] == list(GRADES)
    contract = {"guideline", "datasets", "scale", "classes", "item_iou_min", "item_dice_min", "item_agreement_min",
                "kappa_excellent", "kappa_acceptable", "annotator_accuracy_min"}  # fmt: skip
    assert all(application.keys() <= contract for application in applications.values())
