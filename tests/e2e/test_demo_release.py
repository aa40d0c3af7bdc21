"""What the demo release shows a regulatory reader, with the ``ledger`` command as a user runs it: one default
``ledger demo`` in a fresh LEDGER_HOME (its own QC policy, as LEDGER_QC_POLICY is unset), then the lineage
report of release r1 in its three formats, the release's evidence bundle, the QC flag and quality route over a
real ``ledger serve``, and every command the demo's closing text suggests for a submission."""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from ledger.synth.project import (
    BELOW_POLICY_ITEM,
    INDEPENDENCE_BREACH,
    QC_POLICY,
    RELEASE,
    SPLITS,
    TEST_SET_ACCESS,
)
from tests.browser import Chromium, ink, is_a4, page_sizes
from tests.e2e.test_cli import LEDGER, serve_process

DATASET, TENANT = "chest-ct-2026", "acme"  # the demo's defaults
SCOPE = f"{DATASET}@{RELEASE}"


@dataclass(frozen=True)
class Demo:
    home: Path
    env: dict[str, str]
    stdout: str
    seconds: float
    work: Path

    def run(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*LEDGER, *args], env=self.env, capture_output=True, text=True, timeout=timeout, check=False
        )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Demo:
    """One default ``ledger demo``; the later commands keep the policy it says it used."""
    work = tmp_path_factory.mktemp("demo-release")
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    env["LEDGER_HOME"] = str(work / "ledger-home")
    started = time.monotonic()
    result = subprocess.run(
        [*LEDGER, "demo"], env=env, capture_output=True, text=True, timeout=600, check=False
    )
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    (policy_line,) = [line for line in result.stdout.splitlines() if "export LEDGER_QC_POLICY=" in line]
    policy = Path(policy_line.split("=", 1)[1])
    assert policy.read_bytes() == QC_POLICY.read_bytes()
    print(f"\n`ledger demo` took {seconds:.1f} s")  # shown with -s: the fixture's cost
    return Demo(work / "ledger-home", {**env, "LEDGER_QC_POLICY": str(policy)}, result.stdout, seconds, work)


@pytest.fixture(scope="module")
def reports(demo: Demo) -> dict[str, Path]:
    out = {}
    for fmt in ("json", "csv", "html"):
        path = demo.work / f"lineage.{fmt}"
        made = demo.run("report", "lineage", "--release", SCOPE, "--format", fmt, "--output", str(path))
        assert made.returncode == 0, made.stderr
        assert f"SHA-256 {hashlib.sha256(path.read_bytes()).hexdigest()} recorded at {TENANT}/" in made.stderr
        out[fmt] = path
    return out


@pytest.fixture(scope="module")
def content(reports: dict[str, Path]) -> dict[str, Any]:
    return json.loads(reports["json"].read_text())


@pytest.fixture(scope="module")
def served(demo: Demo) -> Iterator[str]:
    with serve_process(demo.home, demo.env) as (_, base):
        yield base


def token(demo: Demo, *args: str) -> str:
    issued = demo.run("token", "--role", "auditor", "--tenant", TENANT, *args)
    assert issued.returncode == 0, issued.stderr
    return issued.stdout.strip()


def item_id(n: int) -> str:
    return f"1.2.826.0.1.3680043.10.543.{n}"


def split_of(item: str) -> str:
    return next(split for split, numbers in SPLITS.items() if item in {item_id(n) for n in numbers})


