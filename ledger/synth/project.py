"""A seeded generator of a realistic multi-reader annotation project as CloudEvents.

Annotators with credentials, two tasks (detection under guideline ``chest-ct``, whose first version is
retired mid-project, and ordinal grading under ``chest-ct-grading``), assignments, AI pre-annotations near
the true box, two human readers per item (three or four on every fifth), readers' boxes that agree as
real readers' do, test-retest repeats, annotator (level 2) and physician (level 3) reviews, expert
adjudication of disagreements, sign-ins, data access and a release ``r1`` in three splits.

Its normal traffic keeps to working hours (Mon-Fri 07:30-18:30 UTC), reads only what is assigned, and raises
no access anomaly under the default ``LEDGER_ANOMALY_*`` settings; with ``plants`` (the default) it also
plants exactly one case of every anomaly rule (``PLANTS``) and a few compliance-flag cases. The facts a
lineage report or a QC policy must find are planted whatever ``plants`` says and named here as constants:
``INDEPENDENCE_BREACH``, ``BELOW_POLICY_ITEM``, ``TEST_SET_ACCESS``, ``RETEST_ITEMS``, ``MULTI_READER_ITEMS``,
``SPLITS``; ``QC_POLICY`` is the demo's policy file (``LEDGER_QC_POLICY``) that finds exactly the one item
below policy.
"""

from __future__ import annotations

import hashlib
import itertools
import random
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any

from ledger.domain.canonical import canonicalize
from ledger.synth.geometry import displaced, jittered, true_box

DETECTION, GRADING = "chest-ct", "chest-ct-grading"
"""The two tasks' guideline ids: a finding's class and box, and its grade on an ordinal scale."""
CLASSES = ("nodule", "mass", "consolidation", "effusion", "no_finding")
NO_FINDING = "no_finding"  # a whole-study classification, no box
GRADES = tuple(f"grade-{g}" for g in range(1, 6))
"""The grading task's classes, in their order."""
QC_POLICY = Path(__file__).with_name("qc-policy.toml")
"""The demo's QC policy (``LEDGER_QC_POLICY``): item IoU 0.5 for detection, the grades' order for grading."""
COMMENTS = (
    "Margins unclear at the apex; agree with the finding.",
    "Boundary drawn too generously on the inferior edge.",
    "Second reader missed the smaller lesion.",
    "Consistent with guideline section 4.2.",
)


@dataclass
class Person:
    """A member of the labelling team."""

    actor: str
    role: str  # annotator, physician, expert, engineer
    level: str
    active: bool = True  # false once their credential is revoked (a planted anomaly)


@dataclass(frozen=True)
class _Read:
    """A reader's first read of an item (both tasks), kept for their repeat read ``RETEST_LAG`` items later."""

    n: int
    reader: str
    r_i: int
    label: str
    box: dict[str, Any]
    grade: int


@dataclass
class _State:
    rng: random.Random
    tenant: str
    dataset: str
    clock: datetime
    seed: int = 0
    counter: int = 0
    guideline: str = "1.0"
    team: list[Person] = field(default_factory=list)
    plants: bool = True
    assigned: dict[str, list[str]] = field(default_factory=dict)  # actor → items assigned to them
    truths: dict[str, str] = field(default_factory=dict)  # item → its true class
    finals: dict[str, tuple[str, str]] = field(default_factory=dict)  # item → (final class, annotation id)
    retests: dict[int, list[_Read]] = field(default_factory=dict)  # item number due → first reads to repeat


def generate(
    tenant: str = "acme",
    events: int = 20_000,
    seed: int = 7,
    dataset: str = "chest-ct-2026",
    *,
    plants: bool = True,
) -> Iterator[dict[str, Any]]:
    """Yield exactly ``events`` CloudEvents of one synthetic project, in time order; ``plants`` adds one
    case of every access-anomaly rule to the normal traffic."""
    st = _State(
        random.Random(seed), tenant, dataset, datetime(2026, 1, 5, 8, 0, tzinfo=UTC), seed=seed, plants=plants
    )
    yield from itertools.islice(_project(st), events)


