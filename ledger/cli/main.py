"""The ``ledger`` command: serve, db, token, verify, demo."""

from __future__ import annotations

import argparse
import errno
import itertools
import json
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledger import __version__
from ledger.auth.tokens import ROLES, issue_dev_token
from ledger.cli import (
    bundle_commands,
    checkpoint_commands,
    erasure_commands,
    export_commands,
    kafka_commands,
    projection_commands,
    source_commands,
    witness_commands,
)
from ledger.cli.progress import ProgressBar
from ledger.domain.envelope import ReceivedEvent
from ledger.domain.errors import ConfigurationError, LedgerError
from ledger.domain.events import PURPOSES_OF_USE
from ledger.domain.verification import VerificationReport
from ledger.runtime import Ledger, open_ledger
from ledger.settings import Settings
from ledger.storage.embedded import EmbeddedPostgres

EXIT_OK, EXIT_BROKEN, EXIT_ERROR = 0, 1, 2

_EPILOG = """\
Configuration comes from LEDGER_* environment variables (see README). With no LEDGER_DATABASE_URL the
ledger runs a private PostgreSQL in LEDGER_HOME (default ./.ledger), shared by every command.

Quick start:
  ledger demo                                   # fill the ledger with a synthetic project
  ledger serve &                                # HTTP API on http://127.0.0.1:8000 (OpenAPI at /schema)
  TOKEN=$(ledger token --role auditor --tenant acme)
  curl -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8000/v1/events?limit=5'
  ledger verify                                 # exit 0 when intact, 1 when not
"""


