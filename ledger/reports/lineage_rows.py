"""The lineage report flattened to CSV rows (one per item event, then the summary sections), and its figures."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from ledger.reports import plots
from ledger.reports.report import Content

_EVENT_FIELDS = (
    "event_id",
    "log",
    "position",
    "time",
    "type",
    "actor",
    "actorrole",
    "annotation_id",
    "version",
    "label_class",
    "geometry",
    "origin",
    "model_name",
    "model_version",
    "guideline_id",
    "guideline_version",
    "guideline_in_effect",
    "task",
    "level",
    "decision",
    "signature_meaning",
    "method",
)
"""An item event's fields copied to its CSV row (``resource`` too, after the standing columns)."""
CSV_COLUMNS = (
    "section",
    "split",
    "item",
    "final_label_class",
    "final_annotation_id",
    "trace_status",
    *_EVENT_FIELDS,
    "role",
    "qualified",
    "credentials",
    "resource",
    "key",
    "value",
)


def csv_rows(c: Content) -> Iterator[Mapping[str, Any]]:
    """Item events first (section ``item_event``), then one row per summary figure, head and evidence."""
    for item in c["items"]:
        base = {
            "split": item["split"],
            "item": item["item"],
            "final_label_class": item["final"]["label_class"],
            "final_annotation_id": item["final"]["annotation_id"],
            "trace_status": item["trace"]["status"],
        }
        for e in item["events"]:
            row: dict[str, Any] = {
                "section": "item_event",
                **base,
                **{k: e.get(k) for k in (*_EVENT_FIELDS, "resource")},
            }
            if e["type"] == "adjudication.completed":
                row["annotation_id"], row["label_class"] = e["final_annotation_id"], e["final_label_class"]
            if (held := e.get("standing")) is not None:
                row.update(
                    role=held["role"],
                    qualified=held["qualified"],
                    credentials=" ".join(
                        f"{c['kind']}:{c['level'] or ''}:{c['credential_id']}"
                        for c in held["valid_credentials"]
                    ),
                )
            yield row
    for split, s in c["splits"].items():
        yield from _summary_rows(split, s)
    for head in c["computed_from"]["logs"]:
        yield {
            "section": "log_head",
            "log": head["log"],
            "position": head["size"],
            "value": head["head_hash"],
        }
    for r in c["computed_from"]["release_events"]:
        yield {
            "section": "release_event",
            "split": r["split"],
            "event_id": r["event_id"],
            "log": r["log"],
            "position": r["position"],
            "value": r["items_sha256"],
        }
    ev = c["evidence"]
    yield {"section": "evidence", "key": "command", "value": ev["command"]}
    yield {"section": "evidence", "key": "events", "value": ev["events"]}
    yield {"section": "evidence", "key": "event_ids_sha256", "value": ev["event_ids_sha256"]}
    for command in ev["bundle_commands"]:
        yield {"section": "evidence", "key": "bundle_command", "value": command}
    if ev["note"] is not None:
        yield {"section": "evidence", "key": "note", "value": ev["note"]}


