"""``ledger export fhir``: the FHIR R4 export of a time range, written to a file after it is recorded."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ledger.cli.progress import ProgressBar
from ledger.domain.errors import ConfigurationError
from ledger.domain.events import PURPOSES_OF_USE
from ledger.settings import Settings

if TYPE_CHECKING:
    from ledger.storage.database import Database

Handler = Callable[[Settings, argparse.Namespace], int]
PROGRESS_FROM = 2_000
"""Events from which a terminal shows a progress bar."""
CLI_ACTOR = "cli"

_EPILOG = """\
Examples:
  ledger export fhir --since 2026-03-01T00:00:00Z --until 2026-04-01T00:00:00Z -o march.fhir.json
  ledger export fhir --since 2026-03-01T00:00:00Z --until 2026-03-02T00:00:00Z --ndjson -o day.ndjson
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``export`` (with its ``fhir`` format) to ``sub``; return its handler by command name."""
    from ledger.fhir.export import MAX_EXPORT_EVENTS

    export = sub.add_parser(
        "export", help="export the record in a standard format", description="Export the record."
    )
    e_sub = export.add_subparsers(dest="export_command", metavar="FORMAT", required=True)
    fhir = e_sub.add_parser(
        "fhir",
        help="access events and annotation lineage as FHIR R4 (Bundle or Bulk Data NDJSON)",
        description="Write a tenant's events with SINCE <= event time < UNTIL as FHIR R4 (docs/fhir.md): access "
        "and sign-in events as AuditEvent (IHE BALP), annotations, reviews and adjudications as Provenance, "
        "in a Bundle of type collection or, with --ndjson, as Bulk Data NDJSON. Sealed values are not "
        f"exported. At most {MAX_EXPORT_EVENTS:,} events per export: narrow the range for more. The export "
        "is recorded (access.data_exported, and ledger.report_generated with its SHA-256) before the file is "
        "put in place.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    fhir.add_argument("--since", required=True, metavar="T", help="event time from (RFC 3339, inclusive)")
    fhir.add_argument("--until", required=True, metavar="T", help="event time until (RFC 3339, exclusive)")
    fhir.add_argument("--ndjson", action="store_true", help="FHIR Bulk Data NDJSON instead of a Bundle")
    fhir.add_argument(
        "--tenant", help="the tenant to export (default: the only tenant, asked for when several)"
    )
    fhir.add_argument(
        "--purpose",
        choices=PURPOSES_OF_USE,
        help="the purpose of use its access event names (default LEDGER_PURPOSE_OF_USE)",
    )
    fhir.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the file to write")
    fhir.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    return {"export": _export}


def _export(settings: Settings, args: argparse.Namespace) -> int:
    """Select, map, stage, record, deliver: an export is never handed over unrecorded."""
    from ledger.cli.projection_commands import _stage, _write_durably
    from ledger.fhir.export import Window, exported, pack, report_generated, select
    from ledger.runtime import open_ledger

    output: Path = args.output
    if output.exists() and not args.force:
        msg = f"--output {output}: exists; pass --force to overwrite it"
        raise ConfigurationError(msg)
    from ledger.domain.fields import parse_time

    since, until = parse_time("--since", args.since), parse_time("--until", args.until)
    fmt = "ndjson" if args.ndjson else "bundle"
    delivered = False
    staged = _stage(output)  # an unwritable place fails here, with nothing recorded
    try:
        with open_ledger(settings) as ledger:
            tenant = args.tenant or _only_tenant(ledger.db)
            window = Window(tenant, since, until).check("--since", "--until")
            sources = select(ledger.db, window, until_name="--until")
            enabled = None if len(sources) >= PROGRESS_FROM else False
            with ProgressBar(len(sources), "exporting", enabled=enabled) as bar:
                produced = pack(ledger.db, window, sources, fmt, progress=bar.advance)
            _write_durably(staged, produced.body, output)
            purpose = args.purpose or settings.purpose_of_use
            receipts = ledger.appender.append(
                [
                    exported(produced, actor=CLI_ACTOR, purpose=purpose),
                    report_generated(produced, requested_by=CLI_ACTOR),
                ]
            )
        staged.replace(output)  # atomic within one directory: a reader never sees half an export
        delivered = True
    finally:
        if not delivered:
            staged.unlink(missing_ok=True)
    print(
        f"wrote {output}: {produced.resources:,} FHIR resource(s) of tenant {tenant!r} ({fmt}), {len(produced.body):,} bytes"
    )
    print(f"  SHA-256 {produced.sha256}")
    print(f"  recorded as access.data_exported at {receipts[0].log}/{receipts[0].position}", file=sys.stderr)
    return 0


def _only_tenant(db: Database) -> str:
    from ledger.domain.logs import SYSTEM_TENANT

    with db.connect() as conn:
        rows = conn.execute(
            "SELECT DISTINCT tenant FROM ledger_log_heads WHERE tenant <> %s ORDER BY tenant",
            (SYSTEM_TENANT,),
        ).fetchall()
    tenants = [str(r[0]) for r in rows]
    if len(tenants) != 1:
        shown = ", ".join(tenants[:10]) or "none"
        msg = f"the ledger holds {len(tenants)} tenants ({shown}): name one with --tenant"
        raise ConfigurationError(msg)
    return tenants[0]
