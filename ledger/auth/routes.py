"""Who may call which route: the one table (DESIGN §7).

Every ``/v1`` route of the OpenAPI document has exactly one row here, keyed by method and path template as
the document spells it; ``tests/integration/test_route_roles.py`` holds the two together. A row names the
roles that may call the route, whether the call needs a token issued after multi-factor sign-in whatever
the role (exports, erasures), and how the ledger records a successful call on the caller's log: as
``access.data_viewed``, as ``access.data_exported``, or not at all for a write (which is itself an event).
A row ``by_source_secret`` takes no JWT: the handler authenticates the webhook's source by its own secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledger.auth.tokens import ANY_ROLE, CHECKPOINT_READERS, READERS, WITNESSES, WRITERS

AccessType = Literal["access.data_viewed", "access.data_exported"]
Recorded = AccessType | None
"""The access event a successful call leaves, or none (a write is itself an event)."""

VIEWED: AccessType = "access.data_viewed"
EXPORTED: AccessType = "access.data_exported"
SECURITY = frozenset({"security", "admin"})
ADMINS = frozenset({"admin"})
ANOMALY_READERS = SECURITY | {"auditor"}
"""Access anomalies and the access-review report: the security team and auditors (an admin with MFA)."""
REVIEWERS = frozenset({"security"})
"""A review of an anomaly is the security role's decision alone (HIPAA 164.308(a)(1)(ii)(D))."""


@dataclass(frozen=True)
class RouteAccess:
    """The roles a route admits, whether it needs MFA, and the access event a successful call leaves."""

    roles: frozenset[str]
    records: Recorded
    mfa: bool = False
    by_source_secret: bool = False
    """No JWT: the handler authenticates by the webhook source's secret (``ledger.webhooks.service``);
    the ``Gate`` lets the call through to it, and the handler records a refusal as the ``Gate`` does."""


ROUTES: dict[tuple[str, str], RouteAccess] = {
    ("GET", "/v1/event-types"): RouteAccess(ANY_ROLE, VIEWED),
    ("POST", "/v1/events"): RouteAccess(WRITERS, None),
    ("GET", "/v1/events"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/events/{event_id}"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/items/{dataset}/{item}/labels"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/items/{dataset}/{item}/provenance"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/annotators/{actor}/credentials"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/compliance/flags"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/guidelines"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/reports/retention"): RouteAccess(READERS, EXPORTED, mfa=True),
    ("GET", "/v1/releases/{dataset}/{release}/lineage"): RouteAccess(READERS, EXPORTED, mfa=True),
    ("GET", "/v1/logs/{log}/proofs/consistency"): RouteAccess(CHECKPOINT_READERS, VIEWED),
    ("GET", "/v1/logs/{log}/proofs/inclusion"): RouteAccess(READERS, VIEWED),
    ("POST", "/v1/logs/{log}/cosignatures"): RouteAccess(WITNESSES, None),
    ("GET", "/v1/logs/{log}/checkpoint"): RouteAccess(CHECKPOINT_READERS, VIEWED),
    ("GET", "/v1/logs/{log}/checkpoints"): RouteAccess(CHECKPOINT_READERS, VIEWED),
    ("GET", "/v1/keys"): RouteAccess(CHECKPOINT_READERS, VIEWED),
    ("GET", "/v1/bundles"): RouteAccess(READERS, EXPORTED, mfa=True),
    ("GET", "/v1/export/fhir"): RouteAccess(READERS, EXPORTED, mfa=True),
    ("POST", "/v1/erasures"): RouteAccess(ADMINS, None, mfa=True),
    ("GET", "/v1/anomalies"): RouteAccess(ANOMALY_READERS, VIEWED),
    ("GET", "/v1/anomalies/{anomaly_id}"): RouteAccess(ANOMALY_READERS, VIEWED),
    ("POST", "/v1/anomalies/{anomaly_id}/reviews"): RouteAccess(REVIEWERS, None),
    ("GET", "/v1/reports/access-review"): RouteAccess(ANOMALY_READERS, EXPORTED, mfa=True),
    ("GET", "/v1/quality/annotators/{actor}"): RouteAccess(READERS, VIEWED),
    ("GET", "/v1/quality/items"): RouteAccess(READERS, VIEWED),
    ("POST", "/v1/webhooks/label-studio"): RouteAccess(frozenset(), None, by_source_secret=True),
    ("POST", "/v1/webhooks/cvat"): RouteAccess(frozenset(), None, by_source_secret=True),
}
"""Method and OpenAPI path template → who may call it. New routes add their row here."""


def route_access(method: str, path_template: str) -> RouteAccess | None:
    """The row of a route, or ``None`` for one outside the table (health, the OpenAPI document)."""
    return ROUTES.get((method.upper(), path_template))
