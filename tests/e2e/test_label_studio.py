"""A real Label Studio posting its webhooks to a real ``ledger serve``: what an operator sets up, end to end.

Label Studio 1.23.2 is installed from PyPI into a virtual environment of its own (``tests/label_studio.py``);
where it cannot be, these tests are skipped saying why. Label Studio posts each webhook synchronously within
the API call that caused it, but the ledger is read back over HTTP, so each effect is waited for.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli import home, run, serve_process, until
from tests.label_studio import RECTANGLES, LabelStudio, label_studio

__all__ = ["home", "label_studio"]  # the fixtures

pytestmark = pytest.mark.slow

TENANT = "acme"
SOURCE = "ls-e2e"
DATASET = "chest-ct-e2e"
ACTOR = "ann-e2e-0001"
UID = "1.2.826.0.1.3680043.10.543.1001"
SIZE = 512


def _image(uid: str) -> str:
    return f"http://127.0.0.1/data/{uid}.png"


def _box(
    region: str, x: float, y: float, width: float, height: float, label: str = "nodule"
) -> dict[str, Any]:
    """A Label Studio rectangle result, in percent of the image, as its editor sends it."""
    return {
        "id": region,
        "from_name": "label",
        "to_name": "image",
        "type": "rectanglelabels",
        "original_width": SIZE,
        "original_height": SIZE,
        "image_rotation": 0,
        "value": {
            "x": x,
            "y": y,
            "width": width,
            "height": height,
            "rotation": 0,
            "rectanglelabels": [label],
        },
    }


def _pixels(x: float, y: float, width: float, height: float) -> dict[str, float]:
    return {
        "x": x * SIZE / 100,
        "y": y * SIZE / 100,
        "width": width * SIZE / 100,
        "height": height * SIZE / 100,
    }


def _box_of(geometry: dict[str, Any]) -> dict[str, float]:
    assert geometry["kind"] == "bbox"
    return {key: geometry[key] for key in ("x", "y", "width", "height")}


def _annotation_events(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [
        (e["type"], e["data"]["annotation_id"], e["data"]["version"])
        for e in events
        if e["type"].startswith("annotation.")
    ]


@dataclass(frozen=True, slots=True)
class Wired:
    """A ``ledger serve`` with a Label Studio source, and a Label Studio project whose webhook posts to it."""

    serve: Popen[bytes]
    base: str
    auditor: str
    studio: LabelStudio
    project: int

    def provenance(self, uid: str) -> list[dict[str, Any]]:
        """The item's provenance timeline; empty while nothing about it is recorded."""
        answer = httpx.get(
            f"{self.base}/v1/items/{DATASET}/{uid}/provenance",
            headers={"authorization": f"Bearer {self.auditor}"},
            timeout=30,
        )
        if answer.status_code == 404:
            return []
        assert answer.status_code == 200, answer.text
        events: list[dict[str, Any]] = answer.json()["events"]
        return events

    def events(self, type_: str) -> list[dict[str, Any]]:
        """The tenant's events of one type, oldest first."""
        listed = httpx.get(
            f"{self.base}/v1/events",
            params={"type": type_, "limit": 1000},
            headers={"authorization": f"Bearer {self.auditor}"},
            timeout=30,
        )
        assert listed.status_code == 200, listed.text
        return [entry["event"] for entry in listed.json()["events"]]

    def reached(self, condition: Callable[[], bool], what: str) -> None:
        """Wait for a delivery's effect; failing, say what the ledger refused and what Label Studio logged."""
        try:
            until(condition, what, self.serve)
        except AssertionError as failure:
            refused = [e["data"] for e in self.events("ledger.ingest_rejected")]
            log = "\n".join(self.studio.log.read_text("utf-8", "replace").splitlines()[-30:])
            raise AssertionError(
                f"{what}\nrefused on the record: {json.dumps(refused, indent=1)}\nLabel Studio's log:\n{log}"
            ) from failure

    def annotations_seen(self, uid: str, count: int) -> Callable[[], bool]:
        return lambda: len(_annotation_events(self.provenance(uid))) >= count


