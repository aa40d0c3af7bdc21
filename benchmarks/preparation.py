"""Per-event cost of the append path's steps, each timed on its own over the same batches.

The append service prepares a batch before it takes any lock (sealing, canonical bytes, content digests)
and the API validates each event before that. Timing the public pieces one by one, over the events the
benchmark just appended, shows where the time of one event goes, so a later change shows up as a change
in one line rather than in the total alone. Nothing in ``ledger/`` is patched or wrapped: each step is
called here the way ``AppendService._prepare`` and ``ledger.api.ingest.parse_request`` call it.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from ledger.api.ingest import BATCH as BATCH_MEDIA
from ledger.api.ingest import parse_request
from ledger.crypto.sealing import Sealer
from ledger.domain.canonical import canonicalize, canonicalize_json
from ledger.domain.envelope import ReceivedEvent, validate_event
from ledger.domain.hashing import GENESIS_HASH, chain_hash, leaf_hash
from ledger.domain.stored import stored_bytes

# (key, what is timed, where the service does it: in the request handler, before or inside the head lock)
STEPS = (
    ("parse_and_validate", "batch body -> events (parse_request: JSON + validation)", "request"),
    ("validate", "validation alone (validate_event on parsed JSON)", "request"),
    ("seal", "sealing (Sealer.seal)", "before lock"),
    ("canonical", "canonical bytes of the sealed form (canonicalize_json)", "before lock"),
    ("digest", "content digest (Sealer.content_digest)", "before lock"),
    ("chain", "chain hash (stored_bytes + leaf_hash + chain_hash)", "in lock"),
)


class _Clock:
    """Seconds per step, summed over every ``with clock.step(key):`` block."""

    def __init__(self) -> None:
        self.seconds = dict.fromkeys((key for key, _, _ in STEPS), 0.0)

    @contextlib.contextmanager
    def step(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[key] += time.perf_counter() - start


def _time_batch(clock: _Clock, sealer: Sealer, chunk: list[ReceivedEvent], first_position: int) -> int:
    """Each step once over ``chunk``, as the API and the append service do it; the number sealed."""
    raws = [e.raw for e in chunk]
    body = json.dumps(raws).encode()  # what a producer sends; serialising it is the client's work
    with clock.step("parse_and_validate"):
        parsed, _ = parse_request(BATCH_MEDIA, {}, body)
    if len(parsed) != len(chunk):
        msg = f"parse_request returned {len(parsed)} events for a batch of {len(chunk)}"
        raise RuntimeError(msg)
    with clock.step("validate"):
        for raw in raws:
            validate_event(raw)
    with clock.step("seal"):
        stored = sealer.seal(chunk)
    with clock.step("canonical"):
        canonical = []
        for event, as_stored in zip(chunk, stored, strict=True):
            # Validation made the canonical bytes as received (event.canonical): part of its line above.
            canonical.append(event.canonical if as_stored is event.raw else canonicalize_json(as_stored))
    with clock.step("digest"):
        for event in chunk:
            sealer.content_digest(event)
    # The append service hashes inside the lock; log name and recorded time are fixed here.
    log_json, recorded_json, prev = canonicalize("bench"), b'"2026-12-01T00:00:00.000000Z"', GENESIS_HASH
    with clock.step("chain"):
        for position, as_stored in enumerate(canonical, start=first_position):
            prev = chain_hash(prev, leaf_hash(stored_bytes(as_stored, log_json, position, recorded_json)))
    return sum(1 for event, as_stored in zip(chunk, stored, strict=True) if as_stored is not event.raw)


def measure(sealer: Sealer, events: Sequence[ReceivedEvent], batch: int) -> dict[str, Any]:
    """Seconds each step took over ``events`` in consecutive batches of ``batch``, and per event.

    Call after the events were appended through ``sealer``'s ledger, so their subject keys are cached:
    what is timed is the per-event work, not the one-off creation of a data subject's key.
    """
    clock = _Clock()
    sealed = 0
    for start in range(0, len(events), batch):
        sealed += _time_batch(clock, sealer, list(events[start : start + batch]), start)
    seconds = clock.seconds
    n = len(events)
    steps = {
        key: {
            "label": label,
            "where": where,
            "seconds": seconds[key],
            "us_per_event": seconds[key] / n * 1e6,
            "events_per_s": n / seconds[key] if seconds[key] else None,
        }
        for key, label, where in STEPS
    }
    prepare = sum(seconds[key] for key, _, where in STEPS if where == "before lock")
    return {
        "events": n,
        "batch_size": batch,
        "sealed_events": sealed,
        "steps": steps,
        "prepare_outside_lock_us_per_event": prepare / n * 1e6,
    }


def lines(prep: dict[str, Any], append_us_per_event: float) -> list[str]:
    """The table of per-event costs, each beside its share of one appended event's time in 1a."""

    def share(us: float) -> str:
        return f"{us / append_us_per_event:>7.1%}" if append_us_per_event else f"{'?':>7}"

    out = [
        f"4  each step on its own, over 1a's {prep['events']:,} events in batches of {prep['batch_size']}"
        f" ({prep['sealed_events']:,} with sealed fields); share = of 1a's {append_us_per_event:.1f} us per event",
        f"   {'step':<58} {'where':<11} {'us/event':>9} {'share':>7}",
    ]
    for step in prep["steps"].values():
        out.append(
            f"   {step['label']:<58} {step['where']:<11} {step['us_per_event']:>9.1f} {share(step['us_per_event'])}"
        )
    total = prep["prepare_outside_lock_us_per_event"]
    out.append(
        f"   {'preparation outside the lock: seal + canonical + digest':<58} {'before lock':<11} {total:>9.1f} {share(total)}"
    )
    return out