def build_parser() -> argparse.ArgumentParser:
    """The full command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="ledger",
        description="A hash-chained, tamper-evident compliance ledger for medical-imaging annotation.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"ledger {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = sub.add_parser(
        "serve", help="run the HTTP API", description="Run the HTTP API (OpenAPI at /schema)."
    )
    serve.add_argument(
        "--host", help="address to bind (default LEDGER_HOST or 127.0.0.1; embedded mode is loopback only)"
    )
    serve.add_argument("--port", type=int, help="port (default LEDGER_PORT or 8000)")

    db = sub.add_parser(
        "db", help="manage the database", description="Manage the embedded or external database."
    )
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser(
        "start", help="start the embedded PostgreSQL and keep it running until `ledger db stop`"
    )
    db_sub.add_parser("stop", help="stop the embedded PostgreSQL (once no other ledger command uses it)")
    db_sub.add_parser(
        "status",
        help="is the embedded PostgreSQL running, and who uses it (its address, without the password)",
    )
    db_sub.add_parser(
        "url",
        help='print the libpq URL of the database in use, password included, for psql "$(ledger db url)": '
        "treat the output as a secret",
    )
    db_sub.add_parser("upgrade", help="run schema migrations (needed on an external database)")

    token = sub.add_parser(
        "token",
        help="issue a development token (embedded mode)",
        description="Print a signed development JWT, alone on stdout: TOKEN=$(ledger token --role auditor --tenant acme)",
    )
    token.add_argument(
        "--role", action="append", required=True, choices=ROLES, help="a role; repeat for several"
    )
    token.add_argument("--tenant", required=True, help="the tenant the token is scoped to")
    token.add_argument("--subject", default="dev-user", help="the token's subject (default dev-user)")
    token.add_argument("--ttl", type=int, default=8 * 3600, help="lifetime in seconds (default 8 hours)")
    token.add_argument(
        "--mfa", action="store_true", help="mark the token as issued after multi-factor sign-in"
    )
    token.add_argument(
        "--purpose",
        choices=PURPOSES_OF_USE,
        help="the token's purpose of use ('purpose' claim), recorded on its reads unless X-Purpose-Of-Use says otherwise",
    )

    verify = sub.add_parser(
        "verify",
        help="re-hash every event and check the chains, Merkle trees and checkpoints",
        description="Recompute leaf hashes, hash chains and Merkle trees of every log and compare them with "
        "the log heads, the stored tiles and every signed checkpoint on the record (and, with --against, "
        "checkpoints kept elsewhere). Exits 0 when everything verifies, 1 when a log is broken (naming the "
        "log and position) or disagrees with a checkpoint (naming the log, the size and the checkpoint).",
    )
    verify.add_argument("--log", help="verify this log only")
    verify.add_argument("--json", action="store_true", help="print the result as JSON")
    verify.add_argument(
        "--jobs",
        type=_at_least_one,
        default=None,
        metavar="N",
        help="worker processes checking position ranges in parallel (default: one per core)",
    )
    verify.add_argument(
        "--against",
        action="append",
        type=Path,
        default=[],
        metavar="FILE|DIR",
        help="also check these checkpoints: a saved note file, or every *.checkpoint file under a directory "
        "(the publication directory LEDGER_CHECKPOINT_DIR, a witness's --state directory); repeatable",
    )
    verify.add_argument(
        "--key",
        action="append",
        default=[],
        metavar="VKEY",
        help="verify checkpoint signatures with this verifier key (signed-note vkey) instead of the "
        "ledger's own published keys; repeatable",
    )

    demo = sub.add_parser(
        "demo",
        help="fill the ledger with a synthetic annotation project",
        description="Append a realistic synthetic project (annotators, credentials, guidelines, reviews, access).",
    )
    demo.add_argument("--events", type=int, default=20_000, help="how many events (default 20000)")
    demo.add_argument("--tenant", default="acme", help="tenant to write to (default acme)")
    demo.add_argument("--seed", type=int, default=7, help="random seed; the same seed gives the same project")
    demo.add_argument("--batch", type=int, default=1000, help="events per append transaction (default 1000)")
    demo.add_argument(
        "--plants",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="plant one case of every access-anomaly rule in the normal traffic (default: on); with "
        "--no-plants the project raises no anomaly under the default settings",
    )
    demo.add_argument(
        "--via-kafka",
        action="store_true",
        help="send the events to the Kafka topic (LEDGER_KAFKA_BOOTSTRAP) instead of appending directly",
    )
    _EXTRA_HANDLERS.update(kafka_commands.register(sub))
    _EXTRA_HANDLERS.update(projection_commands.register(sub))
    _EXTRA_HANDLERS.update(bundle_commands.register(sub))
    _EXTRA_HANDLERS.update(checkpoint_commands.register(sub))
    _EXTRA_HANDLERS.update(witness_commands.register(sub))
    _EXTRA_HANDLERS.update(erasure_commands.register(sub))
    _EXTRA_HANDLERS.update(export_commands.register(sub))
    _EXTRA_HANDLERS.update(source_commands.register(sub))
    return parser


def _at_least_one(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        msg = f"must be a whole number of at least 1, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return value


Handler = Callable[[Settings, argparse.Namespace], int]
_EXTRA_HANDLERS: dict[str, Handler] = {}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ledger`` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("ledger").setLevel(logging.INFO)
    try:
        settings = Settings.from_env(_environment(args))
        handlers: dict[str, Handler] = {
            "serve": _serve,
            "db": _db,
            "token": _token,
            "verify": _verify,
            "demo": _demo,
        }
        handler = {**handlers, **_EXTRA_HANDLERS}[args.command]
        return handler(settings, args)
    except LedgerError as exc:
        print(f"ledger: {exc.detail}", file=sys.stderr)
        for fe in exc.errors:
            print(f"  - {fe.field}: {fe.message}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        logging.getLogger("ledger").exception("unexpected error")
        print(f"ledger: unexpected error: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _environment(args: argparse.Namespace) -> Mapping[str, str]:
    """The variables settings are read from: ``ledger demo`` with no ``LEDGER_QC_POLICY`` uses the synthetic
    project's own QC policy, so its one planted item below policy is found."""
    if args.command == "demo" and not os.environ.get("LEDGER_QC_POLICY"):
        from ledger.synth.project import QC_POLICY

        return {**os.environ, "LEDGER_QC_POLICY": str(QC_POLICY)}
    return os.environ


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from ledger.alerts import alert_runner
    from ledger.api.app import create_app
    from ledger.api.logs import serve_log_config
    from ledger.checkpoints import CheckpointRunner
    from ledger.domain.errors import ConfigurationError

    host = args.host or settings.host
    port = args.port or settings.port
    if settings.embedded and host not in ("127.0.0.1", "localhost", "::1"):
        msg = "in embedded mode the server binds to loopback only; set LEDGER_DATABASE_URL for a networked deployment"
        raise ConfigurationError(msg)
    # Bound here, before the database is opened: a busy port is exit 2 naming it (uvicorn would log the
    # OSError and exit 3, outside the documented codes), and nothing else can take the port meanwhile.
    listener = _listen(host, port)
    # uvicorn re-raises SIGTERM/SIGINT after its graceful shutdown; turning that into SystemExit lets
    # open_ledger's cleanup run, so the embedded PostgreSQL is released (and stopped if we were last).
    signal.signal(signal.SIGTERM, _exit_cleanly)
    signal.signal(signal.SIGINT, _exit_cleanly)
    with listener, open_ledger(settings) as ledger:
        config = uvicorn.Config(
            create_app(ledger),
            host=host,
            port=port,
            log_level="info",
            access_log=settings.access_log,
            log_config=serve_log_config(),  # one line per record, whatever a request carries
        )
        server = uvicorn.Server(config)
        print(f"ledger serving on http://{host}:{port} (OpenAPI at /schema)", file=sys.stderr)
        # Checkpoints are signed beside the server, in a thread of their own; stopped (after the round
        # in hand) before the database is released.
        runner = CheckpointRunner(ledger.checkpoints).start()
        # With Kafka configured, each new access anomaly is also sent to ledger.alerts, from a thread too.
        alerts = alert_runner(ledger.settings, ledger.db)
        if alerts is not None:
            alerts.start()
        try:
            server.run(sockets=[listener])
        except SystemExit:
            if server.started:
                raise
            msg = "the HTTP application did not start; the log above says why"
            raise ConfigurationError(msg) from None
        finally:
            if alerts is not None:
                alerts.stop()
            runner.stop()
            ledger.checkpoints.close()
    return EXIT_OK


