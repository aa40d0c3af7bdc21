"""``ledger projections rebuild`` and ``ledger report retention``."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

from ledger.cli.progress import ProgressBar
from ledger.domain.errors import ConfigurationError, NotFound
from ledger.runtime import open_ledger
from ledger.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]
_OUTPUT_HELP = (
    "file to write (default: standard output); staged beside it and moved into place only once the "
    "report's digest is recorded, so a path that cannot be written records nothing"
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``projections`` and ``report`` to ``sub``; return their handlers by command name."""
    from ledger.projections.registry import all_projectors
    from ledger.reports.report import FORMATS

    names = [p.name for p in all_projectors()]
    projections = sub.add_parser("projections", help="rebuild projections from the log",
                                 description="Derived tables (label state, credentials, flags, retention index).")  # fmt: skip
    p_sub = projections.add_subparsers(dest="projections_command", metavar="ACTION", required=True)
    rebuild = p_sub.add_parser(
        "rebuild",
        help="empty the projection tables and replay every event into them",
        description="Replays the log into empty projection tables, in one transaction holding every log head "
        "(an append waits up to LEDGER_DB_LOCK_TIMEOUT, then gets a retryable 503; Kafka consumers retry): run it "
        "in a maintenance window. The result equals what inline projection produced, row for row.",
    )
    rebuild.add_argument("name", nargs="?", choices=names, help="only this projection (default: all)")

    report = sub.add_parser(
        "report", help="generate a report", description="Generate a report for an auditor."
    )
    r_sub = report.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    retention = r_sub.add_parser(
        "retention",
        help="the six-year retention report",
        description="Counts, oldest records, retention due dates, legal holds, erasures and the integrity status "
        "of the last `ledger verify`, as of a date. The report's SHA-256 is recorded as a ledger.report_generated event.",
    )
    retention.add_argument(
        "--as-of", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default today)"
    )
    retention.add_argument("--format", choices=FORMATS, default="html", help="output format (default html)")
    retention.add_argument(
        "--output",
        type=Path,
        default=None,
        help=_OUTPUT_HELP,
    )
    retention.add_argument(
        "--tenant", default=None, help="only this tenant's logs (default: every log); it must have a log"
    )
    review = r_sub.add_parser(
        "access-review",
        help="the access-review report: anomalies raised, reviewed, still open",
        description="Per ISO week of --from..--to (both included, UTC): the access anomalies raised (per rule and "
        "severity), the reviews recorded (reviewer, decision, time) and the anomalies still open at the end, with "
        "their age. The report's SHA-256 is recorded as a ledger.report_generated event.",
    )
    review.add_argument(
        "--from",
        dest="first",
        metavar="DATE",
        type=date.fromisoformat,
        required=True,
        help="first day, YYYY-MM-DD",
    )
    review.add_argument(
        "--to",
        dest="last",
        metavar="DATE",
        type=date.fromisoformat,
        required=True,
        help="last day (included)",
    )
    review.add_argument("--format", choices=FORMATS, default="html", help="output format (default html)")
    review.add_argument("--output", type=Path, default=None, help=_OUTPUT_HELP)
    review.add_argument(
        "--tenant",
        default=None,
        help="only this tenant's anomalies (default: every tenant); it must have a log",
    )
    lineage = r_sub.add_parser(
        "lineage",
        help="the reference-standard lineage report of a dataset release",
        description="Per item of DATASET@RELEASE the final label and every event that reached it (annotations, "
        "revisions, reviews, adjudication, each actor's credential standing then, guideline versions); per split the "
        "readers and their qualifications, review levels, adjudication, independence, test-set isolation, compliance "
        "flags and reader agreement; the log heads it was computed from and the evidence bundle "
        "(`ledger bundle --release`) that holds every event it rests on. The report's SHA-256 is recorded as a "
        "ledger.report_generated event.",
    )
    lineage.add_argument("--release", required=True, metavar="DATASET@RELEASE", help="the release")
    lineage.add_argument("--format", choices=FORMATS, default="html", help="output format (default html)")
    lineage.add_argument("--output", type=Path, default=None, help=_OUTPUT_HELP)
    lineage.add_argument(
        "--tenant", default=None, help="the tenant of the release (default: the one tenant that has it)"
    )
    return {"projections": _projections, "report": _report}


