"""What every webhook adapter shares: the source a delivery came from, what the ledger already knows, and
what a mapping returns.

A mapping (``label_studio.map_delivery``, ``cvat.map_delivery``) is a function of the delivery and of a
``Lookup`` of the ledger's state. It returns the CloudEvents to record (``Mapped``), with the ids an earlier
delivery of the same payload would have recorded, so that a retry is answered with the original receipts
and never becomes a second event; or it raises ``Unmappable``/``UnsupportedAction``, which the service
answers 202 and records as ``ledger.ingest_rejected``, so the tool does not retry forever.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol

from ledger.domain.errors import FieldError, LedgerError
from ledger.domain.fields import MAX_IDENTIFIER_LENGTH
from ledger.domain.internal import envelope_dict
from ledger.domain.stored import format_time

Kind = Literal["label-studio", "cvat"]
KINDS: tuple[Kind, ...] = ("label-studio", "cvat")
TOOL_ROLE = "tool"
"""The ``actorrole`` of an event the tool itself caused, with no user named (a deletion Label Studio reports
without saying who deleted)."""


class Unmappable(LedgerError):
    """The delivery is of a supported action but cannot become ledger events (an unmapped user, a result
    without the image size its percent coordinates need, an item id the rule cannot find)."""

    code = "webhook_unmappable"
    title = "The webhook payload cannot be mapped to ledger events"


class UnsupportedAction(LedgerError):
    """The delivery is of an action (or a result type) the adapter does not map."""

    code = "webhook_unsupported"
    title = "The webhook action is not supported"


def unmappable(field_path: str, message: str) -> Unmappable:
    """An ``Unmappable`` naming the payload field (``annotation.completed_by``) that could not be mapped."""
    return Unmappable(f"{field_path}: {message}", errors=[FieldError(field_path, message)])


@dataclass(frozen=True, slots=True)
class SourceConfig:
    """How one source's payloads become ledger events (``ledger sources add --config FILE``, TOML).

    Every field has a default except ``users``: a delivery by a user who is not in it is refused on the
    record, so no tool user ever enters the ledger under a name the operator did not choose.
    """

    users: Mapping[str, str] = field(default_factory=dict)
    """The tool's user id, as text (``"17"``), → the ledger's pseudonymous actor id (``ann-0042``)."""
    dataset: str | None = None
    """The ledger dataset of every item; ``None``: ``<source>-project-<tool project id>``."""
    item_field: str | None = None
    """Label Studio: the key of ``task.data`` holding the item's URL; ``None``: ``image`` (no other key is
    ever read)."""
    item_pattern: str = (
        r"(?P<item>[0-9]++(?:\.[0-9]++)++"
        r"|[0-9A-Fa-f]{8}+-[0-9A-Fa-f]{4}+-[0-9A-Fa-f]{4}+-[0-9A-Fa-f]{4}+-[0-9A-Fa-f]{12}+"
        r"|[0-9A-Fa-f]{16,}+)(?:\.[A-Za-z][A-Za-z0-9]{0,7}+)*+"
    )
    """A regular expression matched against the whole of the data URL path's last segment (the file name,
    percent-decoded; for ``/data/local-files/?d=…`` the last segment of ``d``); its ``item`` group is the
    item id. The default accepts only an opaque id as the file name's stem, a DICOM UID
    (``1.2.826.0.1.3680043.10.543.1001.png``), a UUID or a hex digest of at least 16 digits, followed by
    its extensions, and runs in linear time; any other name is refused."""
    guideline_id: str | None = None
    guideline_version: str | None = None
    """The guideline every annotation of the source cites; ``None``: the one the adapter publishes from the
    tool's project (Label Studio: its labelling configuration and instructions)."""
    image_width: int | None = None
    image_height: int | None = None
    """The image size to convert percent coordinates with when a result does not carry its own."""
    model_name: str | None = None
    """The ``model_name`` of model predictions; ``None``: ``<source>-model``."""

    def actor(self, tool_user: object, where: str) -> str:
        """The ledger actor of tool user ``tool_user``; ``Unmappable`` naming ``where`` when it is not mapped.

        The refusal names the user's id only: a user object's e-mail address never enters the ledger, not
        even in a rejection's reason."""
        if tool_user is None:
            raise unmappable(where, "no user id is given, so no ledger actor can be named")
        key = _user_key(tool_user)
        if key is None:  # never echoed: a name or an e-mail address where the id should be stays out
            raise unmappable(where, "is not a tool user id (an integer, or 1 to 20 digits)")
        actor = self.users.get(key)
        if actor is None:
            raise unmappable(
                where,
                f"tool user {key} is not mapped to a ledger actor; add it under [users] in the source's "
                "config and run `ledger sources configure`",
            )
        return actor


_USER_ID = re.compile(r"[0-9]{1,20}")


def _user_key(user: object) -> str | None:
    """The tool user id of ``user`` (a bare id or a user object's ``id``) as text, or ``None`` when it is
    not one: an int (not a bool) of at most 20 digits, or a string of 1 to 20 ASCII digits."""
    if isinstance(user, dict):
        user = user.get("id")
    if isinstance(user, int) and not isinstance(user, bool) and 0 <= user < 10**20:
        return str(user)
    if isinstance(user, str) and _USER_ID.fullmatch(user):
        return user
    return None


