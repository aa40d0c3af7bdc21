"""Per-annotator accuracy (pure part): a final label is compared only with reads of its own task."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from ledger.quality.policy import Application, QcPolicy
from ledger.quality.queries import final_labels_by_task, summarize_annotator

POLICY = QcPolicy(applications={"detection": Application(guideline="chest-ct")})
# 00:30 on 1 February at UTC+02:00 is 22:30 on 31 January in UTC
EARLY = datetime(2026, 2, 1, 0, 30, tzinfo=timezone(timedelta(hours=2)))


def read(ann: str, who: str, label: str, guideline: str) -> dict[str, Any]:
    return {"annotation_id": ann, "dataset": "ds", "item": "i1", "version": 1, "label_class": label,
            "geometry": {"kind": "classification"}, "origin": "human", "guideline_id": guideline,
            "created_by": who, "created_at": EARLY, "created_event_id": f"evt-{ann}"}  # fmt: skip


def test_a_grading_read_is_not_compared_with_the_detection_final_label_and_months_are_utc() -> None:
    annotations = [read("d1", "r1", "nodule", "chest-ct"), read("g1", "r1", "grade-3", "grading")]
    finals = final_labels_by_task(
        POLICY,
        [
            {
                "dataset": "ds",
                "item": "i1",
                "label_class": "nodule",
                "annotation_dataset": "ds",
                "guideline_id": "chest-ct",
            }
        ],
    )
    assert finals == {("detection", "ds", "i1"): "nodule"}
    tasks = {t["task"]: t for t in summarize_annotator("r1", annotations, finals, POLICY)["tasks"]}
    assert tasks["detection"]["accuracy"] == {"compared": 1, "correct": 1, "accuracy": 1.0}
    assert tasks["grading"]["accuracy"] == {"compared": 0, "correct": 0, "accuracy": None}
    assert tasks["detection"]["by_month"] == [
        {"month": "2026-01", "compared": 1, "correct": 1, "accuracy": 1.0}
    ]


def test_a_final_whose_annotation_is_not_on_record_is_compared_with_nothing() -> None:
    finals = [
        {
            "dataset": "ds",
            "item": "i1",
            "label_class": "nodule",
            "annotation_dataset": None,
            "guideline_id": None,
        }
    ]
    assert final_labels_by_task(POLICY, finals) == {}
