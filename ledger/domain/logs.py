"""Which log an event belongs to (DESIGN §4): pure, so producers, projections, reports and the offline
verifier all answer it the same way."""

from __future__ import annotations

SYSTEM_TENANT = "ledger"
"""The ledger's own log: operator actions that span tenants (a report over every log, run from the CLI) and
refused requests whose tenant is unknown. No token acts in it and no producer writes to it."""


def log_for(tenant: str) -> str:
    """The log an event of ``tenant`` belongs to: one log per tenant."""
    return tenant


def owns_log(tenant: str, log: str) -> bool:
    """Whether ``log`` is one of ``tenant``'s logs (its own, or a shard ``tenant/N`` of it)."""
    return log == log_for(tenant) or log.startswith(f"{tenant}/")
