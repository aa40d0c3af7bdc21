"""The Kafka commands of ``ledger``: ``consume``, ``produce``, and ``demo --via-kafka``.

Kept apart from ``main.py`` so the Kafka path can grow without touching the other commands.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from ledger.domain.errors import ConfigurationError
from ledger.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> dict[str, Handler]:
    """Add the Kafka subcommands to ``sub``; return their handlers by command name."""
    return {}


def demo_via_kafka(settings: Settings, args: argparse.Namespace) -> int:
    """``ledger demo --via-kafka``: send the synthetic project to the events topic."""
    msg = "the Kafka path is not built yet"
    raise ConfigurationError(msg)
