"""Which log an event belongs to (DESIGN §4): pure, so producers, projections, reports and the offline
verifier all answer it the same way."""

from __future__ import annotations


def log_for(tenant: str) -> str:
    """The log an event of ``tenant`` belongs to: one log per tenant."""
    return tenant