def _listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port``, or a ``ConfigurationError`` naming the port."""
    from ledger.domain.errors import ConfigurationError

    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
    except OSError as exc:
        msg = f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        raise ConfigurationError(msg) from exc
    try:
        listener.setsockopt(
            socket.SOL_SOCKET, socket.SO_REUSEADDR, 1
        )  # a restart need not wait out TIME_WAIT
        listener.bind(address)
    except OSError as exc:
        listener.close()
        busy = exc.errno == errno.EADDRINUSE
        why = (
            "it is already in use (is another `ledger serve` running?)" if busy else exc.strerror or str(exc)
        )
        msg = f"cannot listen on {host}:{port}: {why}; choose another with --port or LEDGER_PORT"
        raise ConfigurationError(msg) from exc
    return listener


def _exit_cleanly(signum: int, _frame: object) -> None:
    raise SystemExit(128 + signum if signum != signal.SIGTERM else 0)


def _db(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.domain.errors import ConfigurationError
    from ledger.storage import migrate
    from ledger.storage.database import Database

    action = args.db_command
    if action == "upgrade":
        if settings.embedded:
            with open_ledger(settings):  # opening the embedded ledger migrates it
                pass
        else:
            db = Database(str(settings.database_url), pool_size=1)
            try:
                migrate.upgrade(db)
                print(f"schema at revision {migrate.current_revision(db)}", file=sys.stderr)
            finally:
                db.dispose()
        return EXIT_OK
    if action == "url" and not settings.embedded:
        print(settings.database_url)
        return EXIT_OK
    if not settings.embedded:
        msg = (
            f"`ledger db {action}` manages the embedded server; LEDGER_DATABASE_URL points at an external one"
        )
        raise ConfigurationError(msg)
    server = EmbeddedPostgres(settings.home)
    if action == "start":
        print(server.pin())
        print("embedded PostgreSQL is running; `ledger db stop` stops it", file=sys.stderr)
    elif action == "stop":
        users = server.unpin()
        if users:
            print(
                f"still used by pid(s) {', '.join(map(str, users))}; it stops when they exit", file=sys.stderr
            )
        else:
            print("embedded PostgreSQL stopped", file=sys.stderr)
    elif action == "status":
        st = server.status()
        if st.stopped_orphan:
            note = "stopped the embedded PostgreSQL: no live command used it (its last user was killed)"
            print(note, file=sys.stderr)
        # The address without the password: a status is pasted into tickets; `ledger db url` has the secret.
        shown = {
            "running": st.running,
            "url": st.address,
            "users": st.users,
            "pinned": st.pinned,
            "watchdog": st.watchdog,
            "data_dir": str(st.data_dir),
        }
        print(json.dumps(shown, indent=2))
    elif action == "url":
        st = server.status()
        if not st.url:
            msg = "the embedded PostgreSQL is not running; start it with `ledger db start` (or run `ledger serve`)"
            raise ConfigurationError(msg)
        print(st.url)
    return EXIT_OK


def _token(settings: Settings, args: argparse.Namespace) -> int:
    print(issue_dev_token(settings, roles=args.role, tenant=args.tenant, subject=args.subject,
                          ttl_seconds=args.ttl, mfa=args.mfa, purpose=args.purpose))  # fmt: skip
    return EXIT_OK


def _verify(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from ledger.audit import audit
    from ledger.storage.verify import count_events, record
    from ledger.verifier.errors import VerifierError
    from ledger.verifier.keys import parse_vkey

    try:
        keys = [parse_vkey(k) for k in args.key]
    except VerifierError as exc:
        raise ConfigurationError(f"--key: {exc.message}") from None
    with open_ledger(settings) as ledger:
        started, started_at = time.monotonic(), datetime.now(UTC)
        with ProgressBar(count_events(ledger.db, args.log), "verifying") as bar:
            report = audit(ledger, log=args.log, against=args.against, keys=keys, progress=bar.advance,
                           jobs=args.jobs)  # fmt: skip
        elapsed = time.monotonic() - started
        if args.log is None:  # a whole-ledger result is what reports cite
            record(ledger.db, report, started_at, datetime.now(UTC))
    if args.json:
        print(json.dumps(_verify_json(report, elapsed), indent=2, default=str))
    else:
        _print_verify(report, elapsed)
    return EXIT_OK if report.intact else EXIT_BROKEN


def _verify_json(report: VerificationReport, elapsed: float) -> dict[str, object]:
    return {
        "intact": report.intact,
        "events_checked": report.checked,
        "seconds": round(elapsed, 3),
        "checkpoints_checked": report.checkpoints_checked,
        "logs": [{"log": r.log, "size": r.head_size, "events_checked": r.checked,
                  "head_hash": r.head_hash.hex() if r.head_hash else None,
                  "tree_size": r.tree_size,
                  "root": r.roots[r.tree_size].hex() if r.tree_size is not None and r.tree_size in r.roots else None,
                  "intact": r.intact,
                  "first_break": None if r.first_break is None else
                  {"position": r.first_break.position, "reason": r.first_break.reason,
                   **({"details": r.first_break.details} if r.first_break.details else {})}}
                 for r in report.logs],
        "checkpoint_problems": [{"log": p.log, "tree_size": p.size, "checkpoint": p.source, "reason": p.reason}
                                for p in report.checkpoint_problems],
    }  # fmt: skip


def _print_verify(report: VerificationReport, elapsed: float) -> None:
    for r in report.logs:
        if r.first_break is None:
            # The whole hashes: they are compared with reports and checkpoints.
            head = r.head_hash.hex() if r.head_hash else "-"
            root = r.roots.get(r.tree_size) if r.tree_size is not None else None
            print(f"ok      {r.log}: {r.checked:,} events, head {head}, root {root.hex() if root else '-'}")
        else:
            print(f"BROKEN  {r.log} at position {r.first_break.position}: {r.first_break.reason}")
    for p in report.checkpoint_problems:
        where = f"{p.log} at size {p.size}" if p.log is not None else f"size {p.size}"
        print(f"CHECKPOINT  {where} ({p.source}): {p.reason}")
    verdict = "intact" if report.intact else "NOT intact"
    print(f"{len(report.logs)} log(s), {report.checked:,} events re-hashed, {report.checkpoints_checked:,}"
          f" checkpoint(s) checked in {elapsed:.1f}s: {verdict}")  # fmt: skip


def _append_counting(ledger: Ledger, batch: list[ReceivedEvent]) -> tuple[int, int]:
    """Append ``batch``; return how many were new and how many were already recorded."""
    receipts = ledger.appender.append(batch)
    repeated = sum(r.duplicate for r in receipts)
    return len(receipts) - repeated, repeated


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.domain.envelope import validate_event
    from ledger.synth.project import QC_POLICY, generate

    if args.via_kafka:
        code = kafka_commands.demo_via_kafka(settings, args)
        _print_qc_policy(QC_POLICY)
        return code

    seen = _DemoFacts()
    with open_ledger(settings) as ledger:
        started = time.monotonic()
        recorded = repeats = 0
        with ProgressBar(args.events, "appending") as bar:
            events = (
                validate_event(seen.note(raw))
                for raw in generate(
                    tenant=args.tenant, events=args.events, seed=args.seed, plants=args.plants
                )
            )
            while batch := list(itertools.islice(events, args.batch)):
                new, repeated = _append_counting(ledger, batch)
                recorded, repeats = recorded + new, repeats + repeated
                bar.advance(len(batch))
        elapsed = time.monotonic() - started
        anomalies = _anomalies(ledger, args.tenant)
    print(f"recorded {recorded:,} new events for tenant {args.tenant!r} in {elapsed:.1f}s"
          + (f" ({repeats:,} were already there: same seed, same ids)" if repeats else ""))  # fmt: skip
    item = "1.2.826.0.1.3680043.10.543.444"  # carries the planted label under a retired guideline
    _print_qc_policy(QC_POLICY)
    print(f"""
