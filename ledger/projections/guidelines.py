"""Rules for guideline versions (effective ranges, supersession) and assignments.

A version is published once. The same publication again (same title, document digest, effective time
and supersedes) is a harmless repeat; one with other content is flagged ``guideline_republished`` and
changes nothing, so annotations keep being judged against the version as first published. Assignments
follow the same rule (``assignment_recreated``); a revocation ends an assignment once.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.fields import parse_rfc3339
from ledger.projections.state import Event, State, flag

_PUBLISHED = ("title", "document_sha256", "effective_from", "supersedes")
_ASSIGNED = ("dataset", "items", "assignee", "role")


def guideline_published(st: State, ev: Event) -> None:
    """``guideline.published``: the version takes effect and ends the one it supersedes."""
    d = ev.data
    key = (ev.tenant, d["guideline_id"], d["version"])
    effective_from = parse_rfc3339(d["effective_from"])
    content: dict[str, Any] = {
        "title": d["title"],
        "document_sha256": d["document_sha256"],
        "effective_from": effective_from,
        "supersedes": d.get("supersedes"),
    }
    existing = st.guidelines.get(key)
    if existing is not None:
        if any(existing[k] != content[k] for k in _PUBLISHED):
            changed = ", ".join(k for k in _PUBLISHED if existing[k] != content[k])
            flag(
                st,
                ev,
                "guideline_republished",
                f"guideline {d['guideline_id']} {d['version']} published again"
                f" with other {changed}; not applied",
                [existing["event_id"]],
            )
        return
    st.guidelines[key] = {
        "tenant": ev.tenant,
        "guideline_id": d["guideline_id"],
        "version": d["version"],
        **content,
        "effective_until": None,
        "superseded_by": None,
        "event_id": ev.id,
        **ev.stamp(),
    }
    st.touch("proj_guidelines", key)
    old_key = (ev.tenant, d["guideline_id"], d.get("supersedes") or "")
    old = st.guidelines.get(old_key)
    if old is not None and old["superseded_by"] is None:  # superseded once: the first successor stands
        until = old["effective_until"] if old["effective_until"] is not None else effective_from
        st.guidelines[old_key] = {
            **old,
            "superseded_by": d["version"],
            "effective_until": until,
            **ev.stamp(),
        }
        st.touch("proj_guidelines", old_key)


def guideline_retired(st: State, ev: Event) -> None:
    """``guideline.retired``: the version leaves effect at the earliest of its retirement and supersession."""
    d = ev.data
    key = (ev.tenant, d["guideline_id"], d["version"])
    if key in st.guidelines:
        until = parse_rfc3339(d["effective_until"])
        current = st.guidelines[key]["effective_until"]
        st.guidelines[key] = {
            **st.guidelines[key],
            "effective_until": min(until, current) if current else until,
            **ev.stamp(),
        }
        st.touch("proj_guidelines", key)


def assignment_changed(st: State, ev: Event) -> None:
    """``assignment.created`` / ``assignment.revoked``."""
    d = ev.data
    key = (ev.tenant, d["assignment_id"])
    created = ev.type == "assignment.created"
    existing = st.assignments.get(key)
    content = {
        "dataset": d["dataset"],
        "items": list(d["items"]),
        "assignee": d["assignee"],
        "role": d["role"],
    }
    if existing is not None and created:
        if not existing["active"] or any(existing[k] != content[k] for k in _ASSIGNED):
            state = "revoked" if not existing["active"] else "with other content"
            flag(
                st,
                ev,
                "assignment_recreated",
                f"assignment {d['assignment_id']} created again, but it exists ({state}); not applied",
                [existing["event_id"]],
                dataset=d["dataset"],
            )
        return
    if existing is not None:
        if existing["active"]:  # the revocation ends what was assigned; a second one changes nothing
            st.assignments[key] = {**existing, "active": False, "revoked_at": ev.time, **ev.stamp()}
            st.touch("proj_assignments", key)
        return
    st.assignments[key] = {
        "tenant": ev.tenant,
        "assignment_id": d["assignment_id"],
        **content,
        "active": created,
        "created_at": ev.time,
        "revoked_at": None if created else ev.time,
        "event_id": ev.id,
        **ev.stamp(),
    }
    st.touch("proj_assignments", key)