def _project(st: _State) -> Iterator[dict[str, Any]]:
    yield from _setup(st)
    item_no = 0
    while True:
        item_no += 1
        if item_no % 400 == 0 and st.guideline == "1.0":
            yield from _supersede_guideline(st)
        yield from _planted_credential_changes(st, item_no)
        yield from _item(st, item_no)
        yield from _repeat_reads(st, item_no)
        if item_no == RELEASE_AT_ITEM:
            yield from _releases(st)
        if st.plants and item_no in PLANTS.values():
            yield from _planted_anomaly(st, item_no)
        if item_no % 25 == 0:
            yield from _access_noise(st)


def _setup(st: _State) -> Iterator[dict[str, Any]]:
    st.team = [
        Person(f"ann-{i:02d}", "annotator", lvl) for i, lvl in enumerate(["junior"] * 4 + ["senior"] * 4)
    ]
    st.team += [Person(f"rad-{i:02d}", "physician", "senior") for i in range(3)]
    st.team += [Person("expert-01", "expert", "senior"), Person("mldev-01", "engineer", "n/a")]
    yield _guideline_published(st, DETECTION, "1.0", None)
    yield _guideline_published(st, GRADING, "1.0", None)
    for person in st.team:
        yield from _credentials(st, person)
        if person.role != "engineer":
            for guideline in (DETECTION, GRADING):
                yield _event(
                    st,
                    "guideline.acknowledged",
                    person.actor,
                    "annotator",
                    {"guideline_id": guideline, "version": "1.0", "annotator": person.actor},
                )


def _credentials(st: _State, person: Person) -> Iterator[dict[str, Any]]:
    valid_from = st.clock - timedelta(days=st.rng.randint(30, 900))
    if person.role == "annotator":
        yield _credential(st, person, "internal_level", valid_from, None, level=person.level)
    elif person.role in ("physician", "expert"):
        yield _credential(
            st,
            person,
            "license",
            valid_from,
            valid_from + timedelta(days=3 * 365),
            specialty="radiology",
            license_number=f"RAD-{st.rng.randint(100000, 999999)}",
        )
        yield _credential(
            st, person, "board_certification", valid_from, None, specialty="diagnostic radiology"
        )
    yield _event(
        st,
        "training.completed",
        person.actor,
        "annotator",
        {
            "annotator": person.actor,
            "course": "HIPAA privacy and security 2026",
            "completed_at": _ts(st.clock - timedelta(days=3)),
            "valid_until": _ts(st.clock + timedelta(days=365)),
        },
    )


def _credential(
    st: _State, person: Person, kind: str, start: datetime, end: datetime | None, **extra: str
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "credential_id": f"cred-{person.actor}-{kind}",
        "annotator": person.actor,
        "kind": kind,
        "issuer": "Acme Imaging credentialing office" if kind == "internal_level" else "State Medical Board",
        "valid_from": _ts(start),
        **extra,
    }
    if end is not None:
        data["valid_until"] = _ts(end)
    return _event(st, "credential.granted", "credentialing-office", "admin", data)


def _guideline_published(st: _State, guideline: str, version: str, supersedes: str | None) -> dict[str, Any]:
    digest = hashlib.sha256(f"{guideline} guideline {version}".encode()).hexdigest()
    title = "Chest CT findings" if guideline == DETECTION else "Chest CT finding grades"
    data: dict[str, Any] = {
        "guideline_id": guideline,
        "version": version,
        "title": f"{title} v{version}",
        "document_sha256": digest,
        "effective_from": _ts(st.clock),
    }
    if supersedes:
        data["supersedes"] = supersedes
    return _event(st, "guideline.published", "qa-lead", "admin", data)