Next:
  ledger serve &                                   # API on http://127.0.0.1:8000, OpenAPI at /schema
  TOKEN=$(ledger token --role auditor --tenant {args.tenant})
  curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8000/v1/compliance/flags?limit=5'
  curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8000/v1/items/chest-ct-2026/{item}/provenance'
  curl -s -H "Authorization: Bearer $TOKEN" 'http://127.0.0.1:8000/v1/quality/items?below_policy=true'   # routed to expert review
  ledger verify                                    # re-hash every event and check the chain
  ledger report retention --output retention.html  # the six-year retention report, printable""")
    _print_submission(seen, args.tenant)
    print('  psql "$(ledger db url)"   # look at the tables yourself (needs `ledger db start`)')
    _print_anomalies(anomalies, args.tenant)
    return EXIT_OK


class _DemoFacts:
    """What ``ledger demo`` notes of the events it generates, for the commands it suggests next."""

    def __init__(self) -> None:
        self.first_time: str | None = None
        self.release: tuple[str, str] | None = None  # (dataset, release) of the release it made

    def note(self, raw: dict[str, Any]) -> dict[str, Any]:
        if self.first_time is None:
            self.first_time = str(raw["time"])
        if raw["type"] == "dataset.release_created":
            self.release = (str(raw["data"]["dataset"]), str(raw["data"]["release"]))
        return raw