@dataclass(frozen=True, slots=True)
class Source:
    """A tool instance allowed to post: its name (``ls-main``), kind, the one tenant it writes to, its config."""

    name: str
    kind: Kind
    tenant: str
    config: SourceConfig
    created_at: datetime
    rotated_at: datetime | None = None

    @property
    def cloudevents_source(self) -> str:
        """The CloudEvents ``source`` of every event mapped from this source's deliveries."""
        return f"urn:ledger:webhook:{self.kind}:{self.name}"


@dataclass(frozen=True, slots=True)
class AnnotationState:
    """One annotation as the ledger holds it now (a ``proj_annotations`` row), deleted ones included."""

    annotation_id: str
    dataset: str
    item: str
    version: int
    status: str
    """``submitted``, ``draft`` (a model's), ``reviewed``…, or ``deleted``."""
    label_class: str
    geometry: Mapping[str, Any]
    origin: str
    updated_at: datetime
    """The event time of the version on record: the tool's own ``updated_at`` for a mapped update."""


@dataclass(frozen=True, slots=True)
class GuidelineState:
    """One published version of a guideline as the ledger holds it now (a ``proj_guidelines`` row)."""

    guideline_id: str
    version: str
    effective_from: datetime
    effective_until: datetime | None
    """``None`` while the version is in effect; set when it was retired or superseded."""


class Lookup(Protocol):
    """What a mapping may ask of the ledger, always within the source's tenant."""

    def place(self, ref: str) -> tuple[str, str] | None:
        """The (dataset, item) a tool object (``task/12``, ``annotation/42``, ``job/7``) was mapped to by
        an earlier delivery of this source (``Mapped.places``), or ``None``."""
        ...

    def annotations_on(self, dataset: str, item: str) -> Sequence[AnnotationState]:
        """Every annotation on the item (any producer's; filter by id prefix), deleted ones included."""
        ...

    def guideline_published(self, guideline_id: str, version: str) -> bool:
        """Whether that guideline version was published in the tenant."""
        ...

    def guideline_versions(self, guideline_id: str) -> Sequence[GuidelineState]:
        """Every published version of the guideline in the tenant, oldest ``effective_from`` first: which
        versions a deleted Label Studio project retires, and which one a new version supersedes."""
        ...

    def refs_under(self, prefix: str) -> Sequence[str]:
        """Every tool object ref this source placed that starts ``prefix`` (``task/12/``: the annotations
        and predictions of task 12, linked to it by ``Mapped.places``), sorted."""
        ...


@dataclass(frozen=True, slots=True)
class Delivery:
    """One webhook request, authenticated: its source, the parsed JSON body, when it arrived."""

    source: Source
    payload: Any
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Mapped:
    """The ledger's reading of a delivery.

    ``events`` are complete CloudEvents dicts (the service validates each one as any producer's event);
    ``candidates`` the ids of every event a delivery of this same payload could have recorded before (a
    superset of ``events``' ids; one of them on record makes the delivery a repeat); ``places`` the tool
    objects this delivery tells the ledger where to find (``("task/12", dataset, item)``), remembered
    before the events are appended; ``summary`` one line for the response; ``unchanged`` why nothing needs
    recording when ``events`` is empty (an update that changed nothing the ledger holds).
    """

    events: list[dict[str, Any]]
    candidates: list[str]
    summary: str
    places: list[tuple[str, str, str]] = field(default_factory=list)
    unchanged: str | None = None


def event_id(source: Source, ref: str, change: str, stamp: str | None = None) -> str:
    """The deterministic event id of ``change`` (``created``, ``updated``…) of tool object ``ref`` of
    ``source``, at the tool's version ``stamp`` (its ``updated_at``) when the object has versions.

    ``<source>:<ref>:<change>[@<stamp>]``; an id that would pass 200 characters keeps its first 150 and a
    digest of the whole."""
    ident = f"{source.name}:{ref}:{change}" + (f"@{stamp}" if stamp else "")
    if len(ident) <= MAX_IDENTIFIER_LENGTH:
        return ident
    digest = hashlib.sha256(ident.encode()).hexdigest()[:40]
    return f"{ident[:150]}~{digest}"


def envelope(
    source: Source,
    type_: str,
    ident: str,
    time: datetime,
    data: dict[str, Any],
    *,
    actor: str,
    actorrole: str,
    subject: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent of ``source``'s tenant, as a producer would post it (not yet validated)."""
    return envelope_dict(
        type_,
        source.tenant,
        data,
        event_id=ident,
        time=time,
        source=source.cloudevents_source,
        subject=subject,
        actor=actor,
        actorrole=actorrole,
    )


def tool_stamp(time: datetime) -> str:
    """A tool's time as event ids (``event_id``'s ``stamp``) and event times carry it: UTC, always to the
    microsecond, ``Z`` (``2026-12-02T03:00:00.123456Z``), one spelling of one time whatever the spelling
    the tool sent. It is the ledger's own stored-time format."""
    return format_time(time)