def _supersede_guideline(st: _State) -> Iterator[dict[str, Any]]:
    yield _guideline_published(st, DETECTION, "1.1", "1.0")
    yield _event(
        st,
        "guideline.retired",
        "qa-lead",
        "admin",
        {
            "guideline_id": DETECTION,
            "version": "1.0",
            "effective_until": _ts(st.clock),
            "reason": "Superseded by 1.1: clarified effusion boundaries.",
        },
    )
    st.guideline = "1.1"


# Planted violations, so a newcomer sees the compliance flags work: an annotator whose credential
# expires mid-project (and is renewed later), a level-3 review by someone with no physician license,
# and a label drawn under a guideline version that was already retired.
EXPIRES_AT_ITEM, RENEWED_AT_ITEM = 120, 260
UNQUALIFIED_PHYSICIAN_AT_ITEM = 333
RETIRED_GUIDELINE_AT_ITEM = 444
_LAPSING = "ann-01"


def _planted_credential_changes(st: _State, n: int) -> Iterator[dict[str, Any]]:
    credential = {"credential_id": f"cred-{_LAPSING}-internal_level", "annotator": _LAPSING}
    if n == EXPIRES_AT_ITEM:
        yield _event(st, "credential.expired", "credentialing-office", "admin",
                     {**credential, "effective_at": _ts(st.clock), "reason": "Annual competency review overdue."})  # fmt: skip
    elif n == RENEWED_AT_ITEM:
        yield _event(st, "credential.renewed", "credentialing-office", "admin",
                     {**credential, "kind": "internal_level", "level": "junior",
                      "issuer": "Acme Imaging credentialing office", "valid_from": _ts(st.clock)})  # fmt: skip


# Planted for the lineage report and the QC policy (whatever ``plants`` says: they raise no access anomaly).
MULTI_READER_ITEMS = range(5, sys.maxsize, 5)
"""Items read by three or four readers (so Fleiss' kappa and alpha have data); every other item by two."""
RETEST_ITEMS = range(3, sys.maxsize, 10)
"""Items one of their readers reads again, both tasks, ``RETEST_LAG`` items later (``ann-<n>-r<i>-retest``)."""
RETEST_LAG = 30
_BREACH_AT_ITEM = 232
_BREACH_READERS = ("ann-04", "ann-06")
INDEPENDENCE_BREACH = (
    f"1.2.826.0.1.3680043.10.543.{_BREACH_AT_ITEM}",
    _BREACH_READERS[1],
    f"ann-{_BREACH_AT_ITEM}-r0",
)
"""(item, reader, annotation seen): the second reader views the first one's annotation before drawing their own."""
_BELOW_POLICY_AT_ITEM = 267
BELOW_POLICY_ITEM = f"1.2.826.0.1.3680043.10.543.{_BELOW_POLICY_AT_ITEM}"
"""Two readers agree on the class (``nodule``) and draw it in different places: IoU < 0.45."""
_GRADE_STEPS = ((0, 1, -1, 2, -2), (60, 17, 17, 3, 3))  # a reader's grade minus the item's, and how often