def _print_submission(seen: _DemoFacts, tenant: str) -> None:
    """What a regulatory submission cites: the release's lineage report and evidence bundle, FHIR R4."""
    if seen.first_time is None:
        return
    since = datetime.fromisoformat(seen.first_time).date()
    start, end = f"{since}T00:00:00Z", f"{since + timedelta(days=7)}T00:00:00Z"  # the project's first week
    lines = [
        f"  MFA=$(ledger token --role auditor --tenant {tenant} --mfa)   # lineage and FHIR over HTTP need MFA"
    ]
    if seen.release is None:
        lines.append(
            "  # no release yet: `ledger demo` with 20000 events makes release r1 for the lineage report"
        )
    else:
        dataset, release = seen.release
        lines += [
            f"  ledger report lineage --release {dataset}@{release} --tenant {tenant} --output lineage.html"
            "   # reference-standard lineage, A4",
            f'  curl -s -H "Authorization: Bearer $MFA" \'http://127.0.0.1:8000/v1/releases/{dataset}/{release}'
            "/lineage?format=json' -o lineage.json",
            f"  ledger bundle --release {dataset}@{release} --tenant {tenant} -o {release}-evidence.json"
            f" && ledger verify-bundle {release}-evidence.json   # the events the report rests on",
        ]
    lines += [
        f"  ledger export fhir --since {start} --until {end} --tenant {tenant} --output fhir.json"
        "   # the first week as FHIR R4 (--ndjson: Bulk Data)",
        f'  curl -s -H "Authorization: Bearer $MFA" \'http://127.0.0.1:8000/v1/export/fhir?since={start}'
        f"&until={end}&format=ndjson' -o fhir.ndjson",
    ]
    print("\n".join(lines))


