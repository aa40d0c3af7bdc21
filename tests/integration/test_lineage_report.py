"""The lineage report of a small release whose every event is known (``tests/lineage_story.py``), over a real
PostgreSQL: each final label traced to its events, the planted independence breach and test-set access, the
compliance flags, sealed values kept sealed, the JSON valid against its committed schema, and the bundle of
the release holding every event the report rests on."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
import subprocess
import sys
from importlib import resources
from typing import Any

import jsonschema
import pytest

from ledger.evidence import select_bundle
from ledger.quality.policy import Application, QcPolicy
from ledger.reports import report as report_shape
from ledger.reports.lineage import build
from ledger.reports.lineage_data import evidence_digest
from ledger.reports.service import render_lineage
from ledger.runtime import Ledger, wire
from ledger.storage.bundles import BundleEvents, release_scope
from tests.integration.test_projection_robustness import accepted_by_old_code
from tests.lineage_story import RELEASE, SECRET, SOURCE_ADDRESS, LineageStory, lineage_story, release_items
from tests.stories import DATASET, at

SCOPE = release_scope(f"{DATASET}@{RELEASE}")


@pytest.fixture
def told(ledger: Ledger, tenant: str) -> LineageStory:
    story = lineage_story(tenant)
    ledger.appender.append(story.story.events)
    return story


@pytest.fixture
def content(ledger: Ledger, told: LineageStory, tenant: str) -> dict[str, Any]:
    report = build(ledger.db, SCOPE, tenant=tenant)
    return json.loads(report_shape.render(report, "json"))


def item(content: dict[str, Any], name: str) -> dict[str, Any]:
    return next(i for i in content["items"] if i["item"] == name)


def event(entry: dict[str, Any], event_id: str) -> dict[str, Any]:
    return next(e for e in entry["events"] if e["event_id"] == event_id)


def schema() -> dict[str, Any]:
    return json.loads(resources.files("ledger.reports").joinpath("lineage.schema.json").read_text())


class TestFinalLabels:
    def test_each_item_carries_its_split_and_released_label(self, content, told) -> None:
        assert {(i["item"], i["split"], i["final"]["label_class"]) for i in content["items"]} == {
            ("i1", "train", "nodule"), ("i2", "train", "mass"), ("i3", "test", "nodule")}  # fmt: skip
        assert item(content, "i1")["final"]["release_event_id"] == told.ids["release_train"]
        assert item(content, "i3")["final"]["release_event_id"] == told.ids["release_test"]

    def test_every_final_label_is_traced_to_the_events_that_reached_it(self, content, told) -> None:
        ids = told.ids
        assert item(content, "i1")["trace"] == {"status": "traced", "annotation_id": "a1",
            "annotation_event_id": ids["a1"], "annotation_label_class": "nodule", "adjudication_event_id": ids["adj_i1"]}  # fmt: skip
        # Released without an annotation id: found through the adjudication that chose the label.
        assert item(content, "i2")["trace"] == {"status": "traced", "annotation_id": "a2",
            "annotation_event_id": ids["a2"], "annotation_label_class": "mass", "adjudication_event_id": ids["adj_i2"]}  # fmt: skip
        assert item(content, "i3")["trace"]["annotation_event_id"] == ids["a3"]
        assert content["splits"]["train"]["summary"]["traced"] == 2

    def test_the_lineage_lists_every_event_up_to_the_release_in_log_order(self, content, told) -> None:
        ids = told.ids
        i2 = item(content, "i2")
        assert [e["event_id"] for e in i2["events"]] == [
            ids[k] for k in ("m2", "a2", "breach", "b2", "adj_i2")
        ]
        positions = [e["position"] for e in i2["events"]]
        assert positions == sorted(positions)
        # The review after the release is counted, not listed.
        assert ids["late"] not in {e["event_id"] for e in item(content, "i1")["events"]}
        assert item(content, "i1")["events_after_release"] == 1

    def test_ai_pre_annotation_names_its_model(self, content, told) -> None:
        pre = event(item(content, "i2"), told.ids["m2"])
        assert (pre["origin"], pre["model_name"], pre["model_version"]) == ("model", "detector", "3.2.0")
        assert "standing" not in pre  # a model is not a credentialed person

    def test_reviews_and_adjudications_carry_level_signature_and_standing(self, content, told) -> None:
        i1 = item(content, "i1")
        review = event(i1, told.ids["review_a1"])
        assert (review["level"], review["decision"], review["signature_meaning"]) == (3, "accept", "approval")
        assert review["standing"]["role"] == "physician"
        assert review["standing"]["qualified"] is True
        adj = event(i1, told.ids["adj_i1"])
        assert (adj["method"], adj["level"], adj["final_annotation_id"]) == ("expert", 4, "a1")
        assert adj["standing"]["qualified"] is True


class TestStandingAndGuidelines:
    def test_each_annotation_shows_the_readers_standing_at_that_moment(self, content, told) -> None:
        a3 = event(item(content, "i3"), told.ids["a3"])
        assert a3["standing"]["qualified"] is True
        assert a3["standing"]["valid_credentials"] == [
            {"credential_id": "cred-ann-a-license", "kind": "license", "level": None}
        ]
        c3 = event(item(content, "i3"), told.ids["c3"])
        assert c3["standing"] == {
            "role": "annotator",
            "qualified": False,
            "valid_credentials": [],
            "qualified_for": [],
        }

    def test_a_label_under_a_version_not_in_effect_is_named(self, content, told) -> None:
        summary = content["splits"]["test"]["summary"]
        assert [g["event_id"] for g in summary["labels_not_in_effect"]] == [told.ids["c3"]]
        versions = {(g["guideline_id"], g["version"]): g for g in summary["guideline_versions"]}
        assert versions[("chest-ct", "9.9")]["published"] is False
        assert versions[("chest-ct", "1.0")]["annotations"] == 2  # a3 and its repeat

    def test_readers_per_task_with_their_qualifications_and_repeat_reads(self, content) -> None:
        (task,) = content["splits"]["test"]["summary"]["readers"]
        assert task["task"] == "chest-ct"
        assert task["readers"] == 2
        by_actor = {a["actor"]: a for a in task["actors"]}
        assert by_actor["ann-a"]["first_reads"] == 1
        assert by_actor["ann-a"]["repeat_reads"] == 1
        assert by_actor["ann-c"]["qualified_at_every_read"] is False

    def test_every_compliance_flag_on_the_items_is_listed(self, content, told) -> None:
        flags = content["splits"]["test"]["summary"]["flags"]
        assert flags["by_kind"] == {"guideline_not_in_effect": 1, "unqualified_annotator": 1}
        assert content["splits"]["train"]["summary"]["flags"]["by_kind"] == {}


class TestReviewAndAdjudication:
    def test_the_review_funnel_and_adjudication_rate_per_split(self, content) -> None:
        train = content["splits"]["train"]["summary"]
        funnel = {f["stage"]: f["items"] for f in train["review_funnel"]}
        assert funnel == {"released": 2, "annotated": 2, "level 1 or above": 2, "level 2 or above": 2,
                          "level 3 or above": 2, "level 4 or above": 2, "adjudicated": 2}  # fmt: skip
        assert train["adjudication"]["rate"] == 1.0
        assert train["adjudication"]["by_method"] == {"expert": 2}
        # i1: both readers said nodule; i2: one of two readers said mass.
        assert train["adjudication"]["outcomes"] == {"readers_minority": 1, "readers_unanimous": 1}
        assert content["splits"]["test"]["summary"]["adjudication"]["rate"] == 0.0


class TestIndependenceAndTestSet:
    def test_the_planted_independence_breach_is_found(self, content, told) -> None:
        (breach,) = content["splits"]["train"]["summary"]["independence_breaches"]
        assert breach["item"] == "i2"
        assert breach["reader"] == "ann-b"
        assert breach["access_event_id"] == told.ids["breach"]
        assert breach["seen_annotation_ids"] == ["a2"]
        assert breach["seen_readers"] == ["ann-a"]
        assert breach["own_first_annotation_event_id"] == told.ids["b2"]
        assert content["splits"]["test"]["summary"]["independence_breaches"] == []

    def test_the_model_developers_access_to_the_test_split_is_listed_with_its_anomaly(
        self, content, told
    ) -> None:
        iso = content["splits"]["test"]["summary"]["test_set_isolation"]
        (access,) = iso["accesses"]
        assert (access["event_id"], access["actor"], access["when"]) == (
            told.ids["dev_view"],
            "dev-1",
            "after_release",
        )
        (anomaly,) = iso["anomalies"]
        assert anomaly["actor"] == "dev-1"
        assert told.ids["dev_view"] in anomaly["evidence"]
        assert content["splits"]["train"]["summary"]["test_set_isolation"] is None


class TestEvidence:
    def test_the_release_bundle_holds_every_event_the_report_rests_on(
        self, ledger, content, told, tenant
    ) -> None:
        selection = select_bundle(ledger, SCOPE, tenant=tenant)
        held = BundleEvents(ledger.db).read_canonical
        ids = [json.loads(raw)["event"]["id"] for log, positions in selection.positions.items()
               for _, raw in held(log, positions)]  # fmt: skip
        evidence = content["evidence"]
        assert evidence["command"] == f"ledger bundle --release {DATASET}@{RELEASE}"
        assert evidence["events"] == len(ids) == selection.count
        assert evidence["event_ids_sha256"] == evidence_digest(ids)
        cited = {e["event_id"] for i in content["items"] for e in i["events"]}
        cited |= {told.ids[k] for k in ("cred_a", "cred_b", "cred_phys", "cred_exp", "gl1", "dev_view")}
        assert cited <= set(ids)
        assert told.ids["late"] not in ids

    def test_the_heads_are_the_snapshots(self, ledger, content, tenant) -> None:
        (head,) = content["computed_from"]["logs"]
        with ledger.db.connect() as conn:
            row = conn.execute(
                "SELECT size, head_hash FROM ledger_log_heads WHERE log = %s", (head["log"],)
            ).fetchone()
        assert (head["size"], head["head_hash"]) == (row[0], bytes(row[1]).hex())


class TestFormats:
    def test_the_json_validates_against_the_committed_schema(self, content) -> None:
        jsonschema.Draft202012Validator(schema(), format_checker=jsonschema.FormatChecker()).validate(content)

    def test_the_schema_refuses_a_report_with_a_comment_in_clear(self, content) -> None:
        content["items"][0]["events"][0]["comment"] = SECRET
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.Draft202012Validator(schema()).validate(content)

    def test_sealed_values_stay_sealed_in_every_format(self, ledger, told, tenant) -> None:
        for fmt in ("json", "csv", "html"):
            body = render_lineage(ledger, SCOPE, fmt, tenant=tenant, requested_by="test").body.decode()
            assert SECRET not in body, fmt
            assert SOURCE_ADDRESS not in body, fmt

    def test_the_csv_has_one_row_per_item_event(self, ledger, told, content, tenant) -> None:
        body = render_lineage(ledger, SCOPE, "csv", tenant=tenant, requested_by="test").body.decode()
        rows = list(csv.DictReader(io.StringIO(body)))
        events = [r for r in rows if r["section"] == "item_event"]
        assert len(events) == sum(len(i["events"]) for i in content["items"])
        assert {r["section"] for r in rows} >= {
            "independence_breach",
            "test_set_access",
            "flag",
            "log_head",
            "evidence",
        }

    def test_the_html_names_the_breach_and_the_test_set_access(self, ledger, told, tenant) -> None:
        body = render_lineage(ledger, SCOPE, "html", tenant=tenant, requested_by="test").body.decode()
        assert told.ids["breach"] in body
        assert told.ids["dev_view"] in body
        assert "@page { size: A4" in body
        assert body.count("<svg") >= 2  # the review funnel of each split


class TestAgreement:
    def test_first_reads_per_task_with_chance_corrected_figures(self, content) -> None:
        (task,) = content["splits"]["train"]["agreement"]
        assert task["task"] == "chest-ct"
        assert task["scale"] == "nominal"
        # i1: nodule/nodule; i2: mass/nodule (the model's pre-annotation is no reader's).
        assert (task["overall"]["units"], task["overall"]["raters"]) == (2, 2)
        assert task["overall"]["percent_agreement"] == 0.5
        assert set(task["per_class"]) == {"mass", "nodule"}
        assert task["geometry"]["nodule"]["pairs"] == 1
        assert task["geometry"]["mass"]["empty_one"] == 1

    def test_a_repeat_read_gives_intra_reader_agreement(self, content) -> None:
        (task,) = content["splits"]["test"]["agreement"]
        assert task["intra_reader"]["repeat_pairs"] == 1
        assert task["intra_reader"]["percent_agreement"] == 0.0  # nodule, then mass


class TestServed:
    def test_the_route_serves_the_report_and_records_its_digest(
        self, shared_ledger, http, token, tenant
    ) -> None:
        told = lineage_story(tenant)
        shared_ledger.appender.append(told.story.events)
        url = f"/v1/releases/{DATASET}/{RELEASE}/lineage"
        headers = {"authorization": f"Bearer {token('regulatory', tenant=tenant, mfa=True)}"}
        bodies = {}
        for fmt in ("json", "csv", "html"):
            response = http.get(url, params={"format": fmt}, headers=headers)
            assert response.status_code == 200, response.text
            assert response.headers["x-report-sha256"] == hashlib.sha256(response.content).hexdigest()
            bodies[fmt] = response.content
        doc = json.loads(bodies["json"])
        assert (
            doc["splits"]["train"]["summary"]["independence_breaches"][0]["access_event_id"]
            == told.ids["breach"]
        )
        with shared_ledger.db.connect() as conn:
            recorded = [json.loads(bytes(r[0]))["event"]["data"] for r in conn.execute(
                "SELECT canonical FROM ledger_events WHERE tenant = %s AND type = 'ledger.report_generated'", (tenant,))]  # fmt: skip
        assert [(r["report"], r["sha256"]) for r in recorded] == [
            ("lineage", hashlib.sha256(bodies[f]).hexdigest()) for f in ("json", "csv", "html")]  # fmt: skip
        assert recorded[0]["parameters"]["release"] == f"{DATASET}@{RELEASE}"

    def test_an_unknown_release_is_404_and_an_export_without_mfa_403(
        self, shared_ledger, http, token, tenant
    ) -> None:
        shared_ledger.appender.append(lineage_story(tenant).story.events)
        mfa = {"authorization": f"Bearer {token('auditor', tenant=tenant, mfa=True)}"}
        assert http.get(f"/v1/releases/{DATASET}/r9/lineage", headers=mfa).status_code == 404
        plain = {"authorization": f"Bearer {token('auditor', tenant=tenant)}"}
        assert http.get(f"/v1/releases/{DATASET}/{RELEASE}/lineage", headers=plain).status_code == 403

    def test_the_route_takes_dataset_and_release_apart_even_with_an_at_sign(
        self, shared_ledger, http, token, tenant
    ) -> None:
        """``chest@ct``/``r1`` is dataset ``chest@ct``, not dataset ``chest`` of release ``ct@r1``."""
        mfa = {"authorization": f"Bearer {token('auditor', tenant=tenant, mfa=True)}"}
        response = http.get("/v1/releases/chest@ct/r1/lineage", headers=mfa)
        assert response.status_code == 404
        assert "release 'r1' of dataset 'chest@ct'" in response.text
        blank = http.get("/v1/releases/chest/%20/lineage", headers=mfa)
        assert blank.status_code == 400
        assert [e["field"] for e in blank.json()["errors"]] == ["release"]

    def test_the_command_line_writes_the_report_and_records_it(self, ledger, told, tenant, tmp_path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
        env.update(
            LEDGER_HOME=str(ledger.settings.home), LEDGER_DATABASE_URL=str(ledger.settings.database_url)
        )
        out = tmp_path / "lineage.json"
        result = subprocess.run(
            [sys.executable, "-m", "ledger.cli.main", "report", "lineage", "--release", f"{DATASET}@{RELEASE}",
             "--format", "json", "--output", str(out)],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert (
            f"SHA-256 {hashlib.sha256(out.read_bytes()).hexdigest()} recorded at {tenant}/" in result.stderr
        )
        assert json.loads(out.read_text())["tenant"] == tenant
        bad = subprocess.run(
            [sys.executable, "-m", "ledger.cli.main", "report", "lineage", "--release", "no-at-sign"],
            env=env, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert bad.returncode != 0
        assert "--release" in bad.stderr


class TestQualityPolicy:
    def test_an_item_below_its_qc_policy_is_listed_and_tasks_follow_the_policy(self, ledger, tenant) -> None:
        policy = QcPolicy(
            applications={"nodule-detection": Application(guideline="chest-ct", item_agreement_min=1.0)}
        )
        wired = wire(dataclasses.replace(ledger.settings, qc_policy=policy), ledger.db)
        told = lineage_story(tenant)
        wired.appender.append(told.story.events)

        doc = json.loads(render_lineage(wired, SCOPE, "json", tenant=tenant, requested_by="test").body)

        (below,) = doc["splits"]["train"]["summary"]["below_policy"]
        assert below["item"] == "i2"  # ann-a said mass, ann-b nodule
        assert below["application"] == "nodule-detection"
        assert doc["splits"]["test"]["summary"]["below_policy"] == []
        assert [t["task"] for t in doc["splits"]["train"]["agreement"]] == ["nodule-detection"]
        assert event(item(doc, "i1"), told.ids["a1"])["task"] == "nodule-detection"

    def test_below_policy_is_as_of_the_release_not_as_of_now(self, ledger, tenant) -> None:
        """A reader disagreeing on i1 after the release puts it below policy in the projection, not in the
        report: the report's figure rests only on the release's evidence."""
        policy = QcPolicy(
            applications={"nodule-detection": Application(guideline="chest-ct", item_agreement_min=1.0)}
        )
        wired = wire(dataclasses.replace(ledger.settings, qc_policy=policy), ledger.db)
        told = lineage_story(tenant)
        late = told.story.annotate("ann-c", "i1", "c1-late", at(80), label="mass")
        wired.appender.append(told.story.events)
        with ledger.db.connect() as conn:
            now = conn.execute(
                "SELECT item FROM proj_item_quality WHERE tenant = %s AND below_policy ORDER BY item",
                (tenant,),
            ).fetchall()
        assert [r[0] for r in now] == ["i1", "i2"]

        doc = json.loads(render_lineage(wired, SCOPE, "json", tenant=tenant, requested_by="test").body)

        (below,) = doc["splits"]["train"]["summary"]["below_policy"]
        assert below["item"] == "i2"
        assert late not in below["evidence"]
        assert set(below["evidence"]) == {told.ids["a2"], told.ids["b2"]}
        assert below["policy_sha256"] == policy.sha256

        body = render_lineage(wired, SCOPE, "csv", tenant=tenant, requested_by="test").body
        (row,) = [r for r in csv.DictReader(io.StringIO(body.decode())) if r["section"] == "below_policy"]
        assert (row["item"], row["task"]) == ("i2", "nodule-detection")
        assert row["value"] == "; ".join(below["reasons"]) != ""


class TestSplitConflicts:
    def test_an_item_released_in_two_splits_is_listed_and_held_as_test(self, ledger, tenant) -> None:
        told = lineage_story(tenant)
        again = [{"item": "i1", "label_class": "nodule", "annotation_id": "a1"}]
        told.story.add("dataset.release_created", at(51), "data-lead", {
            "dataset": DATASET, "release": RELEASE, "split": "test", "items": again,
            "items_sha256": release_items(again)}, role="admin")  # fmt: skip
        view = told.story.add("access.data_viewed", at(61), "dev-1", {
            "resource": f"{DATASET}/i1", "dataset": DATASET, "item": "i1", "purpose_of_use": "model_development",
            "outcome": "success"}, role="model_developer")  # fmt: skip
        ledger.appender.append(told.story.events)

        doc = json.loads(report_shape.render(build(ledger.db, SCOPE, tenant=tenant), "json"))

        jsonschema.validate(doc, schema())
        assert doc["split_conflicts"] == [{"item": "i1", "splits": ["test", "train"], "held_in": "test"}]
        assert item(doc, "i1")["split"] == "test"
        accesses = doc["splits"]["test"]["summary"]["test_set_isolation"]["accesses"]
        assert view in {a["event_id"] for a in accesses}


class TestTimesOlderCodeAccepted:
    def test_an_unholdable_time_shows_the_recorded_time_in_every_format(self, ledger, tenant) -> None:
        """``0001-01-01T00:00:00+01:00`` parses, but is year 0 in UTC: the report falls back to recorded_at."""
        told = lineage_story(tenant)
        view_id = told.story.view("ann-a", "i1", at(1))
        bad = accepted_by_old_code(told.story.events.pop(), time="0001-01-01T00:00:00+01:00")
        told.story.events.insert(5, bad)
        ledger.appender.append(told.story.events)

        report = build(ledger.db, SCOPE, tenant=tenant)
        doc = json.loads(report_shape.render(report, "json"))
        shown = event(item(doc, "i1"), view_id)
        assert shown["time"] == shown["recorded_at"]
        for fmt in ("csv", "html"):
            assert view_id in report_shape.render(report, fmt).decode()
