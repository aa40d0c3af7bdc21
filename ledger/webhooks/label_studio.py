"""Label Studio webhook deliveries → ledger events (``map_delivery``), pure: no database, no clock.

What Label Studio sends (``label_studio/webhooks/models.py`` ``WebhookAction.ACTIONS`` and
``serializers_for_hooks.py``, 1.23.2, and the captures in ``tests/fixtures/webhooks/label-studio``):
``{"action": ..., <key>: <serialized objects>, "project": {...}}``, each object with all its model fields
(users, tasks and projects as integer ids), an annotation event also carrying its task under ``task``
(whose ``data`` holds the URL the item is taken from), a deletion only ``[{"id": …}]``.

- An annotation's regions (``label_studio_results``) become one ledger annotation each,
  ``<source>-a<annotation id>-<region key>``, versioned against the ledger's state
  (``label_studio_versions``). Every region of a person's annotation is ``origin: human``, whatever its
  ``origin`` in Label Studio (``prediction``: accepted unchanged): the person submitted it. The prediction
  the annotation was made from (``annotation.prediction``, the only place Label Studio sends a model's
  work) is recorded first, as ``origin: model`` annotations ``<source>-p<prediction id>-<region key>``.
- A skipped task (``was_cancelled``) records nothing: its annotation is a placeholder, not work.
- A task becomes ``item.imported`` (and its ``predictions``, when a payload carries them; one naming no
  ``model_version`` is left out with a note); a deleted task the deletion, by the tool, of every live
  region of its own annotations and predictions (linked to it as ``task/<id>/annotation/<id>`` places when
  they were mapped: another task's on the same image are left alone), then ``item.removed`` stamped with
  the task's import (Label Studio sends no ``ANNOTATIONS_DELETED`` for a deleted task's annotations).
- A task the ledger has placed keeps its place, whatever ``sources configure`` changed since.
- The project's labelling configuration and instructions are the guideline its annotations cite, published
  as ``<source>-project-<id>`` when a version is first seen; a deleted project retires its versions.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from ledger.webhooks.label_studio_payload import (
    Project,
    guideline_of,
    objects,
    optional_id,
    read_item,
    read_project,
    read_time,
    tool_id,
)
from ledger.webhooks.label_studio_results import read_results
from ledger.webhooks.label_studio_versions import (
    Producer,
    Recorder,
    ToolObject,
    delete_all,
    note_skipped,
    record_regions,
)
from ledger.webhooks.model import (
    TOOL_ROLE,
    Delivery,
    Lookup,
    Mapped,
    Source,
    Unmappable,
    UnsupportedAction,
    event_id,
    tool_stamp,
    unmappable,
)

ACTIONS = (
    "ANNOTATION_CREATED",
    "ANNOTATIONS_CREATED",
    "ANNOTATION_UPDATED",
    "ANNOTATIONS_DELETED",
    "TASKS_CREATED",
    "TASKS_DELETED",
    "PROJECT_CREATED",
    "PROJECT_UPDATED",
    "PROJECT_DELETED",
)
"""The actions mapped; any other (``LABEL_LINK_CREATED``…) is refused as unsupported."""
_MAX_MODEL_VERSION = 100


def map_delivery(delivery: Delivery, lookup: Lookup) -> Mapped:
    """The ledger events of one Label Studio webhook delivery; ``Unmappable``/``UnsupportedAction``."""
    payload = delivery.payload
    if not isinstance(payload, dict):
        raise unmappable("$", "the body is not a JSON object")
    action = payload.get("action")
    handler = _HANDLERS.get(action) if isinstance(action, str) else None
    if handler is None or not isinstance(action, str):
        shown = action if isinstance(action, str) and action.isidentifier() and len(action) <= 40 else "?"
        raise UnsupportedAction(f"action: {shown} is not mapped; the ledger maps {', '.join(ACTIONS)}")
    mapping = Recorder(delivery, lookup, action)
    handler(mapping, payload)
    return mapping.result()


# ---- annotations -----------------------------------------------------------------------------------


def _annotations(m: Recorder, payload: dict[str, Any]) -> None:
    """``ANNOTATION_CREATED`` / ``ANNOTATIONS_CREATED`` / ``ANNOTATION_UPDATED``."""
    project = read_project(payload)
    tasks = {tool_id(t.get("id"), f"{at}.id"): t for at, t in objects(payload, "task", required=False)}
    for where, annotation in objects(payload, "annotation"):
        _annotation(m, annotation, where, tasks, project)


def _annotation(
    m: Recorder, annotation: dict[str, Any], where: str, tasks: dict[int, Any], project: Project | None
) -> None:
    annotation_id = tool_id(annotation.get("id"), f"{where}.id")
    task = annotation.get("task")
    task_id = tool_id(task.get("id") if isinstance(task, dict) else task, f"{where}.task")
    task = task if isinstance(task, dict) else tasks.get(task_id)
    dataset, item = _task_place(m, task_id, task, project, annotation_id, where)
    m.places.append((f"annotation/{annotation_id}", dataset, item))
    # The link a task's deletion follows: only the task's own annotations are deleted with it.
    m.places.append((f"task/{task_id}/annotation/{annotation_id}", dataset, item))
    if annotation.get("was_cancelled") is True:
        # A skipped task: the annotation is an empty placeholder, not work on the item.
        m.notes.append(f"annotation {annotation_id} was skipped (was_cancelled): nothing recorded for it")
        return
    # An update is the work of whoever last changed the annotation; a creation, of its author.
    updated = m.action == "ANNOTATION_UPDATED" and annotation.get("updated_by") is not None
    user_field = "updated_by" if updated else "completed_by"
    actor = m.source.config.actor(annotation.get(user_field), f"{where}.{user_field}")
    time = read_time(annotation.get("updated_at") or annotation.get("created_at"), f"{where}.updated_at")
    regions = read_results(annotation.get("result"), f"{where}.result", m.source.config)
    note_skipped(m, regions.skipped)
    guideline = m.guideline(project)
    viewed = annotation.get("prediction")
    if isinstance(viewed, dict) and viewed:
        # The prediction the annotator started from: Label Studio sends a model's work only here.
        _viewed_prediction(m, viewed, f"{where}.prediction", (dataset, item), time, project, task_id)
    earlier = m.lookup.place(f"annotation/{annotation_id}")
    obj = ToolObject(
        f"annotation/{annotation_id}", f"{m.source.name}-a{annotation_id}-", (dataset, item), earlier
    )
    producer = Producer(actor, "annotator", "human")
    record_regions(m, obj, regions.regions, time, guideline, producer, f"{where}.updated_at")


def _viewed_prediction(
    m: Recorder,
    prediction: dict[str, Any],
    where: str,
    place: tuple[str, str],
    time: datetime,
    project: Project | None,
    task_id: int,
) -> None:
    """The prediction an annotation was made from, recorded as the model's work. One that cannot be
    (it names no model version, or an older version of it than the ledger holds) is noted in the summary
    and left out: the annotator's own work is recorded all the same."""
    if _no_model_version(m, prediction, where):
        return
    try:
        _prediction(m, prediction, where, place, time, project, task_id)
    except (Unmappable, UnsupportedAction) as refused:
        m.notes.append(f"{where} is not recorded ({refused.detail})")


