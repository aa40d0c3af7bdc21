"""Rules for credentials over time and completed trainings (21 CFR 11.10(i)).

A credential id belongs to one annotator. A grant or renewal with the content of the latest period is a
harmless repeat and changes nothing; a second grant with other content, or a grant or renewal of an id
another annotator holds, is flagged ``credential_reissued`` and not applied: a new period comes from a
renewal, and a record never moves from one person to another.
"""

from __future__ import annotations

from typing import Any

from ledger.domain.fields import parse_rfc3339
from ledger.projections.state import Event, State, flag

_CONTENT = ("kind", "level", "specialty", "issuer", "valid_from", "valid_until")


def credential_issued(st: State, ev: Event) -> None:
    """``credential.granted`` / ``credential.renewed``: a new period of the credential."""
    d = ev.data
    credential, annotator = d["credential_id"], d["annotator"]
    content: dict[str, Any] = {
        "kind": d["kind"],
        "level": d.get("level"),
        "specialty": d.get("specialty"),
        "issuer": d["issuer"],
        "valid_from": parse_rfc3339(d["valid_from"]),
        "valid_until": parse_rfc3339(d["valid_until"]) if d.get("valid_until") else None,
    }
    holder = st.holders.get((ev.tenant, credential), annotator)
    if holder != annotator:
        held = [
            r["event_id"] for r in st.periods.get((ev.tenant, holder), []) if r["credential_id"] == credential
        ]
        flag(
            st,
            ev,
            "credential_reissued",
            f"{ev.type} of credential {credential} for {annotator}, but it is held by {holder}; not applied",
            held[:1],
        )
        return
    rows = st.periods.setdefault((ev.tenant, annotator), [])
    periods = [r for r in rows if r["credential_id"] == credential]
    if periods and all(periods[-1][k] == content[k] for k in _CONTENT):
        return  # the latest period repeated: nothing new
    if periods and ev.type == "credential.granted":
        flag(
            st,
            ev,
            "credential_reissued",
            f"credential.granted of credential {credential}, granted before with"
            f" other content (period {periods[-1]['period']}); not applied: a renewal starts a new period",
            [periods[-1]["event_id"]],
        )
        return
    period = 1 + max((r["period"] for r in periods), default=0)
    rows.append(
        {
            "tenant": ev.tenant,
            "credential_id": credential,
            "period": period,
            "annotator": annotator,
            **content,
            "ended_at": None,
            "ended_by": None,
            "event_id": ev.id,
            **ev.stamp(),
        }
    )
    st.holders[(ev.tenant, credential)] = annotator
    st.touch("proj_credentials", (ev.tenant, credential, str(period)))


def credential_ended(st: State, ev: Event) -> None:
    """``credential.revoked`` / ``credential.expired``: the open period closes at ``effective_at``."""
    d = ev.data
    rows = [
        r for r in st.periods.get((ev.tenant, d["annotator"]), []) if r["credential_id"] == d["credential_id"]
    ]
    open_rows = [r for r in rows if r["ended_at"] is None]
    if not open_rows:
        return  # ending a credential never granted, or twice: nothing to close; the event stays on the record
    latest = open_rows[-1]
    latest.update(ended_at=parse_rfc3339(d["effective_at"]), ended_by=ev.type.split(".")[1], **ev.stamp())
    st.touch("proj_credentials", (ev.tenant, d["credential_id"], str(latest["period"])))


def training_completed(st: State, ev: Event) -> None:
    """``training.completed``: one row per event."""
    d = ev.data
    st.trainings.append(
        {
            "tenant": ev.tenant,
            "event_id": ev.id,
            "annotator": d["annotator"],
            "course": d["course_title"],
            "completed_at": parse_rfc3339(d["completed_at"]),
            "valid_until": parse_rfc3339(d["valid_until"]) if d.get("valid_until") else None,
            "guideline_id": d.get("guideline_id"),
            "guideline_version": d.get("guideline_version"),
            **ev.stamp(),
        }
    )
