"""``ledger checkpoint`` and ``ledger keys rotate|list``: signed checkpoints on demand, and their keys."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable

from ledger.domain.stored import format_time
from ledger.runtime import open_ledger
from ledger.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add ``checkpoint`` and ``keys`` to ``sub``; return their handlers by command name."""
    checkpoint = sub.add_parser(
        "checkpoint",
        help="sign each log's tree head now (a C2SP signed checkpoint)",
        description="Sign the current tree head of every log (or one) as a C2SP tlog-checkpoint signed note "
        "(Ed25519 and ML-DSA-44, origin LEDGER_DEPLOYMENT/logs/<log>), record it as a ledger.checkpoint_signed "
        "event and publish it to LEDGER_CHECKPOINT_DIR/<log>/<size>.checkpoint (and the Kafka topic "
        "ledger.checkpoints when LEDGER_KAFKA_BOOTSTRAP is set). A log with nothing new since its latest "
        "checkpoint is left as it is. `ledger serve` and `ledger consume` do this by themselves every "
        "LEDGER_CHECKPOINT_EVERY events or LEDGER_CHECKPOINT_SECONDS seconds.",
    )
    checkpoint.add_argument("--log", help="only this log (default: every log)")

    keys = sub.add_parser(
        "keys",
        help="the checkpoint signing keys",
        description="The checkpoint keys in LEDGER_CHECKPOINT_KEY_FILE (default LEDGER_HOME/keys/checkpoint-keys.json).",
    )
    k_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    k_sub.add_parser(
        "rotate",
        help="retire the current checkpoint keys and start new ones",
        description="Start a new generation of checkpoint keys (Ed25519 and ML-DSA-44). The old public keys "
        "stay published with their validity window, so checkpoints signed before keep verifying, and one "
        "signed by a retired key after its retirement is refused. Recorded as ledger.key_rotated in the "
        "ledger's own log (LEDGER_KAFKA_REJECTION_TENANT, default 'ledger'); prints the old and new key ids. "
        "Running `ledger serve` processes sign with the new keys from their next checkpoint on.",
    )
    k_sub.add_parser("list", help="print every checkpoint verifier key (vkey) with its validity window")
    return {"checkpoint": _checkpoint, "keys": _keys}


def _checkpoint(settings: Settings, args: argparse.Namespace) -> int:
    with open_ledger(settings) as ledger:
        service = ledger.checkpoints
        logs = [args.log] if args.log else [s.log for s in service.store.states()]
        try:
            for log in logs:
                signed = service.sign(log)
                if signed is None:
                    latest = service.store.latest(log, tenant=None)
                    size = latest.tree_size if latest else 0
                    print(f"{log}: nothing new since the checkpoint at size {size}")
                    continue
                print(f"signed {service.origin(log)} at size {signed.tree_size}")
                print(f"  root {signed.root.hex()}")
                print(f"  recorded as {signed.event_id} at position {signed.position}")
                published = service.directory.path(signed)
                where = published if service.directory.published(signed) else "NOT YET (see the log above)"
                print(f"  published to {where}")
        finally:
            service.close()
        if not logs:
            print("no log holds any event yet: nothing to sign", file=sys.stderr)
    return 0


def _keys(settings: Settings, args: argparse.Namespace) -> int:
    with open_ledger(settings) as ledger:
        service = ledger.checkpoints
        if args.keys_command == "rotate":
            rotation = service.rotate_keys(settings.kafka.rejection_tenant)
            print(f"retired {', '.join(rotation.old)}")
            print(f"new     {', '.join(rotation.new)}")
            print(
                f"recorded as ledger.key_rotated in log {settings.kafka.rejection_tenant!r}", file=sys.stderr
            )
            return 0
        for window in service.verifier_keys():
            retired = format_time(window.retired_at) if window.retired_at else "current"
            print(f"{window.key.vkey}  from {format_time(window.created_at)}  until {retired}")
    return 0