def _no_model_version(m: Recorder, prediction: Any, where: str) -> bool:
    """Whether ``prediction`` names no model version, noted in the summary: it is left out, and the rest
    of the delivery is recorded all the same."""
    version = prediction.get("model_version") if isinstance(prediction, dict) else None
    if isinstance(version, str) and version:
        return False
    m.notes.append(f"{where} names no model_version, so the model's work is not recorded")
    return True


def _annotations_deleted(m: Recorder, payload: dict[str, Any]) -> None:
    """``ANNOTATIONS_DELETED``: every live region of each annotation, at the delivery's time (Label Studio
    sends only ids: no time, no user)."""
    for where, annotation in objects(payload, "annotations"):
        annotation_id = tool_id(annotation.get("id"), f"{where}.id")
        place = m.lookup.place(f"annotation/{annotation_id}")
        if place is None:
            raise unmappable(
                f"{where}.id",
                f"annotation {annotation_id} was never mapped by this source: nothing to delete",
            )
        before = m.counts["region{s} deleted"]
        delete_all(m, m.own(*place, f"{m.source.name}-a{annotation_id}-"))
        if m.counts["region{s} deleted"] == before:
            m.notes.append(f"annotation {annotation_id} holds no live region on record")


# ---- tasks -----------------------------------------------------------------------------------------


