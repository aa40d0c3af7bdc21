"""``python -m ledger.verifier FILE [--key VKEY]… [--witness-key VKEY]… [--json]``: check an evidence bundle offline.

Exit 0 when the bundle verifies, 1 when a check fails, 2 when the input is unusable (unreadable file, not a
bundle, a malformed key given on the command line).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from ledger.verifier.bundle import BundleReport, verify_bundle
from ledger.verifier.errors import VerifierError
from ledger.verifier.keys import VerifierKey, parse_vkey

EXIT_VERIFIED, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The verifier's arguments, shared by ``python -m ledger.verifier`` and ``ledger verify-bundle``."""
    parser.add_argument("file", type=Path, help="the bundle file (- for standard input)")
    parser.add_argument(
        "--key",
        action="append",
        default=None,
        metavar="VKEY",
        help="a checkpoint verifier key to pin (signed-note vkey form); repeat for several. With none, the "
        "bundle's own keys are used, which prove its integrity but not that the ledger you trust made it",
    )
    parser.add_argument(
        "--witness-key",
        action="append",
        default=None,
        metavar="VKEY",
        help="a witness's cosignature vkey to pin; every checkpoint must then be cosigned by a pinned witness",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")


def run(args: argparse.Namespace) -> int:
    """Verify the bundle ``args`` name and print the report; return the exit code."""
    try:
        data = sys.stdin.buffer.read() if str(args.file) == "-" else args.file.read_bytes()
        keys = _keys(args.key, "--key")
        witnesses = _keys(args.witness_key, "--witness-key")
    except OSError as exc:
        print(f"verifier: cannot read {args.file}: {exc.strerror or exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except VerifierError as exc:
        print(f"verifier: {exc.message}", file=sys.stderr)
        return EXIT_UNUSABLE
    report = verify_bundle(data, trusted_keys=keys, witness_keys=witnesses)
    print_report(report, as_json=args.json)
    if not report.usable:
        return EXIT_UNUSABLE
    return EXIT_VERIFIED if report.verified else EXIT_FAILED


def print_report(report: BundleReport, *, as_json: bool) -> None:
    """Every check, one per line, then the verdict; or the report as JSON."""
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, ensure_ascii=False))
        return
    for check in report.checks:
        print(check.line)
    print(report.summary)


def _keys(texts: Sequence[str] | None, option: str) -> list[VerifierKey] | None:
    if texts is None:
        return None
    keys = []
    for text in texts:
        try:
            keys.append(parse_vkey(text))
        except VerifierError as exc:
            msg = f"{option} {text[:60]!r}: {exc.message}"
            raise VerifierError(msg) from None
    return keys


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m ledger.verifier``."""
    parser = argparse.ArgumentParser(
        prog="python -m ledger.verifier",
        description="Verify a ledger evidence bundle offline. Exit 0 verified, 1 failed, 2 unusable input.",
    )
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
