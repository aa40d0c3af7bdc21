"""The access-anomaly rules (issue 9; DESIGN §5), one module each, over the facts of ``facts.Facts``.

Each module holds one ``Rule``: its name, severity, the event types it reads and a ``check`` that raises
anomalies into the facts (and keeps the rule's own state there). Checks do no I/O: the access projector
(``ledger.projections.access``) loads what a batch needs, applies the batch in log order and saves.
"""

from __future__ import annotations

from ledger.projections.anomalies import (
    access_after_revocation,
    break_glass,
    bulk_export,
    login_failures,
    off_hours,
    test_set_access,
    unassigned_item,
    volume_spike,
)
from ledger.projections.anomalies.facts import Rule

RULES: tuple[Rule, ...] = (
    unassigned_item.RULE,
    off_hours.RULE,
    volume_spike.RULE,
    bulk_export.RULE,
    access_after_revocation.RULE,
    login_failures.RULE,
    break_glass.RULE,
    test_set_access.RULE,
)
"""Every rule, in the order each event meets them."""