def _tasks_created(m: Recorder, payload: dict[str, Any]) -> None:
    """``TASKS_CREATED``: ``item.imported`` per task, then its predictions when the payload carries them."""
    project = read_project(payload)
    for where, task in objects(payload, "tasks"):
        task_id = tool_id(task.get("id"), f"{where}.id")
        dataset = m.dataset(project.id if project else optional_id(task.get("project")), f"{where}.project")
        url, item = read_item(
            task.get("data"), f"{where}.data", m.source.config.item_field, m.source.config.item_pattern
        )
        time = read_time(task.get("created_at"), f"{where}.created_at")
        data = {
            "dataset": dataset,
            "item": item,
            "source_ref": _source_ref(m.source, task_id),
            "data_sha256": hashlib.sha256(url.encode()).hexdigest(),
        }
        ident = event_id(m.source, f"task/{task_id}", "imported", tool_stamp(time))
        m.emit("item.imported", ident, time, data, m.source.name, TOOL_ROLE)
        m.places.append((f"task/{task_id}", dataset, item))
        # The import's stamp, kept with the place: a later task given the same id is another removal.
        m.places.append((f"task/{task_id}/imported/{tool_stamp(time)}", dataset, item))
        m.counts["item{s} imported"] += 1
        predictions = task.get("predictions") or []
        if not isinstance(predictions, list):
            raise unmappable(f"{where}.predictions", "is not a list")
        for n, prediction in enumerate(predictions):
            at = f"{where}.predictions[{n}]"
            if not _no_model_version(m, prediction, at):
                _prediction(m, prediction, at, (dataset, item), time, project, task_id)


def _prediction(
    m: Recorder,
    prediction: Any,
    where: str,
    place: tuple[str, str],
    task_time: datetime,
    project: Project | None,
    task_id: int,
) -> None:
    """A model's prediction: ``origin: model`` annotations by the model (``[model] name``)."""
    if not isinstance(prediction, dict):
        raise unmappable(where, "is not an object")
    prediction_id = tool_id(prediction.get("id"), f"{where}.id")
    m.places.append((f"task/{task_id}/prediction/{prediction_id}", *place))
    version = prediction.get("model_version")
    if (
        not isinstance(version, str)
        or not 0 < len(version) <= _MAX_MODEL_VERSION
        or not version.isprintable()
    ):
        raise unmappable(
            f"{where}.model_version",
            "names no model version (1-100 printable characters): a model's annotation must name it",
        )
    stamp = prediction.get("updated_at") or prediction.get("created_at")
    time = read_time(stamp, f"{where}.updated_at") if stamp is not None else task_time
    regions = read_results(prediction.get("result"), f"{where}.result", m.source.config)
    note_skipped(m, regions.skipped)
    model = m.source.config.model_name or f"{m.source.name}-model"
    ref, prefix = f"prediction/{prediction_id}", f"{m.source.name}-p{prediction_id}-"
    obj = ToolObject(ref, prefix, place, answers_repeats=False)
    producer = Producer(model, "model", "model", (model, version))
    record_regions(m, obj, regions.regions, time, m.guideline(project), producer, f"{where}.updated_at")


def _tasks_deleted(m: Recorder, payload: dict[str, Any]) -> None:
    """``TASKS_DELETED``: the deletion of the source's live annotations on each item, then ``item.removed``."""
    for where, task in objects(payload, "tasks"):
        task_id = tool_id(task.get("id"), f"{where}.id")
        place = m.lookup.place(f"task/{task_id}")
        if place is None:
            raise unmappable(
                f"{where}.id",
                f"task {task_id} was never placed by this source: the ledger cannot tell its item",
            )
        # Only the task's own annotations and predictions (linked to it when they were placed), and only
        # item.removed answers a repeat: the task's annotations may have been deleted one by one.
        linked = m.lookup.refs_under(f"task/{task_id}/")
        objects_of_task = [ref.split("/")[2:4] for ref in linked if ref.split("/")[2] != "imported"]
        for kind, tool_object in sorted(set(map(tuple, objects_of_task))):
            letter = "a" if kind == "annotation" else "p"
            delete_all(m, m.own(*place, f"{m.source.name}-{letter}{tool_object}-"), answers_repeats=False)
        dataset, item = place
        data = {"dataset": dataset, "item": item, "source_ref": _source_ref(m.source, task_id)}
        # Stamped with the task's import: a later task given the same id (SQLite reuses them) is another
        # removal. A task the ledger placed only from an annotation's payload has no import stamp: its item.
        imports = [ref.rsplit("/", 1)[-1] for ref in linked if ref.split("/")[2] == "imported"]
        removed = max(imports) if imports else f"{dataset}/{item}"
        ident = event_id(m.source, f"task/{task_id}", "removed", removed)
        m.emit("item.removed", ident, m.delivery.received_at, data, m.source.name, TOOL_ROLE)
        m.counts["item{s} removed"] += 1


