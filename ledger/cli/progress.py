"""A small progress bar on standard error, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO


class ProgressBar:
    """``with ProgressBar(total, "verifying") as bar: bar.advance(n)``; silent when not a terminal."""

    def __init__(
        self, total: int, label: str, stream: TextIO | None = None, *, enabled: bool | None = None
    ) -> None:
        self.total = max(total, 0)
        self.label = label
        self.done = 0
        self._stream = stream or sys.stderr
        self._enabled = self._stream.isatty() if enabled is None else enabled
        self._started = time.monotonic()
        self._last_draw = 0.0

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more units; redraws at most ten times a second."""
        self.done += n
        now = time.monotonic()
        if self._enabled and (now - self._last_draw > 0.1 or self.done >= self.total):
            self._last_draw = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        width = 30
        fraction = min(self.done / self.total, 1.0) if self.total else 1.0
        filled = int(width * fraction)
        rate = self.done / max(now - self._started, 1e-9)
        self._stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {self.done:,}/{self.total:,} {rate:,.0f}/s"
        )
        self._stream.flush()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._enabled:
            self._draw(time.monotonic())
            self._stream.write("\n")
            self._stream.flush()
