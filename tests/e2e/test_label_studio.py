"""A real Label Studio posting its webhooks to a real ``ledger serve``: what an operator sets up, end to end.

Label Studio 1.23.2 is installed from PyPI into a virtual environment of its own (``tests/label_studio.py``);
where it cannot be, the test is skipped saying why.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.test_cli import home, run, serve_process, until
from tests.label_studio import LabelStudio, label_studio

__all__ = ["home", "label_studio"]  # the fixtures

pytestmark = pytest.mark.slow

TENANT = "acme"
SOURCE = "ls-e2e"
DATASET = "chest-ct-e2e"
ACTOR = "ann-e2e-0001"
UID = "1.2.826.0.1.3680043.10.543.1001"
IMAGE = f"http://127.0.0.1/data/{UID}.png"
SIZE = 512


def _box(region: str, x: float, y: float, width: float, height: float) -> dict[str, Any]:
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
            "rectanglelabels": ["nodule"],
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


def _provenance(base: str, token: str) -> list[dict[str, Any]]:
    answer = httpx.get(
        f"{base}/v1/items/{DATASET}/{UID}/provenance",
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    if answer.status_code == 404:  # nothing about the item recorded yet
        return []
    assert answer.status_code == 200, answer.text
    events: list[dict[str, Any]] = answer.json()["events"]
    return events


def _events(base: str, token: str, type_: str) -> list[dict[str, Any]]:
    listed = httpx.get(
        f"{base}/v1/events",
        params={"type": type_, "limit": 1000},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert listed.status_code == 200, listed.text
    return [entry["event"] for entry in listed.json()["events"]]


def _annotation_events(events: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [
        (e["type"], e["data"]["annotation_id"], e["data"]["version"])
        for e in events
        if e["type"].startswith("annotation.")
    ]


def test_label_studio_webhooks_become_the_items_provenance_and_verify_intact(
    home: Path, tmp_path: Path, label_studio: LabelStudio
) -> None:
    studio = label_studio
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
        (task,) = studio.import_tasks(project, [{"image": IMAGE, "width": SIZE, "height": SIZE}])

        def reached(condition: Callable[[], bool], what: str) -> None:
            """Wait for a delivery's effect; failing, say what the ledger refused and what Label Studio logged."""
            try:
                until(condition, what, serve)
            except AssertionError as failure:
                refused = [e["data"] for e in _events(base, auditor, "ledger.ingest_rejected")]
                raise AssertionError(
                    f"{what}\nrefused on the record: {json.dumps(refused, indent=1)}\n"
                    f"Label Studio's log:\n{_log_tail(studio)}"
                ) from failure

        def seen(count: int) -> Callable[[], bool]:
            return lambda: len(_annotation_events(_provenance(base, auditor))) >= count

        reached(
            lambda: any(e["type"] == "item.imported" for e in _provenance(base, auditor)),
            "the imported task did not reach the ledger",
        )

        annotation = studio.create_annotation(task, [_box("r1", 10.0, 20.0, 15.0, 12.5)])
        aid = annotation["id"]
        first, second = f"{SOURCE}-a{aid}-r1", f"{SOURCE}-a{aid}-r2"
        reached(seen(1), "the created annotation did not reach the ledger")

        # the box moved and a second region drawn: one update of one Label Studio annotation
        studio.update_annotation(
            aid, [_box("r1", 30.0, 40.0, 15.0, 12.5), _box("r2", 60.0, 60.0, 10.0, 10.0)]
        )
        reached(seen(3), "the updated annotation did not reach the ledger")

        studio.delete_annotation(aid)
        reached(seen(5), "the deleted annotation did not reach the ledger")

        events = _provenance(base, auditor)
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
        assert created["actor"] == ACTOR
        assert created["actorrole"] == "annotator"
        assert created["data"]["label_class"] == "nodule"
        assert created["data"]["origin"] == "human"
        assert _box_of(created["data"]["geometry"]) == pytest.approx(_pixels(10.0, 20.0, 15.0, 12.5))
        moved = by_step[("annotation.updated", first)]
        assert moved["data"]["previous_version"] == 1
        assert _box_of(moved["data"]["geometry"]) == pytest.approx(_pixels(30.0, 40.0, 15.0, 12.5))
        drawn = by_step[("annotation.created", second)]
        assert _box_of(drawn["data"]["geometry"]) == pytest.approx(_pixels(60.0, 60.0, 10.0, 10.0))
        for region in (first, second):
            # Label Studio does not say who deleted: the tool itself is the actor
            deleted = by_step[("annotation.deleted", region)]
            assert (deleted["actor"], deleted["actorrole"]) == (SOURCE, "tool")
        assert all(e["time"] for e in events)

        # nothing was refused along the way
        assert _events(base, auditor, "ledger.ingest_rejected") == []

    verified = run(home, "verify", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["intact"] is True


def _log_tail(studio: LabelStudio, lines: int = 30) -> str:
    return "\n".join(studio.log.read_text("utf-8", "replace").splitlines()[-lines:])


def test_the_harness_drives_label_studio_through_its_own_api(label_studio: LabelStudio) -> None:
    """The fixture's Label Studio answers its API with the token it made: a project and a task round-trip."""
    project = label_studio.create_project("harness check")
    tasks = label_studio.import_tasks(project, [{"image": IMAGE}])
    assert len(tasks) == 1
    fetched = label_studio.api("GET", f"/api/tasks/{tasks[0]}/")
    assert fetched["data"]["image"] == IMAGE
    refused = httpx.get(
        f"{label_studio.base}/api/projects/", headers={"authorization": "Token wrong"}, timeout=30
    )
    assert refused.status_code == 401