def _print_qc_policy(demo_policy: Path) -> None:
    """Say that the demo's own QC policy was used (``_environment``), and how ``ledger serve`` keeps it."""
    if not os.environ.get("LEDGER_QC_POLICY"):
        print(f"""
QC policy: LEDGER_QC_POLICY is unset, so the demo used its own; keep it for `ledger serve` with
  export LEDGER_QC_POLICY={demo_policy}""")


def _anomalies(ledger: Ledger, tenant: str) -> list[tuple[str, str, str]]:
    """The tenant's access anomalies as (rule, id, summary), in the order they were raised."""
    with ledger.db.connect() as conn:
        rows = conn.execute(
            "SELECT rule, anomaly_id, summary FROM proj_access_anomalies WHERE tenant = %s ORDER BY log, position",
            (tenant,),
        ).fetchall()
    return [(str(rule), str(ident), str(summary)) for rule, ident, summary in rows]


def _print_anomalies(anomalies: list[tuple[str, str, str]], tenant: str) -> None:
    if not anomalies:
        print("\nNo access anomaly was raised.")
        return
    print(f"""
Access anomalies ({len(anomalies)}), for a security reviewer:
  TOKEN=$(ledger token --role security --tenant {tenant})""")
    for rule, ident, summary in anomalies:
        print(f"  {rule}: {summary}")
        print(f"    curl -s -H \"Authorization: Bearer $TOKEN\" 'http://127.0.0.1:8000/v1/anomalies?rule={rule}'"
              f"   # or /v1/anomalies/{ident}")  # fmt: skip
    first, today = anomalies[0][1], datetime.now(UTC).date()
    week = (today - timedelta(days=6)).isoformat()
    print(f"""  # record a review (the anomaly's status becomes the decision), then the period's access-review report:
  curl -s -X POST -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' \\
       -d '{{"decision": "benign", "comment": "expected"}}' 'http://127.0.0.1:8000/v1/anomalies/{first}/reviews'
  ledger report access-review --from {week} --to {today} --tenant {tenant} --output access-review.html""")


if __name__ == "__main__":
    sys.exit(main())