@contextmanager
def wired(home: Path, tmp_path: Path, studio: LabelStudio) -> Iterator[Wired]:
    """Set up as docs/integrations.md tells an operator: ``ledger sources add`` with a config mapping the Label
    Studio user to an actor, then the webhook created in Label Studio with what it printed."""
    config = tmp_path / "ls-e2e.toml"
    config.write_text(f'dataset = "{DATASET}"\n\n[users]\n"{studio.user_id}" = "{ACTOR}"\n', encoding="utf-8")
    with serve_process(home) as (serve, base):
        added = run(
            home, "sources", "add", "label-studio", "--tenant", TENANT, "--name", SOURCE,
            "--config", str(config), "--base-url", base, "--json",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        source = json.loads(added.stdout)
        assert source["webhook_url"] == f"{base}/v1/webhooks/label-studio?source={SOURCE}"
        auditor = run(home, "token", "--role", "auditor", "--tenant", TENANT).stdout.strip()

        project = studio.create_project("ledger e2e")
        # the body `ledger sources add --json` gives for Label Studio's own create-webhook call, as printed
        assert source["api"]["headers"] == {"Authorization": f"Bearer {source['secret']}"}
        studio.api("POST", "/api/webhooks/", {**source["api"], "project": project})
        ledger = Wired(serve, base, auditor, studio, project)
        yield ledger
        assert [e["data"] for e in ledger.events("ledger.ingest_rejected")] == [], "nothing is refused"
    verified = run(home, "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["intact"] is True


def test_label_studio_webhooks_become_the_items_provenance_and_verify_intact(
    home: Path, tmp_path: Path, label_studio: LabelStudio
) -> None:
    studio = label_studio
    with wired(home, tmp_path, studio) as ledger:
        (task,) = studio.import_tasks(ledger.project, [{"image": _image(UID), "width": SIZE, "height": SIZE}])
        ledger.reached(
            lambda: any(e["type"] == "item.imported" for e in ledger.provenance(UID)),
            "the imported task did not reach the ledger",
        )

        annotation = studio.create_annotation(task, [_box("r1", 10.0, 20.0, 15.0, 12.5)])
        aid = annotation["id"]
        first, second = f"{SOURCE}-a{aid}-r1", f"{SOURCE}-a{aid}-r2"
        ledger.reached(ledger.annotations_seen(UID, 1), "the created annotation did not reach the ledger")

        # the box moved and a second region drawn: one update of one Label Studio annotation
        studio.update_annotation(
            aid, [_box("r1", 30.0, 40.0, 15.0, 12.5), _box("r2", 60.0, 60.0, 10.0, 10.0)]
        )
        ledger.reached(ledger.annotations_seen(UID, 3), "the updated annotation did not reach the ledger")

        studio.delete_annotation(aid)
        ledger.reached(ledger.annotations_seen(UID, 5), "the deleted annotation did not reach the ledger")

        events = ledger.provenance(UID)
        written = _annotation_events(events)
        assert written[0] == ("annotation.created", first, 1)
        assert sorted(written[1:3]) == [("annotation.created", second, 1), ("annotation.updated", first, 2)]
        assert sorted(written[3:]) == [("annotation.deleted", first, 3), ("annotation.deleted", second, 2)]

        types = [e["type"] for e in events]
        assert types.index("item.imported") < types.index("annotation.created")
        by_step = {
            (e["type"], e["data"]["annotation_id"]): e for e in events if e["type"].startswith("annotation.")
        }
        created = by_step[("annotation.created", first)]
        assert (created["actor"], created["actorrole"]) == (ACTOR, "annotator")
        assert created["data"]["label_class"] == "nodule"
        assert created["data"]["origin"] == "human"
        assert created["data"]["guideline_version"] is not None
        assert _box_of(created["data"]["geometry"]) == pytest.approx(_pixels(10.0, 20.0, 15.0, 12.5))
        moved = by_step[("annotation.updated", first)]
        assert moved["data"]["previous_version"] == 1
        assert (moved["actor"], moved["actorrole"]) == (ACTOR, "annotator")
        assert _box_of(moved["data"]["geometry"]) == pytest.approx(_pixels(30.0, 40.0, 15.0, 12.5))
        drawn = by_step[("annotation.created", second)]
        assert _box_of(drawn["data"]["geometry"]) == pytest.approx(_pixels(60.0, 60.0, 10.0, 10.0))
        for region in (first, second):
            # Label Studio does not say who deleted: the tool itself is the actor
            deleted = by_step[("annotation.deleted", region)]
            assert (deleted["actor"], deleted["actorrole"]) == (SOURCE, "tool")

        (published,) = ledger.events("guideline.published")
        assert published["data"]["guideline_id"] == f"{SOURCE}-project-{ledger.project}"
        assert created["data"]["guideline_version"] == published["data"]["version"]


def test_a_new_labelling_config_is_a_new_guideline_version_and_a_deleted_task_withdraws_its_annotations(
    home: Path, tmp_path: Path, label_studio: LabelStudio
) -> None:
    studio, uid = label_studio, "1.2.826.0.1.3680043.10.543.1002"
    with wired(home, tmp_path, studio) as ledger:
        (task,) = studio.import_tasks(ledger.project, [{"image": _image(uid), "width": SIZE, "height": SIZE}])
        before = studio.create_annotation(task, [_box("n1", 10.0, 10.0, 20.0, 20.0)])
        ledger.reached(ledger.annotations_seen(uid, 1), "the first annotation did not reach the ledger")

        # Label Studio sends PROJECT_UPDATED; the new configuration is the guideline's next version
        two_labels = RECTANGLES.replace(
            '<Label value="nodule"/>', '<Label value="nodule"/><Label value="mass"/>'
        )
        studio.api("PATCH", f"/api/projects/{ledger.project}/", {"label_config": two_labels})
        ledger.reached(
            lambda: len(ledger.events("guideline.published")) == 2, "the new configuration was not published"
        )
        old, new = ledger.events("guideline.published")
        assert (
            new["data"]["guideline_id"] == old["data"]["guideline_id"] == f"{SOURCE}-project-{ledger.project}"
        )
        assert new["data"]["version"] != old["data"]["version"]

        after = studio.create_annotation(task, [_box("m1", 50.0, 50.0, 10.0, 10.0, label="mass")])
        ledger.reached(ledger.annotations_seen(uid, 2), "the second annotation did not reach the ledger")

        # Label Studio sends TASKS_DELETED alone, never ANNOTATIONS_DELETED for the task's annotations
        studio.api("DELETE", f"/api/tasks/{task}/")
        ledger.reached(
            lambda: any(e["type"] == "item.removed" for e in ledger.provenance(uid)),
            "the deleted task did not reach the ledger",
        )

        events = ledger.provenance(uid)
        by_id = {(e["type"], e["data"].get("annotation_id")): e for e in events}
        first, second = f"{SOURCE}-a{before['id']}-n1", f"{SOURCE}-a{after['id']}-m1"
        assert by_id[("annotation.created", first)]["data"]["guideline_version"] == old["data"]["version"]
        assert by_id[("annotation.created", second)]["data"]["guideline_version"] == new["data"]["version"]
        assert by_id[("annotation.created", second)]["data"]["label_class"] == "mass"
        assert sorted(_annotation_events(events)[2:]) == [
            ("annotation.deleted", first, 2),
            ("annotation.deleted", second, 2),
        ]
        types = [e["type"] for e in events]
        assert types[0] == "item.imported"
        assert types[-1] == "item.removed", "the item leaves after its annotations are withdrawn"


def test_the_harness_drives_label_studio_through_its_own_api(label_studio: LabelStudio) -> None:
    """The fixture's Label Studio answers its API with the token it made: a project and a task round-trip."""
    project = label_studio.create_project("harness check")
    tasks = label_studio.import_tasks(project, [{"image": _image(UID)}])
    assert len(tasks) == 1
    fetched = label_studio.api("GET", f"/api/tasks/{tasks[0]}/")
    assert fetched["data"]["image"] == _image(UID)
    refused = httpx.get(
        f"{label_studio.base}/api/projects/", headers={"authorization": "Token wrong"}, timeout=30
    )
    assert refused.status_code == 401
