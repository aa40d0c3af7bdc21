"""``ledger witness``: the auditor's witness (``ledger.witness``) and its key file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ledger.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]
EXIT_OK, EXIT_REFUSED, EXIT_ERROR = 0, 1, 2


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``witness`` to ``sub``; return its handler."""
    witness = sub.add_parser(
        "witness",
        help="cosign a ledger's checkpoints after checking each extends the last one seen",
        description="ledger witness URL --state DIR --key FILE --token TOKEN [--log L]... : fetch each log's "
        "latest checkpoint, verify the ledger's signature (keys pinned in DIR on first use, or --ledger-key), "
        "verify a consistency proof from the checkpoint kept in DIR, then cosign (C2SP cosignature/v1) and post "
        "it. Exits 1 when a checkpoint is refused (smaller, or not extending the one kept; DIR is left as it "
        "was), 2 on any other failure.\n\nledger witness keygen FILE --name NAME : create a witness key file "
        "and print the verifier key to add to the ledger's LEDGER_WITNESS_KEYS.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    witness.add_argument("url", metavar="URL|keygen", help="the ledger's base URL, or `keygen`")
    witness.add_argument("file", nargs="?", metavar="FILE", type=Path, help="keygen: the key file to create")
    witness.add_argument("--name", help="keygen: the witness's key name (e.g. witness.example.org)")
    witness.add_argument("--state", type=Path, metavar="DIR", help="the witness's state directory")
    witness.add_argument("--log", action="append", default=[], metavar="L",
                         help="a log to witness; repeatable (default: the logs kept in DIR)")  # fmt: skip
    witness.add_argument(
        "--key", type=Path, metavar="FILE", help="the witness key file (ledger witness keygen)"
    )
    witness.add_argument("--token", help="a bearer token of the ledger (a role that reads checkpoints)")
    witness.add_argument("--ledger-key", action="append", default=[], metavar="VKEY",
                         help="the ledger's checkpoint verifier key; repeatable (default: pinned in DIR on "
                         "first use from GET /v1/keys)")  # fmt: skip
    rounds = witness.add_mutually_exclusive_group()
    rounds.add_argument("--once", action="store_true", help="run one round (the default)")
    rounds.add_argument("--every", type=float, metavar="SECONDS", help="run a round every SECONDS, for ever")
    return {"witness": _witness}


def _witness(settings: Settings, args: argparse.Namespace) -> int:
    from ledger.verifier.errors import VerifierError
    from ledger.verifier.keys import parse_vkey
    from ledger.witness import LedgerClient, State, Witness, WitnessError, keygen, load_signer

    try:
        if args.url == "keygen":
            if args.file is None or not args.name:
                return _usage("keygen needs a FILE and --name NAME")
            signer = keygen(args.file, args.name)
            print(signer.vkey)
            print(
                f"witness key written to {args.file}; add the line above to LEDGER_WITNESS_KEYS",
                file=sys.stderr,
            )
            return EXIT_OK
        missing = [flag for flag, value in (("--state", args.state), ("--key", args.key), ("--token", args.token))
                   if not value]  # fmt: skip
        if missing:
            return _usage(f"witness URL needs {', '.join(missing)}")
        try:
            ledger_keys = [parse_vkey(k) for k in args.ledger_key]
        except VerifierError as exc:
            return _usage(f"--ledger-key: {exc.message}")
        state = State(args.state)
        logs = list(dict.fromkeys(args.log)) or state.logs()
        if not logs:
            return _usage("name a log to witness with --log (the state directory holds none yet)")
        client = LedgerClient(args.url, args.token)
        try:
            witness = Witness(client, state, load_signer(args.key), ledger_keys=ledger_keys)
            while True:
                outcomes = witness.round(logs)
                for o in outcomes:
                    print(("REFUSED " if o.status == "refused" else "ok      ") + o.message,
                          file=sys.stderr if o.status == "refused" else sys.stdout)  # fmt: skip
                if args.every is None:
                    return EXIT_REFUSED if any(o.status == "refused" for o in outcomes) else EXIT_OK
                time.sleep(args.every)
        finally:
            client.close()
    except WitnessError as exc:
        print(f"ledger witness: {exc}", file=sys.stderr)
        return EXIT_ERROR


def _usage(message: str) -> int:
    print(f"ledger witness: {message}", file=sys.stderr)
    return EXIT_ERROR