def _projections(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.projections.rebuild import rebuild
    from ledger.projections.registry import all_projectors, rebuilt_together
    from ledger.storage.verify import count_events

    chosen = rebuilt_together(args.name, all_projectors(settings.anomalies, settings.qc_policy))
    with open_ledger(settings) as ledger:
        started = time.monotonic()
        with ProgressBar(count_events(ledger.db), "rebuilding") as bar:
            read = rebuild(ledger.db, chosen, progress=bar.advance)
        elapsed = time.monotonic() - started
    rate = read / elapsed if elapsed else 0.0
    print(
        f"rebuilt {', '.join(p.name for p in chosen)} from {read:,} events in {elapsed:.1f}s ({rate:,.0f} events/s)"
    )
    return 0


def _report(settings: Settings, args: argparse.Namespace) -> int:
    """Render, stage, record, deliver: a report is never handed over unrecorded, and a failed write records nothing."""
    from ledger.reports.service import record, render_access_review, render_lineage, render_retention
    from ledger.storage.bundles import release_scope

    if args.report_command not in (
        "retention",
        "access-review",
        "lineage",
    ):  # pragma: no cover - argparse allows these
        msg = f"unknown report {args.report_command}"
        raise ConfigurationError(msg)
    # Staged beside --output before anything else: an unwritable path fails here, with nothing recorded.
    staged = _stage(args.output) if args.output is not None else None
    try:
        with open_ledger(settings) as ledger:
            try:
                if args.report_command == "lineage":
                    scope = release_scope(args.release, "--release")
                    rendered = render_lineage(
                        ledger, scope, args.format, tenant=args.tenant, requested_by="cli"
                    )
                elif args.report_command == "retention":
                    as_of = args.as_of or datetime.now(UTC).date()
                    rendered = render_retention(
                        ledger, as_of, args.format, tenant=args.tenant, requested_by="cli"
                    )
                else:
                    rendered = render_access_review(
                        ledger, args.first, args.last, args.format, tenant=args.tenant, requested_by="cli"
                    )
            except NotFound as exc:
                if args.report_command == "lineage":
                    raise
                msg = f"--tenant {args.tenant}: {exc.detail}; without --tenant the report covers every log"
                raise NotFound(msg) from exc
            if staged is not None:
                _write_durably(staged, rendered.body, args.output)
            generated = record(ledger, rendered)
        if staged is None:
            sys.stdout.buffer.write(generated.body)
            sys.stdout.buffer.flush()
        else:
            staged.replace(args.output)  # atomic within one directory: a reader never sees half a report
            staged = None
            print(f"wrote {args.output} ({len(generated.body):,} bytes)", file=sys.stderr)
    finally:
        if staged is not None:
            staged.unlink(missing_ok=True)
    print(
        f"SHA-256 {generated.sha256} recorded at {generated.receipt.log}/{generated.receipt.position}",
        file=sys.stderr,
    )
    return 0


def _stage(output: Path) -> Path:
    """An empty file beside ``output`` that the report is written to, then renamed over ``output``."""
    if output.is_dir():
        msg = f"--output {output}: is a directory; name the file to write"
        raise ConfigurationError(msg)
    staged = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        staged.touch(exist_ok=False)
    except OSError as exc:
        msg = f"--output {output}: cannot write there: {exc.strerror or exc}"
        raise ConfigurationError(msg) from exc
    return staged


def _write_durably(staged: Path, body: bytes, output: Path) -> None:
    try:
        with staged.open("wb") as fh:
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        msg = f"--output {output}: cannot write the report: {exc.strerror or exc}"
        raise ConfigurationError(msg) from exc
