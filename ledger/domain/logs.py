"""Which log an event belongs to (DESIGN §4): pure, so producers, projections, reports and the offline
verifier all answer it the same way."""

from __future__ import annotations


def log_for(tenant: str) -> str:
    """The log an event of ``tenant`` belongs to: one log per tenant."""
    return tenant


def owns_log(tenant: str, log: str) -> bool:
    """Whether ``log`` is one of ``tenant``'s logs (its own, or a shard ``tenant/N`` of it)."""
    return log == log_for(tenant) or log.startswith(f"{tenant}/")