def _summary_rows(split: str, s: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    summary = s["summary"]
    yield {"section": "items", "split": split, "key": "released", "value": s["items"]}
    yield {"section": "items", "split": split, "key": "traced", "value": summary["traced"]}
    for task in summary["readers"]:
        for a in task["actors"]:
            yield {
                "section": "reader",
                "split": split,
                "task": task["task"],
                "actor": a["actor"],
                "qualified": a["qualified_at_every_read"],
                "key": "first_reads",
                "value": a["first_reads"],
                "credentials": " ".join(
                    f"{c['kind']}:{c['level'] or ''}:{c['credential_id']}" for c in a["credentials"]
                ),
            }
    for r in summary["reviewers"]:
        yield {
            "section": "reviewer",
            "split": split,
            "actor": r["actor"],
            "level": r["level"],
            "key": r["work"],
            "value": r["count"],
            "qualified": r["unqualified"] == 0,
        }
    for g in summary["guideline_versions"]:
        yield {
            "section": "guideline_version",
            "split": split,
            "guideline_id": g["guideline_id"],
            "guideline_version": g["version"],
            "key": "annotations",
            "value": g["annotations"],
        }
    for g in summary["labels_not_in_effect"]:
        yield {
            "section": "label_not_in_effect",
            "split": split,
            "item": g["item"],
            "event_id": g["event_id"],
            "annotation_id": g["annotation_id"],
            "actor": g["actor"],
            "guideline_id": g["guideline_id"],
            "guideline_version": g["guideline_version"],
            "guideline_in_effect": False,
            "value": g["guideline_note"],
        }
    for stage in summary["review_funnel"]:
        yield {"section": "review_funnel", "split": split, "key": stage["stage"], "value": stage["items"]}
    adj = summary["adjudication"]
    yield {"section": "adjudication", "split": split, "key": "items", "value": adj["items"]}
    yield {"section": "adjudication", "split": split, "key": "rate", "value": adj["rate"]}
    for group in ("by_method", "by_level", "outcomes"):
        for key, n in adj[group].items():
            yield {"section": f"adjudication_{group}", "split": split, "key": key, "value": n}
    for b in summary["independence_breaches"]:
        yield {
            "section": "independence_breach",
            "split": split,
            "item": b["item"],
            "actor": b["reader"],
            "event_id": b["access_event_id"],
            "log": b["log"],
            "position": b["position"],
            "time": b["time"],
            "resource": b["resource"],
            "value": " ".join(b["seen_annotation_ids"]),
        }
    if (iso := summary["test_set_isolation"]) is not None:
        for a in iso["accesses"]:
            yield {
                "section": "test_set_access",
                "split": split,
                "item": a["item"],
                "actor": a["actor"],
                "actorrole": a["actorrole"],
                "event_id": a["event_id"],
                "log": a["log"],
                "position": a["position"],
                "time": a["time"],
                "type": a["type"],
                "resource": a["resource"],
                "key": a["when"],
            }
        for a in iso["anomalies"]:
            yield {
                "section": "test_set_anomaly",
                "split": split,
                "item": a["item"],
                "actor": a["actor"],
                "key": a["anomaly_id"],
                "value": a["status"],
            }
    for f in summary["flags"]["flags"]:
        yield {
            "section": "flag",
            "split": split,
            "item": f["item"],
            "actor": f["actor"],
            "log": f["log"],
            "position": f["position"],
            "key": f["kind"],
            "value": f["detail"],
        }
    for q in summary["below_policy"]:
        yield {
            "section": "below_policy",
            "split": split,
            "item": q["item"],
            "task": q["application"],
            "value": "; ".join(q["reasons"]),
        }
    for task in s.get("agreement", []):
        for key in ("alpha", "fleiss"):
            block = (task.get("overall") or {}).get(key)
            if block:
                value = block.get("value", block.get("kappa"))
                yield {
                    "section": "agreement",
                    "split": split,
                    "task": task["task"],
                    "key": key,
                    "value": value,
                }


def figures(c: Content) -> dict[str, str]:
    """Per split: the review-level funnel, agreement per class (alpha, one-vs-rest) and IoU of each class,
    named ``SPLIT:funnel``, ``SPLIT:agreement:TASK``, ``SPLIT:iou:TASK:CLASS``."""
    out = {}
    for split, s in c["splits"].items():
        stages = [(f["stage"], f["items"]) for f in s["summary"]["review_funnel"]]
        out[f"{split}:funnel"] = plots.funnel(f"Review levels reached ({split})", stages)
        for task in s.get("agreement", []):
            alphas = {
                k: round(v["alpha"]["value"], 3)  # as the table prints it
                for k, v in task["per_class"].items()
                if v["alpha"]["value"] is not None
            }
            if alphas:
                # on the whole scale up to 1 (perfect), so a bar's length reads the same in every figure
                scale = (min(0.0, *alphas.values()), 1.0)
                out[f"{split}:agreement:{task['task']}"] = plots.bars(
                    f"Krippendorff's alpha per class, one vs rest ({task['task']}, {split})",
                    alphas,
                    scale=scale,
                )
            for label, geometry in task["geometry"].items():
                if geometry["iou"]["n"]:
                    out[f"{split}:iou:{task['task']}:{label}"] = plots.histogram(
                        f"IoU of reader pairs, {label} ({task['task']}, {split})",
                        geometry["iou"]["histogram"],
                    )
    return out
