"""``ledger verify-bundle``: the offline verifier (``python -m ledger.verifier``) as a ledger subcommand."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ledger.settings import Settings
from ledger.verifier.__main__ import add_arguments, run

Handler = Callable[[Settings, argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``verify-bundle`` to ``sub``; return its handler by command name."""
    verify_bundle = sub.add_parser(
        "verify-bundle",
        help="check an evidence bundle offline (no database, no network)",
        description="Check every signature, key window, cosignature, consistency and inclusion proof of an "
        "evidence bundle, and report each. Exits 0 when it verifies, 1 when a check fails, 2 when the input "
        "is unusable.",
    )
    add_arguments(verify_bundle)
    return {"verify-bundle": _verify_bundle}


def _verify_bundle(_settings: Settings, args: argparse.Namespace) -> int:
    return run(args)
