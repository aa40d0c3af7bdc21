"""A small release whose lineage is known event by event: the story the lineage report tests read.

Release ``r1`` of ``chest-ct-2026``: items i1 and i2 in train, i3 in test.
* i1: readers ann-a and ann-b both say nodule, a physician accepts a1 at level 3, an expert adjudicates a1.
* i2: a model pre-annotates mass, ann-a says mass; ann-b views the item's labels *before* annotating (the
  planted independence breach) and says nodule; the expert adjudicates a2 (mass). Released without an
  annotation id: traced through the adjudication.
* i3: ann-c, with no credential, annotates under guideline 9.9 (never published), with a comment; ann-a says
  nodule, then reads the item again (a repeat read) and says mass; released as a3 (nodule).
* After the release a model developer views i3 (the planted test-set access).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ledger.domain.canonical import canonicalize
from tests.stories import DATASET, Story, at

RELEASE = "r1"
SECRET = "reader note: patient looked anxious"
SOURCE_ADDRESS = "10.0.0.7"


@dataclass
class LineageStory:
    """The story's events and the ids the tests check against."""

    story: Story
    ids: dict[str, str] = field(default_factory=dict)


def release_items(items: list[dict[str, str]]) -> str:
    return hashlib.sha256(canonicalize(items)).hexdigest()


def lineage_story(tenant: str) -> LineageStory:
    """Build the story (not yet appended)."""
    s = Story(tenant)
    ids: dict[str, str] = {}
    ids["gl1"] = s.guideline("1.0", at(-100))
    ids["cred_a"] = s.credential("ann-a", "license", at(-200))
    ids["cred_b"] = s.credential("ann-b", "internal_level", at(-200), level="junior")
    ids["cred_phys"] = s.credential("phys", "license", at(-200))
    ids["cred_exp"] = s.credential("exp", "board_certification", at(-200))
    # i1
    ids["a1"] = s.annotate("ann-a", "i1", "a1", at(1))
    ids["b1"] = s.annotate("ann-b", "i1", "b1", at(2))
    ids["review_a1"] = s.review("phys", "i1", "a1", at(3), level=3)
    ids["adj_i1"] = s.adjudicate("exp", "i1", ["a1", "b1"], "a1", at(4))
    # i2
    ids["m2"] = s.annotate("detector", "i2", "m2", at(5), label="mass", origin="model")
    ids["a2"] = s.annotate("ann-a", "i2", "a2", at(6), label="mass")
    ids["breach"] = s.add("access.data_viewed", at(7), "ann-b", {
        "resource": f"{DATASET}/i2/labels", "dataset": DATASET, "item": "i2", "purpose_of_use": "annotation",
        "outcome": "success", "source_address": SOURCE_ADDRESS})  # fmt: skip
    ids["b2"] = s.annotate("ann-b", "i2", "b2", at(8))
    ids["adj_i2"] = s.adjudicate("exp", "i2", ["a2", "b2"], "a2", at(9), label="mass")
    # i3
    ids["c3"] = s.add("annotation.created", at(10), "ann-c", {
        "dataset": DATASET, "item": "i3", "annotation_id": "c3", "version": 1, "label_class": "nodule",
        "geometry": {"kind": "bbox", "x": 1, "y": 2, "width": 3, "height": 4}, "origin": "human",
        "guideline_id": "chest-ct", "guideline_version": "9.9", "comment": SECRET})  # fmt: skip
    ids["a3"] = s.annotate("ann-a", "i3", "a3", at(11))
    ids["a3_repeat"] = s.annotate("ann-a", "i3", "a3r", at(40), label="mass")
    train = [
        {"item": "i1", "label_class": "nodule", "annotation_id": "a1"},
        {"item": "i2", "label_class": "mass"},
    ]
    test = [{"item": "i3", "label_class": "nodule", "annotation_id": "a3"}]
    for split, items in (("train", train), ("test", test)):
        ids[f"release_{split}"] = s.add("dataset.release_created", at(50), "data-lead", {
            "dataset": DATASET, "release": RELEASE, "split": split, "items": items,
            "items_sha256": release_items(items)}, role="admin")  # fmt: skip
    ids["dev_view"] = s.add("access.data_viewed", at(60), "dev-1", {
        "resource": f"{DATASET}/i3", "dataset": DATASET, "item": "i3", "purpose_of_use": "model_development",
        "outcome": "success"}, role="model_developer")  # fmt: skip
    # After the release: not in the lineage (only counted), not in the bundle.
    ids["late"] = s.review("phys", "i1", "a1", at(70), level=3)
    return LineageStory(s, ids)