def _item(st: _State, n: int) -> Iterator[dict[str, Any]]:
    rng = st.rng
    item = _item_id(n)
    annotators = [p for p in st.team if p.role == "annotator" and p.active]
    readers = rng.sample(annotators, rng.choice((3, 4)) if n in MULTI_READER_ITEMS else 2)
    if n == _BREACH_AT_ITEM:
        readers = [p for actor in _BREACH_READERS for p in annotators if p.actor == actor]
    physician = rng.choice([p for p in st.team if p.role == "physician"])
    if n == UNQUALIFIED_PHYSICIAN_AT_ITEM:
        physician = next(p for p in annotators if p.level == "senior")
    for r_i, reader in enumerate(readers):
        yield _assignment(st, f"asg-{n}" + (f"-r{r_i}" if r_i else ""), item, reader.actor, "annotator")
    yield _assignment(st, f"asg-{n}-review", item, physician.actor, "physician_reviewer")
    truth = "nodule" if n == _BELOW_POLICY_AT_ITEM else rng.choice(CLASSES)
    box, grade = true_box(rng), 1 if truth == NO_FINDING else rng.randint(2, 5)
    st.truths[item] = truth
    ai_id = f"ann-{n}-ai"
    ai_label = truth if rng.random() < 0.8 else rng.choice(CLASSES)
    yield _annotation(
        st, item, ai_id, ai_label, _drawn(rng, ai_label, jittered(rng, box, 0.05)), "model-service", "model"
    )
    yield _review(st, item, ai_id, 1, "accept", "model-service")
    labels: list[str] = []
    ids: list[str] = []
    reads: list[_Read] = []
    for r_i, reader in enumerate(readers):
        yield _access(st, "access.data_viewed", reader.actor, item, "annotation")
        if n == _BREACH_AT_ITEM and r_i == 1:
            seen = f"{st.dataset}/{item}/annotations/{ids[0]}"
            yield _access(st, "access.data_viewed", reader.actor, item, "annotation", resource=seen)
        label = truth if n == _BELOW_POLICY_AT_ITEM or rng.random() < 0.85 else rng.choice(CLASSES)
        where = displaced(box) if n == _BELOW_POLICY_AT_ITEM and r_i == 1 else box
        ann_id = f"ann-{n}-r{r_i}"
        labels.append(label)
        ids.append(ann_id)
        planted_old_guideline = n == RETIRED_GUIDELINE_AT_ITEM and r_i == 0
        yield _annotation(st, item, ann_id, label, _drawn(rng, label, jittered(rng, where)), reader.actor, "human",
                          guideline_version="1.0" if planted_old_guideline else None)  # fmt: skip
        if rng.random() < 0.1:
            yield _annotation(st, item, ann_id, label, _drawn(rng, label, jittered(rng, where)), reader.actor,
                              "human", version=2)  # fmt: skip
        read_grade = _graded(rng, grade)
        yield _annotation(st, item, f"{ann_id}-grade", _grade(read_grade), _classified(rng), reader.actor,
                          "human", guideline_id=GRADING)  # fmt: skip
        seniors = [a for a in annotators if a is not reader and a.level == "senior"]
        yield _review(st, item, ann_id, 2, "accept", rng.choice(seniors).actor)
        reads.append(_Read(n, reader.actor, r_i, label, where, read_grade))
    if n in RETEST_ITEMS:
        st.retests[n + RETEST_LAG] = reads
    agreed = len(set(labels)) == 1
    yield _access(st, "access.data_viewed", physician.actor, item, "review", role="physician_reviewer")
    yield _review(
        st, item, ids[0], 3, "accept" if agreed else "modify", physician.actor, comment=rng.random() < 0.2
    )
    # The expert selects a reader's annotation of the true class, or the first reader's when none has it.
    chosen = 0 if agreed else next((i for i, label in enumerate(labels) if label == truth), 0)
    st.finals[item] = (labels[chosen], ids[chosen])
    if not agreed:
        yield _event(
            st,
            "adjudication.completed",
            "expert-01",
            "expert",
            {
                "dataset": st.dataset,
                "item": item,
                "annotation_ids": ids,
                "final_annotation_id": ids[chosen],
                "final_label_class": labels[chosen],
                "level": 4,
                "method": "expert",
                "signature_meaning": "approval",
            },
        )


