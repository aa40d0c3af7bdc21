"""``ledger erase``: crypto-shred one data subject of a tenant, as ``POST /v1/erasures`` does."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable

from ledger.erasure import ErasureRequest, ErasureService, Preview, describe
from ledger.runtime import open_ledger
from ledger.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]
EXIT_OK, EXIT_NOT_CONFIRMED = 0, 1

_EPILOG = """\
Example:
  ledger erase --tenant acme --subject ann-12 --reason "End of contract (ticket DPO-88)" --approver dpo-02

Exit status: 0 erased (or this erasure was recorded before), 1 not confirmed (nothing erased),
2 refused (a legal hold covers the subject's records, the subject was erased already, a field is not
valid) or an error; a refusal names the hold, the earlier erasure or the field.
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``erase`` to ``sub``; return its handler by command name."""
    erase = sub.add_parser(
        "erase",
        help="erase a data subject: delete their sealing key, record erasure.executed",
        description="Delete the subject's sealing key and record erasure.executed in the tenant's log, in one "
        "transaction: every value sealed under the key reads [erased] from then on, while every hash, Merkle "
        "root, checkpoint and evidence bundle still verifies. Refused while a legal hold in force covers any "
        "event holding a value sealed under the subject's key. Asks for the subject's id as confirmation "
        "unless --yes.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    erase.add_argument("--tenant", required=True, help="the tenant whose subject is erased")
    erase.add_argument(
        "--subject", required=True, help="the data subject (pseudonymous id: an actor, an annotator)"
    )
    erase.add_argument("--reason", required=True, help="why (free text; no direct identifiers)")
    erase.add_argument(
        "--approver", required=True, help="who approved it (someone other than --requested-by)"
    )
    erase.add_argument(
        "--erasure-id", help="the erasure's id (default: a new random one); a retry with it is a repeat"
    )
    erase.add_argument(
        "--requested-by",
        default=None,
        help="who asks, recorded as the event's actor (default: the operating-system user)",
    )
    erase.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    erase.add_argument("--json", action="store_true", help="print the result as JSON")
    return {"erase": _erase}


def _erase(settings: Settings, args: argparse.Namespace) -> int:
    request = ErasureRequest(
        tenant=args.tenant,
        subject=args.subject,
        reason=args.reason,
        approver=args.approver,
        requested_by=args.requested_by or getpass.getuser(),
        role="admin",
        erasure_id=args.erasure_id,
    )
    with open_ledger(settings) as ledger:
        service = ErasureService(ledger.db, ledger.appender, ledger.sealer)
        if not args.yes and not _confirmed(service.preview(args.tenant, args.subject)):
            print("not confirmed; nothing was erased", file=sys.stderr)
            return EXIT_NOT_CONFIRMED
        done = service.erase(request)
    print(json.dumps(done.as_dict(), indent=2) if args.json else describe(done))
    return EXIT_OK


def _confirmed(preview: Preview) -> bool:
    """Show what would be erased and read the subject's id back from standard input."""
    who = f"subject {preview.subject!r} of tenant {preview.tenant!r}"
    if preview.kid is None:
        earlier = f" (erased before by {', '.join(preview.earlier)})" if preview.earlier else ""
        print(f"{who} has no sealing key{earlier}: nothing sealed would become unreadable.", file=sys.stderr)
    else:
        print(
            f"Erasing {who} deletes key {preview.kid}: the sealed values of {preview.sealed_events:,} event(s) "
            "will read [erased] for ever. Hashes, proofs and bundles stay valid.",
            file=sys.stderr,
        )
    if preview.holds:
        print(
            f"Legal hold(s) {', '.join(preview.holds)} cover these records: it will be refused.",
            file=sys.stderr,
        )
    print(f"Type the subject's id ({preview.subject}) to confirm: ", end="", file=sys.stderr, flush=True)
    answer = sys.stdin.readline()
    return answer.strip() == preview.subject