class TestLineageReportOfTheDemoRelease:
    def test_it_validates_against_its_committed_schema(self, content: dict[str, Any]) -> None:
        schema = json.loads(resources.files("ledger.reports").joinpath("lineage.schema.json").read_text())
        jsonschema.validate(content, schema)
        assert (content["dataset"], content["release"], content["tenant"]) == (DATASET, RELEASE, TENANT)

    def test_every_released_item_of_every_split_is_there_with_its_split(
        self, content: dict[str, Any]
    ) -> None:
        releases = content["computed_from"]["release_events"]
        assert sorted(r["split"] for r in releases) == sorted(SPLITS)
        for split, numbers in SPLITS.items():
            items = [i for i in content["items"] if i["split"] == split]
            assert {i["item"] for i in items} == {item_id(n) for n in numbers}
            assert sum(r["items"] for r in releases if r["split"] == split) == len(items)

    def test_every_final_label_is_traced_to_events_named_by_id_and_log_position(
        self, content: dict[str, Any]
    ) -> None:
        for entry in content["items"]:
            trace = entry["trace"]
            assert trace["status"] == "traced", (entry["item"], trace)
            assert trace["annotation_label_class"] == entry["final"]["label_class"]
            events = {e["event_id"]: e for e in entry["events"]}
            assert trace["annotation_event_id"] in events, entry["item"]
            if trace.get("adjudication_event_id") is not None:
                assert trace["adjudication_event_id"] in events
            for e in entry["events"]:
                assert e["event_id"]
                assert e["log"] == TENANT
                assert isinstance(e["position"], int)
            positions = [(e["log"], e["position"]) for e in entry["events"]]
            assert positions == sorted(positions)  # in log order
        for split in SPLITS:
            summary = content["splits"][split]["summary"]
            assert summary["traced"] == len(SPLITS[split])
            assert summary["not_traced"] in (0, {}, [])

    def test_the_planted_independence_breach_is_the_only_one_in_its_split_and_others_have_none(
        self, content: dict[str, Any]
    ) -> None:
        item, reader, seen = INDEPENDENCE_BREACH
        for split in SPLITS:
            breaches = content["splits"][split]["summary"]["independence_breaches"]
            if split == split_of(item):
                (breach,) = breaches
                assert (breach["item"], breach["reader"]) == (item, reader)
                assert breach["seen_annotation_ids"] == [seen]
                assert breach["access_event_id"]
                assert isinstance(breach["position"], int)
            else:
                assert breaches == []

    def test_the_test_set_access_is_in_the_test_splits_isolation_section(
        self, content: dict[str, Any]
    ) -> None:
        actor, item = TEST_SET_ACCESS
        assert split_of(item) == "test"
        isolation = content["splits"]["test"]["summary"]["test_set_isolation"]
        assert [(a["actor"], a["item"]) for a in isolation["accesses"]] == [(actor, item)]
        assert [(a["actor"], a["item"]) for a in isolation["anomalies"]] == [(actor, item)]
        assert all(content["splits"][s]["summary"]["test_set_isolation"] is None for s in ("train", "tune"))

    def test_the_below_policy_item_is_listed_and_nothing_else(self, content: dict[str, Any]) -> None:
        listed = {
            split: [b["item"] for b in content["splits"][split]["summary"]["below_policy"]]
            for split in SPLITS
        }
        assert listed == {split: [BELOW_POLICY_ITEM] if split == split_of(BELOW_POLICY_ITEM) else []
                          for split in SPLITS}  # fmt: skip

    def test_agreement_per_task_with_its_scale_fleiss_geometry_and_test_retest(
        self, content: dict[str, Any]
    ) -> None:
        for split in SPLITS:
            tasks = {a["task"]: a for a in content["splits"][split]["agreement"]}
            assert set(tasks) == {"nodule-detection", "finding-grading"}
            detection, grading = tasks["nodule-detection"], tasks["finding-grading"]
            assert detection["scale"] == "nominal"
            assert {p["weights"] for p in detection["overall"]["pairs"]} == {None}
            assert grading["scale"] == "ordinal"
            assert {p["weights"] for p in grading["overall"]["pairs"]} == {"quadratic"}
            assert any(p["kappa"] is not None for p in grading["overall"]["pairs"])
            for task in (detection, grading):
                fleiss = task["overall"]["fleiss"]
                assert fleiss is not None, (split, task["task"])
                assert fleiss["raters_per_unit"] > 2, (split, task["task"], fleiss)  # the multi-reader items
                assert fleiss["kappa"] is not None
                assert task["overall"]["alpha"]["value"] is not None
                intra = task["intra_reader"]
                assert intra["repeat_pairs"] > 0
                assert intra["pairs"][0]["kappa"] is not None
            drawn = {c: g for c, g in detection["geometry"].items() if g["iou"]["n"] > 0}
            assert drawn, f"no IoU distribution in split {split}"
            for summary in drawn.values():
                assert sum(bin_[2] for bin_ in summary["iou"]["histogram"]) == summary["iou"]["n"]
                assert summary["dice"]["n"] == summary["iou"]["n"]
                assert 0 <= summary["iou"]["min"] <= summary["iou"]["median"] <= summary["iou"]["max"] <= 1

    def test_the_csv_parses_with_one_row_per_item_event(
        self, reports: dict[str, Path], content: dict[str, Any]
    ) -> None:
        rows = list(csv.DictReader(io.StringIO(reports["csv"].read_text(encoding="utf-8"))))
        item_events = [r for r in rows if r["section"] == "item_event"]
        assert len(item_events) == sum(len(i["events"]) for i in content["items"])
        assert {r["trace_status"] for r in item_events} == {"traced"}
        assert {r["item"] for r in item_events} == {i["item"] for i in content["items"]}
        breaches = [r for r in rows if r["section"] == "independence_breach"]
        assert [r["item"] for r in breaches] == [INDEPENDENCE_BREACH[0]]

    def test_the_bundle_of_the_release_verifies_and_holds_the_events_of_the_evidence_digest(
        self, demo: Demo, content: dict[str, Any]
    ) -> None:
        bundle = demo.work / "r1-evidence.json"
        made = demo.run("bundle", "--release", SCOPE, "-o", str(bundle))
        assert made.returncode == 0, made.stderr
        verified = demo.run("verify-bundle", str(bundle))
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert "VERIFIED" in verified.stdout

        held, released = {}, {}
        for entry in json.loads(bundle.read_text())["events"]:
            event = json.loads(base64.b64decode(entry["canonical"]))["event"]
            held[event["id"]] = (entry["log"], entry["position"])
            if event["type"] == "dataset.release_created" and event["data"]["release"] == RELEASE:
                for i in event["data"]["items"]:
                    released[i["item"]] = (event["data"]["split"], i["label_class"], i.get("annotation_id"))
        # the report's items are the release events' item lists, each with its split and final label
        assert released == {
            i["item"]: (i["split"], i["final"]["label_class"], i["final"].get("annotation_id"))
            for i in content["items"]
        }
        ids = sorted(held)
        evidence = content["evidence"]
        assert evidence["command"] == f"ledger bundle --release {SCOPE}"
        assert evidence["events"] == len(ids)
        assert (
            evidence["event_ids_sha256"]
            == hashlib.sha256("".join(f"{i}\n" for i in ids).encode()).hexdigest()
        )
        for entry in content["items"]:
            for e in entry["events"]:
                assert held[e["event_id"]] == (e["log"], e["position"])