def _repeat_reads(st: _State, n: int) -> Iterator[dict[str, Any]]:
    """The repeat reads due after item ``n``: the item's first reader still active reads it again, both tasks,
    mostly as before."""
    rng = st.rng
    reads = st.retests.pop(n, [])
    active = {p.actor for p in st.team if p.active}
    first = next((r for r in reads if r.reader in active), None)
    if first is None:
        return
    item = _item_id(first.n)
    label = first.label if rng.random() < 0.9 else rng.choice(CLASSES)
    grade = first.grade if rng.random() < 0.8 else max(1, min(5, first.grade + rng.choice((-1, 1))))
    ann_id = f"ann-{first.n}-r{first.r_i}-retest"
    yield _access(st, "access.data_viewed", first.reader, item, "annotation")
    yield _annotation(
        st, item, ann_id, label, _drawn(rng, label, jittered(rng, first.box)), first.reader, "human"
    )
    yield _annotation(st, item, f"ann-{first.n}-r{first.r_i}-grade-retest", _grade(grade), _classified(rng),
                      first.reader, "human", guideline_id=GRADING)  # fmt: skip


def _graded(rng: random.Random, grade: int) -> int:
    """A reader's grade of a finding whose grade is ``grade``: mostly the same, now and then one off."""
    (step,) = rng.choices(_GRADE_STEPS[0], weights=_GRADE_STEPS[1])
    return max(1, min(5, grade + step))


def _grade(grade: int) -> str:
    return GRADES[grade - 1]


def _drawn(rng: random.Random, label: str, box: dict[str, Any]) -> dict[str, Any]:
    """The geometry of a reader's ``label``: the box, or a whole-study classification for no finding."""
    return _classified(rng) if label == NO_FINDING else box


def _classified(rng: random.Random) -> dict[str, Any]:
    return {"kind": "classification", "confidence": round(rng.uniform(0.5, 0.99), 3)}


def _annotation(
    st: _State,
    item: str,
    ann_id: str,
    label: str,
    geometry: dict[str, Any],
    actor: str,
    origin: str,
    version: int = 1,
    *,
    guideline_id: str = DETECTION,
    guideline_version: str | None = None,
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dataset": st.dataset,
        "item": item,
        "annotation_id": ann_id,
        "version": version,
        "label_class": label,
        "geometry": geometry,
        "origin": origin,
        "guideline_id": guideline_id,
        # The grading guideline has one version; detection's moves from 1.0 to 1.1 mid-project.
        "guideline_version": guideline_version or (st.guideline if guideline_id == DETECTION else "1.0"),
    }
    if version > 1:
        data["previous_version"] = version - 1
    if origin == "model":
        data.update(model_name="chest-ct-detector", model_version="3.2.0")
    kind = "annotation.created" if version == 1 else "annotation.updated"
    return _event(
        st, kind, actor, "model" if origin == "model" else "annotator", data, subject=f"{st.dataset}/{item}"
    )


def _review(
    st: _State, item: str, ann_id: str, level: int, decision: str, actor: str, *, comment: bool = False
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "dataset": st.dataset,
        "item": item,
        "annotation_id": ann_id,
        "annotation_version": 1,
        "level": level,
        "decision": decision,
        "signature_meaning": "review" if level < 3 else "approval",
    }
    if decision == "modify":
        data["resulting_annotation_id"] = ann_id
    if comment:
        data["comment"] = st.rng.choice(COMMENTS)
    role = {1: "service", 2: "annotator", 3: "physician", 4: "expert"}[level]
    return _event(st, "review.submitted", actor, role, data, subject=f"{st.dataset}/{item}")


def _assignment(st: _State, assignment_id: str, item: str, assignee: str, role: str) -> dict[str, Any]:
    st.assigned.setdefault(assignee, []).append(item)
    return _event(
        st,
        "assignment.created",
        "workflow",
        "service",
        {
            "assignment_id": assignment_id,
            "dataset": st.dataset,
            "items": [item],
            "assignee": assignee,
            "role": role,
        },
    )


def _access(
    st: _State,
    kind: str,
    actor: str,
    item: str | None,
    purpose: str,
    *,
    role: str = "annotator",
    at: datetime | None = None,
    **extra: Any,
) -> dict[str, Any]:
    rng = st.rng
    data: dict[str, Any] = {
        "resource": f"{st.dataset}/{item}" if item else st.dataset,
        "dataset": st.dataset,
        "purpose_of_use": purpose,
        "outcome": "success",
        "source_address": f"10.20.{rng.randint(0, 3)}.{rng.randint(2, 250)}",
        "user_agent": "AcmeViewer/5.1 (Windows NT 10.0)",
        **extra,
    }
    if item:
        data["item"] = item
    return _event(st, kind, actor, role, data, subject=f"{st.dataset}/{item}" if item else None, at=at)


