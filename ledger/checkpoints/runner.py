"""The periodic checkpointer of ``ledger serve`` and ``ledger consume``: a background thread."""

from __future__ import annotations

import logging
import threading

from ledger.checkpoints.service import CheckpointService
from ledger.domain.errors import LedgerError

_log = logging.getLogger("ledger.checkpoints")
TICK_SECONDS = 1.0
"""How often due logs are looked for (at most; ``poke`` looks at once), one query over the log heads."""


class CheckpointRunner:
    """Signs every due log and retries failed publications, every ``tick`` seconds until ``stop``."""

    def __init__(self, service: CheckpointService, *, tick: float | None = None) -> None:
        self._service = service
        self._tick = min(tick or TICK_SECONDS, service.seconds)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-checkpoints", daemon=True)

    def start(self) -> CheckpointRunner:
        """Start the thread; returns ``self``."""
        self._thread.start()
        return self

    def poke(self) -> None:
        """Look for due logs now (``ledger consume`` calls this after each committed batch)."""
        self._wake.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop after the round in hand and wait for the thread."""
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def __enter__(self) -> CheckpointRunner:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run_round(self) -> None:
        """One round: publish what is pending, then sign what is due."""
        self._service.publish_pending()
        self._service.sign_due()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_round()
            except LedgerError as exc:  # the database or a key away: the next round tries again
                _log.warning("checkpoint round failed: %s", exc.detail)
            except Exception:
                _log.exception("checkpoint round failed unexpectedly")
            self._wake.wait(self._tick)
            self._wake.clear()
