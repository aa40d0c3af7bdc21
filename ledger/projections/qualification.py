"""Who is qualified for what, from credential periods (21 CFR 11.10(d),(g)). Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Which credential kinds (and internal levels) qualify an actor for each workflow role.
# An internal level is granted by the labelling organisation; a license and a board certification by
# external authorities. Level-3 review needs a physician's license; level 4 an expert's board certification.
ROLE_REQUIREMENTS: dict[str, tuple[tuple[str, frozenset[str] | None], ...]] = {
    "annotator": (("internal_level", None), ("license", None)),
    "reviewer": (("internal_level", frozenset({"intermediate", "senior"})), ("license", None)),
    "physician": (("license", None),),
    "expert": (("board_certification", None),),
}
ROLE_FOR_REVIEW_LEVEL = {2: "reviewer", 3: "physician", 4: "expert"}


@dataclass(frozen=True)
class Period:
    """One granted or renewed period of a credential."""

    credential_id: str
    period: int
    annotator: str
    kind: str
    level: str | None
    valid_from: datetime
    valid_until: datetime | None
    ended_at: datetime | None
    event_id: str

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Period:
        """The period a ``proj_credentials`` row holds."""
        return cls(
            row["credential_id"], row["period"], row["annotator"], row["kind"], row["level"],
            row["valid_from"], row["valid_until"], row["ended_at"], row["event_id"],
        )  # fmt: skip

    def valid_at(self, when: datetime) -> bool:
        """True when ``when`` lies in [valid_from, min(valid_until, ended_at))."""
        if when < self.valid_from:
            return False
        return all(end is None or when < end for end in (self.valid_until, self.ended_at))


def qualifying(periods: Iterable[Period], role: str, when: datetime) -> list[Period]:
    """The periods that make their holder qualified for ``role`` at ``when`` (empty when none)."""
    rules = ROLE_REQUIREMENTS[role]
    return [
        p
        for p in periods
        if p.valid_at(when)
        and any(p.kind == kind and (levels is None or p.level in levels) for kind, levels in rules)
    ]