def _access_noise(st: _State) -> Iterator[dict[str, Any]]:
    """Sign-ins, now and then one mistyped password, and a model developer's small exports and reads of
    the training split: nothing any anomaly rule raises."""
    rng = st.rng
    person = rng.choice([p for p in st.team if p.active])
    if rng.random() < 0.1:
        yield _event(
            st, "auth.login_failed", person.actor, person.role, _login("password", "bad_credentials")
        )
    yield _event(st, "auth.login_succeeded", person.actor, person.role, _login("sso", None))
    roll = rng.random()
    if roll < 0.2:
        yield _access(st, "access.data_exported", MODEL_DEVELOPER, None, "model_development",
                      role="model_developer", record_count=rng.randint(20, 400))  # fmt: skip
    elif roll < 0.4 and len(st.truths) > RELEASE_AT_ITEM:  # the training split, once released
        train = _item_id(rng.randint(1, SPLITS["train"].stop - 1))
        yield _access(
            st, "access.data_viewed", MODEL_DEVELOPER, train, "model_development", role="model_developer"
        )


def _login(method: str, failure: str | None) -> dict[str, Any]:
    data: dict[str, Any] = {"method": method, "source_address": "10.20.1.17"}
    if failure:
        data["failure_reason"] = failure
    return data


# ---- dataset releases and planted access anomalies -----------------------------------------------------

MODEL_DEVELOPER = "mldev-01"
RELEASE_AT_ITEM = 300
RELEASE = "r1"
SPLITS = {"train": range(1, 211), "tune": range(211, 241), "test": range(241, RELEASE_AT_ITEM + 1)}
"""Release ``r1``'s items by split: one ``dataset.release_created`` each, emitted after item 300."""
TEST_SPLIT_FROM = SPLITS["test"].start
TEST_SET_ACCESS = (MODEL_DEVELOPER, f"1.2.826.0.1.3680043.10.543.{TEST_SPLIT_FROM + 7}")
"""(actor, item): the model developer's one read of a test-split item (the ``test_set_access`` plant)."""

PLANTS = {
    "unassigned_item": 150,
    "bulk_export": 350,
    "off_hours": 420,
    "access_after_revocation": 600,
    "login_failures": 700,
    "break_glass": 800,
    "test_set_access": 900,
    "volume_spike": 1000,
}
"""The item after which each rule's one planted case comes (the volume spike needs a week of history)."""
_REVOKED = "ann-07"
_SPIKING = "ann-05"


def _item_id(n: int) -> str:
    return f"1.2.826.0.1.3680043.10.543.{n}"


def _releases(st: _State) -> Iterator[dict[str, Any]]:
    """Release ``r1``: each split's items with their final class and the annotation it comes from."""
    for split, numbers in SPLITS.items():
        items = [
            {"item": _item_id(n), "label_class": label, "annotation_id": annotation}
            for n in numbers
            for label, annotation in [st.finals[_item_id(n)]]
        ]
        data = {
            "dataset": st.dataset,
            "release": RELEASE,
            "split": split,
            "items": items,
            "items_sha256": hashlib.sha256(canonicalize(items)).hexdigest(),  # RFC 8785
        }
        yield _event(st, "dataset.release_created", "data-manager", "admin", data)


