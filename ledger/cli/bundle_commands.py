"""``ledger bundle``: produce an evidence bundle; ``ledger verify-bundle``: the offline verifier
(``python -m ledger.verifier``) as a ledger subcommand."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

from ledger.cli.progress import ProgressBar
from ledger.domain.errors import ConfigurationError
from ledger.settings import Settings
from ledger.storage.bundles import Scope
from ledger.verifier.__main__ import add_arguments, run

Handler = Callable[[Settings, argparse.Namespace], int]
PROGRESS_FROM = 2_000
"""Events from which a terminal shows a progress bar."""

_BUNDLE_EPILOG = """\
Examples:
  ledger bundle --release chest-xray@2027-01 -o release.bundle.json
  ledger bundle --item chest-xray/study-0042 -o item.bundle.json
  ledger bundle --events evt-1,evt-2 --tenant acme -o events.bundle.json
  ledger bundle --log acme --from 0 --to 999 -o range.bundle.json
  ledger verify-bundle release.bundle.json --key "$(curl -s … /v1/keys | jq -r '.checkpoint_keys[0].vkey')"
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``bundle`` and ``verify-bundle`` to ``sub``; return their handlers by command name."""
    bundle = sub.add_parser(
        "bundle",
        help="write an evidence bundle an auditor verifies offline",
        description="Write an evidence bundle (ledger-evidence-bundle/v1, docs/verification.md): the events "
        "of one scope exactly as stored and hashed (sealed values stay sealed), each event's RFC 9162 "
        "inclusion proof, the signed checkpoint(s) the proofs lead to with their witness cosignatures, "
        "and the ledger's verifier keys, sealed with the Ed25519 checkpoint key. When the latest "
        "checkpoint of a log does not cover the events yet, one is signed first. The bundle is recorded "
        "as a ledger.report_generated event (report evidence_bundle, its SHA-256, the scope) in the "
        "tenant's log before the file is put in place. Check it with `ledger verify-bundle FILE` or "
        "`python -m ledger.verifier FILE`, which need no database and no network.",
        epilog=_BUNDLE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    scope = bundle.add_mutually_exclusive_group(required=True)
    scope.add_argument(
        "--item",
        metavar="DATASET/ITEM",
        help="every event about one item (annotations, reviews, adjudication, accesses)",
    )
    scope.add_argument(
        "--release",
        metavar="DATASET@RELEASE",
        help="a dataset release: its dataset.release_created event and every event about its items up to "
        "the release (the lineage of each released label)",
    )
    scope.add_argument("--events", metavar="ID,…", help="these events, by id (every one must exist)")
    scope.add_argument("--log", metavar="L", help="a range of a log's positions (with --from and --to)")
    bundle.add_argument("--from", dest="first", type=int, metavar="P", help="with --log: first position")
    bundle.add_argument(
        "--to", dest="last", type=int, metavar="P", help="with --log: last position (included)"
    )
    bundle.add_argument(
        "--tenant",
        help="the tenant whose records the scope names (default: the one tenant holding them; asked for "
        "when several do)",
    )
    bundle.add_argument("-o", "--output", type=Path, required=True, metavar="FILE", help="the file to write")
    bundle.add_argument("--force", action="store_true", help="overwrite FILE if it exists")

    verify_bundle = sub.add_parser(
        "verify-bundle",
        help="check an evidence bundle offline (no database, no network)",
        description="Check every signature, key window, cosignature, consistency and inclusion proof of an "
        "evidence bundle, and report each. Exits 0 when it verifies, 1 when a check fails, 2 when the input "
        "is unusable.",
    )
    add_arguments(verify_bundle)
    return {"bundle": _bundle, "verify-bundle": _verify_bundle}


def _bundle(settings: Settings, args: argparse.Namespace) -> int:
    """Select, produce, stage, record, deliver: a bundle is never handed over unrecorded."""
    from ledger.cli.projection_commands import _stage, _write_durably
    from ledger.evidence import produce_bundle, record_bundle, select_bundle
    from ledger.runtime import open_ledger

    scope = _scope(args)
    output: Path = args.output
    if output.exists() and not args.force:
        msg = f"--output {output}: exists; pass --force to overwrite it"
        raise ConfigurationError(msg)
    delivered = False
    staged = _stage(output)  # an unwritable place fails here, with nothing signed or recorded
    try:
        with open_ledger(settings) as ledger:
            try:
                selection = select_bundle(ledger, scope, tenant=args.tenant)
                enabled = None if selection.count >= PROGRESS_FROM else False
                with ProgressBar(selection.count, "bundling", enabled=enabled) as bar:
                    produced = produce_bundle(ledger, selection, progress=bar.advance)
                _write_durably(staged, produced.body, output)
                receipt = record_bundle(ledger, produced, requested_by="cli")
            finally:
                ledger.checkpoints.close()
        staged.replace(output)  # atomic within one directory: a reader never sees half a bundle
        delivered = True
    finally:
        if not delivered:
            staged.unlink(missing_ok=True)
    logs = ", ".join(f"{log}@{size}" for log, size in produced.checkpoints)
    print(
        f"wrote {output}: {produced.events:,} event(s) of tenant {produced.tenant!r}, {len(produced.body):,} bytes"
    )
    print(
        f"  checkpoint(s) {logs}"
        + (f" (signed now for {', '.join(produced.signed)})" if produced.signed else "")
    )
    print(f"  SHA-256 {produced.sha256}")
    print(f"  recorded as ledger.report_generated at {receipt.log}/{receipt.position}", file=sys.stderr)
    return 0


def _scope(args: argparse.Namespace) -> Scope:
    from ledger.storage import bundles

    if args.log is None and (args.first is not None or args.last is not None):
        msg = "--from and --to go with --log"
        raise ConfigurationError(msg)
    if args.item is not None:
        return bundles.item_scope(args.item, "--item")
    if args.release is not None:
        return bundles.release_scope(args.release, "--release")
    if args.events is not None:
        return bundles.events_scope(args.events, "--events")
    return bundles.log_scope(args.log, args.first, args.last, "--")


def _verify_bundle(_settings: Settings, args: argparse.Namespace) -> int:
    return run(args)
