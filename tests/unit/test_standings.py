"""``Standings`` (an actor's standing at many times) answers exactly as ``standing`` at every time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from ledger.projections.queries import Standings, standing

START = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = [
    ("internal_level", "junior"),
    ("internal_level", "senior"),
    ("license", None),
    ("board_certification", None),
]


def periods(rng: random.Random) -> list[dict[str, object]]:
    rows = []
    for n in range(rng.randint(0, 5)):
        kind, level = rng.choice(KINDS)
        start = START + timedelta(days=rng.randint(0, 30))
        rows.append(
            {
                "credential_id": f"c{n}",
                "period": 1,
                "annotator": "ana",
                "kind": kind,
                "level": level,
                "valid_from": start,
                "valid_until": rng.choice([None, start + timedelta(days=rng.randint(0, 20))]),
                "ended_at": rng.choice([None, None, start + timedelta(days=rng.randint(0, 20))]),
                "event_id": f"e{n}",
            }
        )
    return rows


def test_standings_equal_standing_at_every_time_including_each_boundary() -> None:
    rng = random.Random(7)
    for _ in range(200):
        rows = periods(rng)
        standings = Standings(rows)
        bounds = [
            t for r in rows for t in (r["valid_from"], r["valid_until"], r["ended_at"]) if t is not None
        ]
        times = [START + timedelta(days=rng.uniform(-2, 55)) for _ in range(20)]
        times += [t + d for t in bounds for d in (timedelta(0), timedelta(microseconds=-1))]  # type: ignore[operator]
        for when in rng.sample(times, len(times)):
            assert standings.at(when) == standing(rows, when)


def test_a_standing_handed_out_is_the_callers_own() -> None:
    rows = periods(random.Random(1)) or periods(random.Random(2))
    standings = Standings(rows)
    first = standings.at(START + timedelta(days=10))
    first["valid_credentials"].append({"credential_id": "forged"})
    first["qualified_for"].append("expert")
    assert standings.at(START + timedelta(days=10)) == standing(rows, START + timedelta(days=10))