def _planted_anomaly(st: _State, n: int) -> Iterator[dict[str, Any]]:
    """The one case of the rule planted after item ``n``."""
    rule = next(r for r, at in PLANTS.items() if at == n)
    reader = "ann-02"
    if rule == "unassigned_item":  # an item assigned to others, never to this reader
        other = next(i for i in st.truths if i not in st.assigned.get(reader, ()))
        yield _access(st, "access.data_viewed", reader, other, "annotation")
    elif rule == "bulk_export":
        yield _access(st, "access.data_exported", MODEL_DEVELOPER, None, "model_development",
                      role="model_developer", record_count=2400)  # fmt: skip
    elif rule == "off_hours":  # a reader's own item, at 22:40 that evening
        late = datetime.combine(st.clock.date(), time(22, 40), tzinfo=UTC)
        yield _access(st, "access.data_viewed", reader, st.assigned[reader][-1], "annotation", at=late)
    elif rule == "access_after_revocation":  # revoked, and still reading an item once assigned
        revoked = next(p for p in st.team if p.actor == _REVOKED)
        revoked.active = False
        yield _event(st, "credential.revoked", "credentialing-office", "admin",
                     {"credential_id": f"cred-{_REVOKED}-internal_level", "annotator": _REVOKED,
                      "effective_at": _ts(st.clock), "reason": "Left the labelling team."})  # fmt: skip
        yield _access(st, "access.data_viewed", _REVOKED, st.assigned[_REVOKED][-1], "annotation")
    elif rule == "login_failures":
        for _ in range(5):
            yield _event(
                st, "auth.login_failed", "ann-03", "annotator", _login("password", "bad_credentials")
            )
    elif rule == "break_glass":
        yield _access(st, "access.break_glass", "rad-01", st.assigned["rad-01"][-1], "treatment",
                      role="physician_reviewer", reason="Urgent clinical correlation requested.")  # fmt: skip
    elif rule == "test_set_access":
        actor, item = TEST_SET_ACCESS
        yield _access(st, "access.data_viewed", actor, item, "model_development", role="model_developer")
    elif rule == "volume_spike":  # one morning, a reader goes through 150 of their own items
        morning = datetime.combine(st.clock.date() + timedelta(days=1), time(8, 0), tzinfo=UTC)
        while morning.weekday() >= 5:
            morning += timedelta(days=1)
        for i, item in enumerate(st.assigned[_SPIKING][-150:]):
            yield _access(st, "access.data_viewed", _SPIKING, item, "annotation",
                          at=morning + timedelta(seconds=40 * i))  # fmt: skip


WORKDAY = (time(7, 30), time(18, 30))


def _event(
    st: _State,
    type_: str,
    actor: str,
    role: str,
    data: dict[str, Any],
    subject: str | None = None,
    *,
    at: datetime | None = None,
) -> dict[str, Any]:
    """The next event, a few seconds after the last one and within working hours (or at ``at``, later)."""
    st.counter += 1
    st.clock += timedelta(seconds=st.rng.randint(5, 90))
    if at is not None:
        st.clock = max(st.clock, at)
    elif st.clock.weekday() >= 5 or not WORKDAY[0] <= st.clock.time() < WORKDAY[1]:
        st.clock = _next_morning(st.clock) + timedelta(seconds=st.rng.randint(0, 900))
    event: dict[str, Any] = {
        "specversion": "1.0",
        # The seed is part of the id: the same seed replays as duplicates, another seed adds new events.
        "id": f"{st.tenant}-{st.dataset}-s{st.seed}-{st.counter:08d}",
        "source": f"urn:acme:{'annotation-tool' if type_.startswith(('annotation', 'review', 'adjudication')) else 'platform'}",
        "type": type_,
        "time": _ts(st.clock),
        "datacontenttype": "application/json",
        "tenant": st.tenant,
        "actor": actor,
        "actorrole": role,
        "data": data,
    }
    if subject:
        event["subject"] = subject
    return event


def _next_morning(now: datetime) -> datetime:
    """The start of the next working day after ``now`` (of today, when it is still early)."""
    day = now.date() if now.time() < WORKDAY[0] else now.date() + timedelta(days=1)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    return datetime.combine(day, WORKDAY[0], tzinfo=UTC)


def _ts(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")