class TestTheLineagePageInABrowser:
    def test_it_renders_and_prints_on_a4(self, reports: dict[str, Path], chromium: Chromium) -> None:
        page = reports["html"].read_text(encoding="utf-8")
        assert "<h1>Reference-standard lineage</h1>" in page
        assert page.count("<svg ") >= 3  # funnel, alpha per class, IoU histograms
        png = chromium.screenshot(reports["html"], "lineage-report")
        assert ink(png) > 0.01, f"the screenshot {png} is blank"
        sizes = page_sizes(chromium.pdf(reports["html"]))
        assert sizes, "the printed PDF has no page"
        assert all(is_a4(size) for size in sizes), f"pages not A4 (595 x 842 pt): {sizes}"


class TestQualityControlOfTheDemo:
    def test_exactly_one_expert_review_flag_on_the_below_policy_item(self, demo: Demo, served: str) -> None:
        auth = {"authorization": f"Bearer {token(demo)}"}
        got = httpx.get(
            f"{served}/v1/compliance/flags", params={"kind": "needs_expert_review"}, headers=auth, timeout=30
        )
        assert got.status_code == 200, got.text
        flags = got.json()["flags"]
        assert [(f["kind"], f["item"]) for f in flags] == [("needs_expert_review", BELOW_POLICY_ITEM)]
        assert got.json()["next_cursor"] is None

    def test_the_quality_route_lists_only_that_item_below_policy(self, demo: Demo, served: str) -> None:
        auth = {"authorization": f"Bearer {token(demo)}"}
        got = httpx.get(
            f"{served}/v1/quality/items", params={"below_policy": "true"}, headers=auth, timeout=30
        )
        assert got.status_code == 200, got.text
        page = got.json()
        assert [(i["item"], i["application"]) for i in page["items"]] == [
            (BELOW_POLICY_ITEM, "nodule-detection")
        ]
        assert page["next_cursor"] is None
        (row,) = page["items"]
        assert row["below_policy"] is True
        assert row["min_iou"] < 0.5
        within = httpx.get(
            f"{served}/v1/quality/items",
            params={"below_policy": "false", "limit": 1000},
            headers=auth,
            timeout=30,
        ).json()
        assert within["items"]
        assert (BELOW_POLICY_ITEM, "nodule-detection") not in {
            (i["item"], i["application"]) for i in within["items"]
        }


class TestTheDemosClosingText:
    def test_every_submission_command_it_suggests_works(self, demo: Demo, served: str) -> None:
        """Run the lines after ``MFA=`` as printed (bash, ``ledger`` on PATH), against the served port."""
        lines = demo.stdout.splitlines()
        start = next(i for i, line in enumerate(lines) if line.strip().startswith("TOKEN=$(ledger token"))
        end = next(i for i, line in enumerate(lines) if line.strip().startswith("psql "))
        suggested = [
            line.strip() for line in lines[start:end] if not line.strip().startswith("ledger verify")
        ]
        script = "\n".join(["set -euo pipefail", *suggested]).replace("http://127.0.0.1:8000", served)
        assert "quality/items?below_policy=true" in script
        assert f"ledger report lineage --release {SCOPE}" in script
        assert "ledger export fhir --since" in script
        assert "/v1/export/fhir?" in script
        assert f"/v1/releases/{DATASET}/{RELEASE}/lineage" in script
        script = re.sub(r"curl -s ", "curl -sf ", script)  # an HTTP error fails the line
        cwd = demo.work / "suggested"
        cwd.mkdir()
        env = {**demo.env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{demo.env['PATH']}"}
        ran = subprocess.run(
            [shutil.which("bash") or "/bin/bash", "-c", script],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert ran.returncode == 0, f"{script}\n---\n{ran.stdout[-3000:]}\n{ran.stderr[-3000:]}"

        assert "<h1>Reference-standard lineage</h1>" in (cwd / "lineage.html").read_text(encoding="utf-8")
        assert json.loads((cwd / "lineage.json").read_text())["release"] == RELEASE
        assert (cwd / f"{RELEASE}-evidence.json").is_file()
        assert "VERIFIED" in ran.stdout
        bundle = json.loads((cwd / "fhir.json").read_text())
        assert bundle["resourceType"] == "Bundle"
        assert bundle["entry"]
        ndjson = (cwd / "fhir.ndjson").read_text().splitlines()
        assert ndjson
        assert all(json.loads(line)["resourceType"] for line in ndjson)