def _task_place(
    m: Recorder, task_id: int, task: Any, project: Project | None, annotation_id: int, where: str
) -> tuple[str, str]:
    """Where an annotation's task is: read from the task's data when the payload carries it, else where
    an earlier delivery placed the task (or the annotation)."""
    known = m.lookup.place(f"task/{task_id}")
    if known is not None:
        # A task keeps the place it was given, whatever `sources configure` changed since (as CVAT's do).
        return known
    if isinstance(task, dict) and "data" in task:
        project_id = project.id if project else optional_id(task.get("project"))
        dataset = m.dataset(project_id, "project.id")
        config = m.source.config
        _, item = read_item(task["data"], "task.data", config.item_field, config.item_pattern)
        m.places.append((f"task/{task_id}", dataset, item))
        return dataset, item
    place = m.lookup.place(f"annotation/{annotation_id}")
    if place is None:
        raise unmappable(
            f"{where}.task",
            f"task {task_id} was never placed by this source and the payload carries no task data",
        )
    return place


def _source_ref(source: Source, task_id: int) -> str:
    return f"label-studio:{source.name}/task/{task_id}"


# ---- projects --------------------------------------------------------------------------------------


def _project_written(m: Recorder, payload: dict[str, Any]) -> None:
    """``PROJECT_CREATED`` / ``PROJECT_UPDATED``: the configuration's version, when it is new."""
    project = read_project(payload)
    if project is None or project.label_config is None:
        raise unmappable("project.label_config", "is not in the payload")
    config = m.source.config
    if config.guideline_id is not None and config.guideline_version is not None:
        m.notes.append(
            f"the source cites guideline {config.guideline_id} {config.guideline_version} (its config)"
        )
        return
    m.publish(project)
    if not m.guidelines:
        guideline_id, version, _ = guideline_of(m.source, project)
        # A project event carrying a version on record repeats its publication (a retry, or a change
        # of fields the guideline does not hold): the publication's receipt answers it.
        m.candidates.append(event_id(m.source, f"project/{project.id}", "published", version))
        m.notes.append(f"guideline {guideline_id} version {version} is on record")


def _project_deleted(m: Recorder, payload: dict[str, Any]) -> None:
    """``PROJECT_DELETED``: ``guideline.retired`` of each version of the project still in effect."""
    raw = payload.get("project")
    project_id = tool_id(raw.get("id") if isinstance(raw, dict) else None, "project.id")
    guideline_id = f"{m.source.name}-project-{project_id}"
    for version in m.lookup.guideline_versions(guideline_id):
        ident = event_id(m.source, f"project/{project_id}", "retired", version.version)
        m.candidates.append(ident)
        if version.effective_until is None:
            received = m.delivery.received_at
            data = {
                "guideline_id": guideline_id,
                "version": version.version,
                "effective_until": tool_stamp(received),
                "reason": "Label Studio project deleted",
            }
            m.emit("guideline.retired", ident, received, data, m.source.name, TOOL_ROLE)
            m.counts["guideline version{s} retired"] += 1
    if not m.events:
        m.notes.append(f"no version of guideline {guideline_id} is in effect")


_HANDLERS: dict[str, Callable[[Recorder, dict[str, Any]], None]] = {
    "ANNOTATION_CREATED": _annotations,
    "ANNOTATIONS_CREATED": _annotations,
    "ANNOTATION_UPDATED": _annotations,
    "ANNOTATIONS_DELETED": _annotations_deleted,
    "TASKS_CREATED": _tasks_created,
    "TASKS_DELETED": _tasks_deleted,
    "PROJECT_CREATED": _project_written,
    "PROJECT_UPDATED": _project_written,
    "PROJECT_DELETED": _project_deleted,
}
